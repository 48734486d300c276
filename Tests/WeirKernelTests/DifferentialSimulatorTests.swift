import Testing
import WeirLab
import WeirModel
import WeirSimulator

/// The simulator bugs the differential test found, pinned without a kernel (no root needed).
@Suite
struct DifferentialSimulatorTests {
    func endpoint(_ packet: Packet, source: Bool) -> SocketEndpoint {
        source ? SocketEndpoint(packet.source, packet.sourcePort) : SocketEndpoint(packet.destination, packet.destinationPort)
    }

    @Test("the reply to host → its own published port comes back un-DNATed (from 10.0.3.121:10080, not c1:80)")
    func replyDeliveredLocallyIsUnDNATed() throws {
        let host = try DiffHost.load("docker-default.weir")
        let packet = Packet(source: IPAddress("10.0.3.121")!, destination: IPAddress("10.0.3.121")!, transport: .tcp,
                            sourcePort: 20_001, destinationPort: 10_080)
        let forward = host.simulator.simulate(packet, from: .local)
        #expect(forward.outcome == .sent("docker0"))
        #expect(endpoint(forward.packet, source: false) == SocketEndpoint(IPAddress("172.17.0.2")!, 80))
        let reply = try #require(host.simulator.reply(to: forward))
        #expect(reply.outcome == .deliveredLocally)
        #expect(endpoint(reply.packet, source: true) == SocketEndpoint(IPAddress("10.0.3.121")!, 10_080))
        #expect(endpoint(reply.packet, source: false) == SocketEndpoint(IPAddress("10.0.3.121")!, 20_001))
    }

    @Test("MASQUERADE out of loopback takes another interface's address (IPv4) or keeps the destination (IPv6)")
    func masqueradeOutOfLoopback() throws {
        // Docker's `-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE` matches host 172.17.0.1 → 172.17.0.1.
        let s1 = try DiffHost.load("classic-s1-publish.weir")
        let v4 = s1.simulator.simulate(Packet(source: IPAddress("172.17.0.1")!, destination: IPAddress("172.17.0.1")!,
                                              transport: .tcp, sourcePort: 20_009, destinationPort: 12_345), from: .local)
        #expect(v4.outcome == .deliveredLocally)
        #expect(v4.packet.source == IPAddress("10.0.3.121")!, "inet_select_addr skips 127.0.0.1 (scope host)")
        let s8 = try DiffHost.load("classic-s8-ipv6.weir")
        let gateway = IPAddress("fd00:db8:1::1")!
        let v6 = s8.simulator.simulate(Packet(source: gateway, destination: gateway, transport: .tcp,
                                              sourcePort: 20_015, destinationPort: 12_345), from: .local)
        #expect(v6.outcome == .deliveredLocally)
        #expect(v6.packet.source == gateway, "RFC 6724 rule 1: the destination itself, not ::1")
        #expect(v6.steps.contains { $0.table == "nat" && $0.chain == "POSTROUTING" && $0.kind == .rule }, "the MASQUERADE rule did match")
    }
}
