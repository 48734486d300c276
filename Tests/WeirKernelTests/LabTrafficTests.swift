import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel

/// Real TCP through the seed host (`Policies/docker-default.weir`) built as a lab: host
/// `enp0s8 10.0.3.121/24` cabled to the external peer `10.0.3.122`, `docker0 172.17.0.1/16`,
/// c1 `172.17.0.2` publishing 10080→80/tcp and c2 `172.17.0.3`. Each test builds its own lab
/// (so they run in parallel) and runs once per backend in `LabBackend.all`.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct LabTrafficTests {
    static let backends = LabBackend.all
    static let hostAddress = IPAddress("10.0.3.121")!
    static let peerAddress = IPAddress("10.0.3.122")!
    static let c1Address = IPAddress("172.17.0.2")!
    static let c2Address = IPAddress("172.17.0.3")!

    struct Seed {
        var lab: Lab
        var peer: String
        var host: String
        var c1: String
        var c2: String
    }

    func seedLab(_ backend: LabBackend, policy: LabPolicy? = nil) async throws -> Seed {
        let lab = try await (policy ?? LabPolicy.seed()).up(backend)
        let peer = try #require(lab.peers.first)
        #expect(peer.address() == Self.peerAddress)
        #expect(peer.hostAddress() == Self.hostAddress)
        return Seed(lab: lab, peer: peer.namespace, host: lab.hostNamespace,
                    c1: try #require(lab.container("c1")).namespace, c2: try #require(lab.container("c2")).namespace)
    }

    @Test("(a) external peer → 10.0.3.121:10080 reaches c1:80, which sees the peer's address", arguments: backends)
    func publishedPortFromOutside(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = try await seedLab(backend)
        defer { try? seed.lab.down() }
        let server = try seed.lab.serve(in: seed.c1, port: 80, reply: "c1")

        let probe = await seed.lab.probe(from: seed.peer, to: SocketEndpoint(Self.hostAddress, 10080), timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        let local = try #require(probe.local)
        #expect(local.address == Self.peerAddress)
        #expect(probe.reply == "c1 \(local)", "c1 answers with the source it saw")
        let seen = server.waitForConnections(1)
        #expect(seen.count == 1)
        #expect(seen.first?.peer == local, "no source NAT on the way in: c1 sees 10.0.3.122 and the client's port")
        #expect(seen.first?.local == SocketEndpoint(Self.c1Address, 80), "DNAT to 172.17.0.2:80")
        try seed.lab.down()
    }

    @Test("(b) external peer → an unpublished host port (10081) is refused by the host", arguments: backends)
    func unpublishedHostPortIsRefused(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = try await seedLab(backend)
        defer { try? seed.lab.down() }
        let server = try seed.lab.serve(in: seed.c1, port: 80, reply: "c1")

        // No DNAT matches, so the SYN is for the host itself; INPUT accepts it (policy ACCEPT)
        // and, with nothing listening on 10081, the host's TCP answers RST: refused, not a timeout.
        let probe = await seed.lab.probe(from: seed.peer, to: SocketEndpoint(Self.hostAddress, 10081), timeout: LabTimeout.failure)
        #expect(probe.outcome == .refused, "\(probe)")
        #expect(probe.errorNumber == ECONNREFUSED)
        #expect(server.connections.isEmpty)
    }

    @Test("(c) c1 → the external peer is masqueraded: the peer sees 10.0.3.121", arguments: backends)
    func containerToOutsideIsMasqueraded(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = try await seedLab(backend)
        defer { try? seed.lab.down() }
        let server = try seed.lab.serve(in: seed.peer, port: 8080, reply: "peer")

        let probe = await seed.lab.probe(from: seed.c1, to: SocketEndpoint(Self.peerAddress, 8080), timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        #expect(probe.local?.address == Self.c1Address, "c1's socket is bound to its own address")
        let seen = server.waitForConnections(1)
        #expect(seen.count == 1)
        #expect(seen.first?.peer.address == Self.hostAddress, "MASQUERADE -s 172.17.0.0/16 ! -o docker0")
        #expect(probe.reply?.hasPrefix("peer \(Self.hostAddress):") == true, "\(probe)")
    }

    @Test("(d) a process in the host namespace → 10.0.3.121:10080 reaches c1 (nat OUTPUT DNAT)", arguments: backends)
    func hostProcessReachesPublishedPort(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = try await seedLab(backend)
        defer { try? seed.lab.down() }
        let server = try seed.lab.serve(in: seed.c1, port: 80, reply: "c1")

        let probe = await seed.lab.probe(from: seed.host, to: SocketEndpoint(Self.hostAddress, 10080), timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        let seen = server.waitForConnections(1)
        #expect(seen.count == 1)
        // The source was chosen for 10.0.3.121 before OUTPUT's DNAT re-routed the packet to
        // docker0, and POSTROUTING masquerades only 172.17.0.0/16: c1 sees 10.0.3.121.
        #expect(seen.first?.peer.address == Self.hostAddress)
        #expect(seen.first?.peer == probe.local)
        #expect(seen.first?.local == SocketEndpoint(Self.c1Address, 80))
    }

    /// The seed policy with `icc off` on its network.
    static let iccOffPolicy = """
        docker classic

        host docker-host {
            interface enp0s8 address 10.0.3.121/24
            forward-policy drop
            userland-proxy on
        }

        network bridge {
            bridge docker0
            subnet 172.17.0.0/16
            gateway 172.17.0.1
            icc off
        }

        container c1 {
            network bridge address 172.17.0.2
            publish 10080:80/tcp
        }

        container c2 {
            network bridge address 172.17.0.3
        }
        """

    @Test("(e) c1 → c2 on docker0 connects with icc on and is dropped with icc off", arguments: backends, [true, false])
    func interContainerCommunication(_ backend: LabBackend, icc: Bool) async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = icc ? try LabPolicy.seed() : try LabPolicy.text(Self.iccOffPolicy, path: "seed-icc-off.weir")
        if !icc {
            #expect(policy.compiled.artifact(.iptables)?.contents.contains("-A FORWARD -i docker0 -o docker0 -j DROP\n") == true)
        }
        let seed = try await seedLab(backend, policy: policy)
        defer { try? seed.lab.down() }
        #expect(seed.lab.bridgeNetfilter == .enabled, "icc off only works when bridged frames pass iptables")
        let server = try seed.lab.serve(in: seed.c2, port: 8080, reply: "c2")

        let probe = await seed.lab.probe(from: seed.c1, to: SocketEndpoint(Self.c2Address, 8080),
                                         timeout: icc ? LabTimeout.success : LabTimeout.failure)
        if icc {
            #expect(probe.outcome == .connected, "\(probe)")
            let seen = server.waitForConnections(1)
            #expect(seen.first?.peer.address == Self.c1Address, "bridged, not NATed")
            #expect(seen.first?.peer == probe.local)
        } else {
            // FORWARD -i docker0 -o docker0 -j DROP drops the SYN silently.
            #expect(probe.outcome == .timedOut, "\(probe)")
            #expect(server.connections.isEmpty)
        }
    }

    @Test("external peer routed straight to container addresses: c1:80 is let in by DOCKER, c2 is dropped", arguments: backends)
    func directRoutingToContainers(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = try await seedLab(backend)
        defer { try? seed.lab.down() }
        let c1 = try seed.lab.serve(in: seed.c1, port: 80, reply: "c1")
        let c2 = try seed.lab.serve(in: seed.c2, port: 80, reply: "c2")

        // Docker classic's DOCKER chain accepts `-d 172.17.0.2 ! -i docker0 -o docker0 --dport 80`
        // whether or not the packet was DNATed, so a neighbour routing 172.17.0.0/16 via the host
        // reaches the published container port directly.
        async let toC1 = seed.lab.probe(from: seed.peer, to: SocketEndpoint(Self.c1Address, 80), timeout: LabTimeout.success)
        // c2 publishes nothing: FORWARD's policy DROP applies.
        async let toC2 = seed.lab.probe(from: seed.peer, to: SocketEndpoint(Self.c2Address, 80), timeout: LabTimeout.failure)
        let (first, second) = await (toC1, toC2)
        #expect(first.outcome == .connected, "\(first)")
        #expect(c1.waitForConnections(1).first?.peer.address == Self.peerAddress)
        #expect(second.outcome == .timedOut, "\(second)")
        #expect(c2.connections.isEmpty)
    }

    @Test("UDP: external peer → 10.0.3.121:5353/udp reaches c1:53 (classic-s6b-udp)", arguments: backends)
    func publishedUDPPort(_ backend: LabBackend) async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = try LabPolicy.named("classic-s6b-udp.weir")
        let lab = try await policy.up(backend)
        defer { try? lab.down() }
        let peer = try #require(lab.peers.first)
        let c1 = try #require(lab.container("c1"))
        let hostAddress = try #require(peer.hostAddress())
        let server = try lab.serve(in: c1.namespace, transport: .udp, port: 53, reply: "c1")

        let probe = await lab.probe(from: peer.namespace, to: SocketEndpoint(hostAddress, 5353), transport: .udp, timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        let seen = server.waitForConnections(1)
        #expect(seen.first?.peer.address == peer.address())
        #expect(seen.first?.received == "weirlab probe\n")
        #expect(probe.reply == "c1 \(try #require(probe.local))")

        // A UDP port nothing listens on: the host answers ICMP port unreachable.
        let closed = await lab.probe(from: peer.namespace, to: SocketEndpoint(hostAddress, 5354), transport: .udp, timeout: LabTimeout.failure)
        #expect(closed.outcome == .refused, "\(closed)")
    }
}
