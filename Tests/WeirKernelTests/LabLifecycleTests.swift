import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel

/// Building, inspecting and tearing down labs: every path, failures included, leaves no
/// namespace with the lab's prefix, and nothing in the root namespace changes.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct LabLifecycleTests {
    struct Injected: Error, Equatable {}

    func namespaces(of id: LabID) throws -> [String] { try listedNamespaces().filter { id.owns($0) } }

    @Test("the seed lab has the policy's interfaces, addresses, routes and sysctls")
    func seedTopology() async throws {
        guard let tools = KernelRequirement.check() else { return }
        let policy = try LabPolicy.seed()
        let rootLinksBefore = try CommandRunner.run(tools.ip, ["-o", "link"]).stdout
        let lab = try await Lab.up(policy.topology) { _ in }
        defer { try? lab.down() }
        let prefix = lab.id.namespacePrefix
        #expect(lab.hostNamespace == prefix + "host")
        #expect(lab.peers.map(\.namespace) == [prefix + "peer0"])
        #expect(lab.containers.map(\.namespace) == [prefix + "ctr-c1", prefix + "ctr-c2"])
        #expect(try Set(namespaces(of: lab.id)) == Set(lab.namespaces))

        func run(_ namespace: String, _ arguments: [String]) throws -> String {
            let result = try CommandRunner.run(tools.ip, ["-n", namespace] + arguments)
            #expect(result.succeeded, "\(result)")
            return result.stdout
        }
        let hostAddresses = try run(lab.hostNamespace, ["-o", "-4", "addr", "show"])
        #expect(hostAddresses.contains("enp0s8    inet 10.0.3.121/24"), "\(hostAddresses)")
        #expect(hostAddresses.contains("docker0    inet 172.17.0.1/16"), "\(hostAddresses)")
        #expect(hostAddresses.contains("lo    inet 127.0.0.1/8"), "\(hostAddresses)")
        let ports = try run(lab.hostNamespace, ["-o", "link", "show", "master", "docker0"])
        #expect(ports.contains("veth0x0@") && ports.contains("veth1x0@"), "\(ports)")

        let peer = try run(lab.peers[0].namespace, ["-o", "-4", "addr", "show", "dev", "eth0"])
        #expect(peer.contains("inet 10.0.3.122/24"), "\(peer)")
        #expect(try run(lab.peers[0].namespace, ["-4", "route", "show", "default"]).contains("default via 10.0.3.121 dev eth0"))
        let c1 = try run(lab.containers[0].namespace, ["-o", "-4", "addr", "show", "dev", "eth0"])
        #expect(c1.contains("inet 172.17.0.2/16"), "\(c1)")
        #expect(try run(lab.containers[0].namespace, ["-4", "route", "show", "default"]).contains("default via 172.17.0.1 dev eth0"))
        #expect(try run(lab.containers[1].namespace, ["-o", "-4", "addr", "show", "dev", "eth0"]).contains("inet 172.17.0.3/16"))

        func sysctl(_ key: String) throws -> String {
            let result = try CommandRunner.run(tools.ip, ["netns", "exec", lab.hostNamespace, "cat", "/proc/sys/" + key])
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try sysctl("net/ipv4/ip_forward") == "1")
        #expect(lab.bridgeNetfilter == .enabled, "this kernel has br_netfilter built in")
        #expect(try sysctl("net/bridge/bridge-nf-call-iptables") == "1")

        // Nothing of the lab exists in the root namespace: no new link of the lab's names, and no
        // link whose other end is in one of the lab's namespaces.
        func names(_ links: String) -> Set<String> {
            Set(links.split(separator: "\n").compactMap { $0.split(separator: ":").dropFirst().first?.trimmingCharacters(in: .whitespaces) })
        }
        let rootLinksAfter = try CommandRunner.run(tools.ip, ["-o", "link"]).stdout
        #expect(!rootLinksAfter.contains(prefix), "a root-namespace link points into the lab")
        let added = names(rootLinksAfter).subtracting(names(rootLinksBefore))
        #expect(added.filter { ["enp0s8", "docker0", "eth0"].contains($0) || $0.hasPrefix("veth0x") || $0.hasPrefix("veth1x") }.isEmpty, "\(added)")

        try lab.down()
        #expect(try namespaces(of: lab.id).isEmpty)
        #expect(lab.isTornDown)
        try lab.down()  // a second call does nothing
    }

    @Test("an apply closure that throws: the error comes through and no namespace of the lab is left")
    func failingApplyLeavesNothing() async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = try LabPolicy.seed()
        let id = LabID.generate()
        let seenNamespace = LockedValue<String?>(nil)
        await #expect(throws: Injected.self) {
            _ = try await Lab.up(policy.topology, id: id) { namespace in
                seenNamespace.set(namespace)
                #expect(NamespaceIsListed(namespace), "apply runs once the host namespace exists")
                throw Injected()
            }
        }
        #expect(seenNamespace.get() == id.namespacePrefix + "host")
        #expect(try namespaces(of: id).isEmpty)
    }

    @Test("a build failing half-way deletes the namespaces already made", arguments: [
        ("enp0s8", "ip rejects a bridge named like the host interface"),
        ("bridge-name-too-long-for-linux", "the lab rejects a name of more than 15 bytes"),
        ("docker0 netns 1", "the lab rejects a name that would smuggle words into ip -batch"),
    ])
    func failingBuildLeavesNothing(_ device: String, _ why: String) async throws {
        guard KernelRequirement.check() != nil else { return }
        var topology = try LabPolicy.seed().topology
        topology.bridges[0].device = device
        let id = LabID.generate()
        let applied = LockedValue(false)
        do {
            _ = try await Lab.up(topology, id: id) { _ in applied.set(true) }
            Issue.record("the lab was built: \(why)")
        } catch let error as LabError {
            switch error {
            case .commandFailed(let command, _, let stderr):
                #expect(device == "enp0s8", "\(error)")
                #expect(command.contains("-n " + id.namespacePrefix + "host -batch"), "\(error)")
                #expect(stderr.contains("File exists"), "\(error)")
            case .invalidInterfaceName(let name):
                #expect(name == device)
            default:
                Issue.record("unexpected \(error)")
            }
        }
        #expect(!applied.get())
        #expect(try namespaces(of: id).isEmpty, "\(why)")
    }

    @Test("a namespace of the same name that already exists is neither used nor deleted")
    func existingNamespaceIsLeftAlone() async throws {
        guard let tools = KernelRequirement.check() else { return }
        let policy = try LabPolicy.seed()
        let id = LabID.generate()
        let foreign = id.namespacePrefix + "ctr-c2"
        let made = try CommandRunner.run(tools.ip, ["netns", "add", foreign])
        #expect(made.succeeded, "\(made)")
        defer { _ = try? CommandRunner.run(tools.ip, ["netns", "delete", foreign]) }

        await #expect(throws: LabError.namespaceExists(foreign)) {
            _ = try await Lab.up(policy.topology, id: id) { _ in }
        }
        #expect(try namespaces(of: id) == [foreign], "only the namespace made outside the lab remains")
    }

    @Test("dropping the lab without down() deletes it; down() stops its servers")
    func deinitAndServers() async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = try LabPolicy.seed()
        var id: LabID?
        var server: TrafficServer?
        do {
            let lab = try await Lab.up(policy.topology) { _ in }
            id = lab.id
            server = try lab.serve(in: lab.containers[0].namespace, port: 80)
            #expect(server?.isRunning == true)
        }
        #expect(server?.isRunning == false, "the lab's deinit stopped the server")
        #expect(try namespaces(of: try #require(id)).isEmpty)
    }

    @Test("LabRegistry finds a kept lab by its prefix and removes it")
    func registry() async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = try LabPolicy.seed()
        let lab = try await Lab.up(policy.topology) { _ in }
        defer { try? lab.down() }
        lab.keep()
        let record = try #require(LabRegistry.labs().first { $0.id == lab.id })
        #expect(record.namespaces == lab.namespaces.sorted())
        #expect(record.ownerIsRunning, "the id names this test process")
        #expect(LabRegistry.labID(ofNamespace: lab.hostNamespace) == lab.id)

        let removed = try LabRegistry.remove(lab.id)
        #expect(Set(removed) == Set(lab.namespaces))
        #expect(try namespaces(of: lab.id).isEmpty)
        #expect(LabRegistry.namespaces(of: lab.id).isEmpty)
        try lab.down()  // already gone: nothing to do, no error
    }

    @Test("IPv6: addresses without DAD, forwarding and default routes carry c1 → peer unNATed")
    func ipv6() async throws {
        guard KernelRequirement.check() != nil else { return }
        let policy = try LabPolicy.text("""
            docker classic
            host h {
                interface enp0s8 address 10.0.3.121/24 address fd00:3::121/64
                ip6tables on
            }
            network bridge { bridge docker0; subnet 172.17.0.0/16; subnet fd00:db8:1::/64 }
            container c1 { network bridge address 172.17.0.2 address fd00:db8:1::2 }
            """)
        let lab = try await Lab.up(policy.topology) { _ in }
        defer { try? lab.down() }
        let peer = lab.peers[0]
        #expect(peer.address(.ipv6) == IPAddress("fd00:3::122"))
        let server = try lab.serve(in: peer.namespace, port: 8080, address: .v6(0), reply: "peer")
        let probe = await lab.probe(from: lab.containers[0].namespace, to: SocketEndpoint(try #require(peer.address(.ipv6)), 8080),
                                    timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        #expect(server.waitForConnections(1).first?.peer == probe.local)
        #expect(probe.local?.address == IPAddress("fd00:db8:1::2"))
        #expect(probe.elapsed < .milliseconds(500), "no wait for duplicate address detection: \(probe)")
        #expect(probe.reply == "peer [fd00:db8:1::2]:\(try #require(probe.local).port)")
    }

    @Test("a server inside a namespace answers a client inside another one without any ruleset")
    func trafficWithoutRuleset() async throws {
        guard KernelRequirement.check() != nil else { return }
        let lab = try await Lab.up(try LabPolicy.seed().topology) { _ in }
        defer { try? lab.down() }
        let server = try lab.serve(in: lab.peers[0].namespace, port: 0, reply: "peer")
        #expect(server.endpoint.port != 0, "port 0 picks a free port")
        let peer = try #require(lab.peers[0].address())
        // No ruleset: c1 reaches the peer unmasqueraded (the peer routes 172.17/16 back via the host).
        let probe = await lab.probe(from: lab.containers[0].namespace, to: SocketEndpoint(peer, server.endpoint.port), timeout: LabTimeout.success)
        #expect(probe.outcome == .connected, "\(probe)")
        #expect(server.waitForConnections(1).first?.peer.address == IPAddress("172.17.0.2"))
        server.stop()
        #expect(!server.isRunning)
        let refused = await lab.probe(from: lab.containers[0].namespace, to: SocketEndpoint(peer, server.endpoint.port), timeout: LabTimeout.failure)
        #expect(refused.outcome == .refused, "\(refused)")
        // Servers are bounded in count.
        let once = try lab.serve(in: lab.hostNamespace, port: 0, limits: .init(maxConnections: 1))
        let host = try #require(lab.peers[0].hostAddress())
        #expect(await lab.probe(from: lab.hostNamespace, to: SocketEndpoint(host, once.endpoint.port)).outcome == .connected)
        _ = once.waitForConnections(2, timeout: .milliseconds(200))
        #expect(!once.isRunning)
    }
}

/// Whether `ip netns list` shows the namespace.
func NamespaceIsListed(_ name: String) -> Bool { (try? listedNamespaces().contains(name)) ?? false }

/// A value set from a `@Sendable` closure and read afterwards.
final class LockedValue<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ new: T) { lock.withLock { value = new } }
    func get() -> T { lock.withLock { value } }
}
