/// Policies of a chosen size, for benchmarks: `networks` bridges in 10.0.0.0/8 and containers
/// that publish `perContainer` ports each until `publishes` ports (at most 192,000) are published.
public enum BenchmarkPolicy {
    public static func text(networks: Int, publishes: Int, perContainer: Int) -> String {
        var out = "docker classic\n\nhost bench {\n    interface eth0 address 192.0.2.10/24\n}\n\n"
        for n in 0..<networks {
            out += "network net\(n) {\n    bridge br-bench\(n)\n    subnet 10.\(n / 256).\(n % 256).0/24\n}\n\n"
        }
        var published = 0
        var container = 0
        while published < publishes {
            let network = container % networks
            let slot = container / networks + 2
            // 64,000 host ports per protocol; beyond that, the next protocol.
            out += "container c\(container) {\n    network net\(network) address 10.\(network / 256).\(network % 256).\(slot)\n"
            for _ in 0..<min(perContainer, publishes - published) {
                let hostPort = 1024 + published % 64_000
                let transport = ["tcp", "udp", "sctp"][min(published / 64_000, 2)]
                out += "    publish \(hostPort):\(80 + published % perContainer)/\(transport)\n"
                published += 1
            }
            out += "}\n\n"
            container += 1
        }
        return out
    }
}
