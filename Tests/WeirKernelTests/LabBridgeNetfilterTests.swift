import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel

/// What br_netfilter does on this kernel, measured with iptables' own rule counters.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct LabBridgeNetfilterTests {
    /// The packet counter of the first `iptables-save -c` line of a table that ends with `rule`.
    func packets(_ tools: KernelRequirement.Tools, _ namespace: String, table: String, rule: String) throws -> Int? {
        let dump = try CommandRunner.run(tools.ip, ["netns", "exec", namespace, tools.iptablesSave, "-c", "-t", table])
        guard dump.succeeded else { throw CommandError(description: "\(dump)") }
        for line in dump.stdout.split(separator: "\n") where line.hasPrefix("[") && line.hasSuffix(rule) {
            let counters = line.dropFirst().prefix { $0 != "]" }.split(separator: ":")
            return counters.first.flatMap { Int($0) }
        }
        return nil
    }

    /// The packet counter of a built-in chain's policy (`:PREROUTING ACCEPT [p:b]`).
    func policyPackets(_ tools: KernelRequirement.Tools, _ namespace: String, table: String, chain: String) throws -> Int? {
        let dump = try CommandRunner.run(tools.ip, ["netns", "exec", namespace, tools.iptablesSave, "-c", "-t", table])
        guard dump.succeeded else { throw CommandError(description: "\(dump)") }
        for line in dump.stdout.split(separator: "\n") where line.hasPrefix(":\(chain) ") {
            return line.split(separator: "[").last?.split(separator: ":").first.flatMap { Int($0) }
        }
        return nil
    }

    @Test("c1 → c2 on one bridge traverses FORWARD as -i docker0 -o docker0, and with bridge-nf-call-iptables=0 it does not")
    func bridgedTrafficTraversesForward() async throws {
        guard let tools = KernelRequirement.check() else { return }
        let policy = try LabPolicy.seed()
        let lab = try await policy.up(.iptables)
        defer { try? lab.down() }
        #expect(lab.bridgeNetfilter == .enabled)
        let c2 = try #require(lab.container("c2"))
        let server = try lab.serve(in: c2.namespace, port: 8080)
        let target = SocketEndpoint(try #require(c2.address()), 8080)
        let icc = "-A FORWARD -i docker0 -o docker0 -j ACCEPT"
        let established = "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: icc) == 0)
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: established) == 0)
        let natBefore = try #require(try policyPackets(tools, lab.hostNamespace, table: "nat", chain: "PREROUTING"))

        let probe = await lab.probe(from: try #require(lab.container("c1")).namespace, to: target, timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        #expect(server.waitForConnections(1).count == 1)
        // Bridged frames pass the IPv4 FORWARD hook with in = out = docker0. Only the SYN (state
        // NEW) gets as far as the icc rule; every later packet of the connection, in both
        // directions, is accepted earlier by `-o docker0 … RELATED,ESTABLISHED`.
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: icc) == 1)
        // nat PREROUTING sees the connection's first packet too (nat chains see only NEW ones).
        #expect(try policyPackets(tools, lab.hostNamespace, table: "nat", chain: "PREROUTING") == natBefore + 1)
        let later = try #require(try packets(tools, lab.hostNamespace, table: "filter", rule: established))
        #expect(later >= 4, "SYN-ACK, ACK, the reply and the FINs")
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: "-A FORWARD -j DOCKER-USER").map { $0 == later + 1 } == true)

        // Per-namespace switch (kernel ≥ 5.3): off, the same connection bypasses iptables entirely.
        let off = try CommandRunner.run(tools.ip, ["netns", "exec", lab.hostNamespace, "sh", "-c", "echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables"])
        #expect(off.succeeded, "\(off)")
        let again = await lab.probe(from: try #require(lab.container("c1")).namespace, to: target, timeout: LabTimeout.success)
        #expect(again.outcome == .connected, "\(again)")
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: icc) == 1, "no longer counted")
        #expect(try packets(tools, lab.hostNamespace, table: "filter", rule: established) == later, "no longer counted")
    }
}
