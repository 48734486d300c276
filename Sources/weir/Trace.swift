import ArgumentParser
import Foundation
import WeirDriver
import WeirModel
import WeirSimulator

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate one packet through a ruleset and print each chain step in the kernel's TRACE format.",
        discussion: """
            SOURCE is a policy (.weir), an iptables-save file, an nft batch file, or netns:NAME.
            The host (interfaces, addresses, routes) comes from the policy, or from --host.
            Examples:
              weir trace Policies/docker-default.weir --in enp0s8 --src 10.0.3.122 --dst 10.0.3.121 --proto tcp --dport 10080
              weir trace Policies/docker-default.weir --local --src 172.17.0.1 --dst 172.17.0.1 --proto tcp --dport 10080
              weir trace Generated/docker-default.iptables --host Policies/docker-default.weir --in docker0 --src 172.17.0.2 --dst 8.8.8.8 --proto udp --dport 53 --format json
            """
    )

    enum Format: String, ExpressibleByArgument { case text, json }

    @Argument(help: "The ruleset: a policy, an iptables-save file, a batch file, or netns:NAME.")
    var source: String

    @Option(name: .customLong("in"), help: "The interface the packet arrives on.")
    var inInterface: String?

    @Flag(help: "The packet is sent by a local process.")
    var local = false

    @Option(help: "Source address.") var src: String
    @Option(help: "Destination address.") var dst: String
    @Option(help: "tcp, udp, icmp, sctp (or icmpv6).") var proto: String
    @Option(help: "Source port.") var sport: UInt16 = 40000
    @Option(help: "Destination port.") var dport: UInt16 = 0
    @Option(help: "Conntrack state: new, established, related, invalid.") var state: String = "new"
    @Option(help: "A policy whose host model to use (interfaces, addresses, routes).") var host: String?
    @Option(help: "text or json.") var format: Format = .text

    func validate() throws {
        if local == (inInterface != nil) { throw ValidationError("give exactly one of --in IFACE and --local") }
        guard let s = IPAddress(src), let d = IPAddress(dst) else { throw ValidationError("--src and --dst must be IP addresses") }
        if s.family != d.family { throw ValidationError("--src and --dst are of different families") }
        guard TransportProtocol(name: proto) != nil else { throw ValidationError("unknown --proto '\(proto)'") }
        guard ConntrackState(rawValue: state.uppercased()) != nil else { throw ValidationError("unknown --state '\(state)'") }
    }

    func run() throws {
        let loaded = try value(of: RulesetSource(argument: source).load(), orExit: 1)
        var hostModel = loaded.host ?? .empty
        if let host {
            switch RulesetSource.host(ofPolicy: host) {
            case .success(let model): hostModel = model
            case .failure(let error):
                printDiagnostics(error.diagnostics)
                throw ExitCode(1)
            }
        }
        let packet = Packet(source: IPAddress(src)!, destination: IPAddress(dst)!, transport: TransportProtocol(name: proto)!,
                            sourcePort: sport, destinationPort: dport, state: ConntrackState(rawValue: state.uppercased())!)
        let simulator = Simulator(ruleset: loaded.ruleset, host: hostModel)
        let traversal = simulator.simulate(packet, from: local ? .local : .interface(inInterface!))
        switch format {
        case .text: print(TraceFormat.text(traversal), terminator: "")
        case .json: print(TraceFormat.json(traversal))
        }
    }
}
