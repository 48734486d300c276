import Foundation
import WeirDriver
import WeirLab
import WeirModel
import WeirSema
import WeirSimulator

// Helpers of the differential tests (DifferentialTests.swift, DifferentialTraceTests.swift):
// the seed, a policy's lab described as nodes with addresses and routes, the flows generated
// for it, and the backends.

// MARK: Seed and random numbers

/// The run's seed: `WEIR_DIFF_SEED` (decimal or `0x…`), else a fixed default.
enum DifferentialSeed {
    static let fallback: UInt64 = 20_260_514

    static var current: UInt64 {
        guard let text = ProcessInfo.processInfo.environment["WEIR_DIFF_SEED"]?.trimmingCharacters(in: .whitespaces),
              !text.isEmpty else { return fallback }
        if text.lowercased().hasPrefix("0x") { return UInt64(text.dropFirst(2), radix: 16) ?? fallback }
        return UInt64(text) ?? fallback
    }

    /// A stable per-policy seed (FNV-1a of the name mixed into the run's seed; Swift's `Hasher`
    /// is randomised per process, so it cannot be used here).
    static func derive(_ seed: UInt64, _ name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return seed ^ hash
    }
}

/// SplitMix64: small, fast, and the same sequence on every platform for a seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

// MARK: Output

/// Prints with one `write(2)` per call, bypassing stdio's buffer: long reports printed with
/// `print` while the testing library writes its own events lost whole 4 KB chunks.
enum DifferentialOutput {
    static func emit(_ text: String) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}

// MARK: Threads

/// Blocking work on threads of their own: never on Swift concurrency's cooperative pool.
enum DifferentialThreads {
    final class Slots<R>: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [R?]
        init(_ count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ index: Int, _ value: R) { lock.withLock { values[index] = value } }
        var all: [R] { lock.withLock { values.map { $0! } } }
    }

    /// `body` for every item, at most `limit` at a time, each on a new thread; results in order.
    static func map<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) -> R) -> [R] {
        let slots = Slots<R>(items.count)
        let free = DispatchSemaphore(value: max(1, limit))
        let group = DispatchGroup()
        for (index, item) in items.enumerated() {
            free.wait()
            group.enter()
            let thread = Thread {
                slots.set(index, body(item))
                free.signal()
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        return slots.all
    }

    /// Runs blocking `body` on a new thread and awaits it.
    static func offload<R: Sendable>(_ body: @escaping @Sendable () -> R) async -> R {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.stackSize = 4 << 20
            thread.start()
        }
    }
}

// MARK: Backends

/// How a run loads the compiled policy into the lab's host namespace. The iptables backend loads
/// the `.ip6tables` artifact too (LabBackend.iptables loads only IPv4), so IPv6 flows meet the
/// same rules under both backends.
struct DifferentialBackend: Sendable, CustomStringConvertible {
    var name: String
    var base: LabBackend

    var description: String { name }
    var isNftables: Bool { name == LabBackend.nftables.name }

    func apply(_ compiled: CompileResult, _ namespace: String) throws {
        try base.apply(compiled, namespace)
        if name == LabBackend.iptables.name, let ip6 = compiled.artifact(.ip6tables) {
            guard let ip = CommandRunner.locate("ip"), let restore = CommandRunner.locate("ip6tables-restore") else {
                throw CommandError(description: "ip or ip6tables-restore is not installed")
            }
            let result = try CommandRunner.run(ip, ["netns", "exec", namespace, restore], stdin: ip6.contents)
            guard result.succeeded else { throw CommandError(description: "ip6tables-restore in \(namespace) failed: \(result)") }
        }
    }

    static let all = LabBackend.all.map { DifferentialBackend(name: $0.name, base: $0) }
    static let nftables = DifferentialBackend(name: LabBackend.nftables.name, base: .nftables)
}

/// ICMP errors are rate limited per destination (`net.ipv4.icmp_ratelimit`, 1 s after a burst of
/// 6, for destination-unreachable): a flow rejected with an ICMP error would then look silent.
/// The lab's host namespace answers without a limit.
func disableICMPRateLimit(in namespace: String) throws {
    try NamespaceThread.run(in: namespace) {
        for path in ["/proc/sys/net/ipv4/icmp_ratelimit", "/proc/sys/net/ipv6/icmp/ratelimit"] {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            try "0\n".write(toFile: path, atomically: false, encoding: .utf8)
        }
    }
}

// MARK: The lab as nodes

/// One namespace of a lab seen as a machine: its addresses and how it routes.
struct DiffNode: Sendable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case host
        case peer(Int)
        case container(Int)
    }

    var kind: Kind
    /// `host`, `peer0`, `c1`: for messages (namespace labels are only known once the lab is up).
    var name: String
    /// Every address the node owns (the host's include 127.0.0.1, and ::1 when the lab has IPv6).
    var addresses: [IPAddress]
    /// Container endpoints or a peer's link: the host-side device and the node's prefixes on it.
    var links: [(device: String, prefixes: [Prefix], defaultRoutes: Set<Family>)]

    var families: Set<Family> { Set(addresses.map(\.family)) }
    var isHost: Bool { kind == .host }
    var description: String { name }

    func owns(_ address: IPAddress) -> Bool { addresses.contains(address) }
}

/// A policy, compiled, with its lab topology, simulator and nodes.
struct DiffHost: Sendable {
    var name: String
    var compiled: CompileResult
    var ruleset: Ruleset
    var topology: LabTopology
    var simulator: Simulator
    var nodes: [DiffNode]

    /// Loads, checks and compiles `Policies/NAME` and derives its lab; throws the reason when any
    /// step fails.
    static func load(_ name: String) throws -> DiffHost {
        let path = LabPolicy.root + "/Policies/" + name
        let loaded = PolicyLoader.load(path: path)
        let (checked, semantic) = Checker.check(loaded.items)
        let compiled = Compiler.compile(path: path)
        guard let checked, !compiled.hasErrors, !(loaded.diagnostics + semantic).contains(where: { $0.severity == .error }),
              let ruleset = compiled.ruleset else {
            throw CommandError(description: "\(name) does not compile: \(compiled.diagnostics + loaded.diagnostics + semantic)")
        }
        let topology = try LabTopology(policy: checked)
        let simulator = Simulator(ruleset: ruleset, host: HostModel(policy: checked))
        return DiffHost(name: name, compiled: compiled, ruleset: ruleset, topology: topology, simulator: simulator,
                        nodes: Self.nodes(of: topology))
    }

    static func nodes(of topology: LabTopology) -> [DiffNode] {
        var hostAddresses = topology.uplinks.flatMap { $0.addresses.map(\.address) }
            + topology.bridges.flatMap { $0.gateways.map(\.address) }
        hostAddresses.append(IPAddress("127.0.0.1")!)
        if topology.hasIPv6 { hostAddresses.append(IPAddress("::1")!) }
        var hostLinks: [(device: String, prefixes: [Prefix], defaultRoutes: Set<Family>)] = []
        for uplink in topology.uplinks { hostLinks.append((uplink.interface, uplink.addresses, [])) }
        for bridge in topology.bridges { hostLinks.append((bridge.device, bridge.gateways, [])) }
        var nodes = [DiffNode(kind: .host, name: "host", addresses: hostAddresses, links: hostLinks)]
        for (index, uplink) in topology.uplinks.enumerated() {
            nodes.append(DiffNode(kind: .peer(index), name: "peer\(index)", addresses: uplink.peerAddresses.map(\.address),
                                  links: [(uplink.interface, uplink.peerAddresses, Set(uplink.addresses.map(\.family)))]))
        }
        for (index, container) in topology.containers.enumerated() {
            let links = container.endpoints.map { endpoint in
                (device: topology.bridges[endpoint.bridge].device, prefixes: endpoint.addresses,
                 defaultRoutes: Set(endpoint.defaultRoutes.map(\.family)))
            }
            nodes.append(DiffNode(kind: .container(index), name: container.name,
                                  addresses: container.endpoints.flatMap { $0.addresses.map(\.address) }, links: links))
        }
        return nodes
    }

    /// The node owning an address.
    func owner(of address: IPAddress) -> Int? { nodes.firstIndex { $0.owns(address) } }

    /// How a packet from node `source` to `destination` leaves it, as the lab's routes decide:
    /// the origin the simulator needs and the source address the kernel picks; nil when the node
    /// has no route (an internal network's container to anything off its subnet) or the
    /// destination is its own (that never reaches the host).
    func departure(from source: Int, to destination: IPAddress) -> (origin: Origin, address: IPAddress)? {
        let node = nodes[source]
        let family = destination.family
        if node.isHost {
            // Local destinations: the kernel picks the destination itself as the source.
            if node.owns(destination) { return (.local, destination) }
            // Connected routes only (the lab's host has no default route); prefsrc is the address.
            for link in node.links {
                if let prefix = link.prefixes.first(where: { $0.family == family && $0.contains(destination) }) {
                    return (.local, prefix.address)
                }
            }
            return nil
        }
        if node.owns(destination) { return nil }
        if destination.family == .ipv4, Prefix("127.0.0.0/8")!.contains(destination) { return nil }
        if destination == IPAddress("::1")! { return nil }
        let link = node.links.first { $0.prefixes.contains { $0.family == family && $0.contains(destination) } }
            ?? node.links.first { $0.defaultRoutes.contains(family) }
        guard let link, let address = link.prefixes.first(where: { $0.family == family })?.address else { return nil }
        return (.interface(link.device), address)
    }

    /// The node a packet leaving the host by `interface` towards `address` reaches, if any.
    func receiver(leaving interface: String, to address: IPAddress) -> Int? {
        nodes.indices.first { index in
            !nodes[index].isHost && nodes[index].owns(address) && nodes[index].links.contains { $0.device == interface }
        }
    }

    /// The node a simulated traversal ends in: the host for local delivery, else the node on the
    /// exit interface that owns the final destination; nil for drops, no route, or nobody there.
    func receiver(of traversal: Traversal) -> Int? {
        switch traversal.outcome {
        case .deliveredLocally: return 0
        case .forwarded(let out), .sent(let out): return receiver(leaving: out, to: traversal.packet.destination)
        case .dropped, .unroutable: return nil
        }
    }

    // MARK: Ports

    struct Ports: Sendable {
        /// Published host ports, per transport (SCTP bindings count as unpublished for TCP/UDP).
        var published: [(port: UInt16, transport: TransportProtocol)]
        /// Container ports of the bindings (what DNAT rewrites to).
        var container: [UInt16]
        /// Ports nothing publishes: ports the rules name, and a couple from a pool.
        var unpublished: [UInt16]

        /// Every port servers listen on.
        var all: [UInt16] { Array(Set(published.map(\.port) + container + unpublished)).sorted() }
    }

    func ports(_ random: inout SplitMix64) -> Ports {
        var published: [(UInt16, TransportProtocol)] = []
        var container: [UInt16] = []
        var others: [UInt16] = []
        for c in topology.containers {
            for binding in c.published {
                if binding.transport == .tcp || binding.transport == .udp {
                    published.append((binding.hostPort, binding.transport))
                    container.append(binding.containerPort)
                } else {
                    others += [binding.hostPort, binding.containerPort]
                }
            }
        }
        for table in ruleset.tables {
            for chain in table.chains {
                for rule in chain.rules {
                    for case let .port(_, range, _) in rule.matches { others.append(range.first) }
                }
            }
        }
        let used = Set(published.map(\.0) + container)
        var unpublished = Array(Set(others).subtracting(used)).sorted()
        var pool = [22, 81, 3000, 5000, 8081, 9999, 10081, 12345].map(UInt16.init).filter { !used.contains($0) && !unpublished.contains($0) }
        pool.shuffle(using: &random)
        unpublished += pool.prefix(2)
        var seen = Set<String>()
        published = published.filter { seen.insert("\($0.0)/\($0.1)").inserted }
        return Ports(published: published, container: Array(Set(container)).sorted(), unpublished: unpublished)
    }
}

// MARK: Flows

/// One new connection (TCP) or first datagram (UDP) from a node to an address and port.
struct DiffFlow: Sendable, CustomStringConvertible {
    var index: Int
    var source: Int
    var sourceName: String
    var origin: Origin
    /// The address the kernel should pick and the port the client binds.
    var sourceEndpoint: SocketEndpoint
    var destination: SocketEndpoint
    var destinationName: String
    var transport: TransportProtocol
    /// `published`, `container` or `unpublished` (the destination port's kind).
    var category: String

    var payload: String { "weirdiff flow \(index) \(sourceEndpoint.port)\n" }

    var packet: Packet {
        Packet(source: sourceEndpoint.address, destination: destination.address, transport: transport,
               sourcePort: sourceEndpoint.port, destinationPort: destination.port, state: .new)
    }

    var description: String {
        "#\(index) \(transport) \(sourceName) \(sourceEndpoint) → \(destination) (\(destinationName), \(category) port)"
    }
}

extension DiffHost {
    /// `count` flows: first a fixed core (each published binding from the first peer, the host to
    /// its own uplink address and to its IPv6 gateway, the peer to an unpublished host port, a
    /// container out to the peer, container to container, the peer straight to each container),
    /// then random ones: a random source node, a random destination node (itself only for the
    /// host) and one of its addresses, a published, container or unpublished port, TCP or UDP.
    /// Source ports are `firstPort`, `firstPort + 1`, … so every flow has a 5-tuple of its own.
    func flows(count: Int, seed: UInt64, firstPort: UInt16 = 20_000) -> (flows: [DiffFlow], ports: Ports) {
        var random = SplitMix64(seed: DifferentialSeed.derive(seed, name))
        let ports = ports(&random)
        var flows: [DiffFlow] = []
        var seen = Set<String>()

        func add(_ source: Int, _ address: IPAddress, _ port: UInt16, _ transport: TransportProtocol) {
            guard flows.count < count, let departure = departure(from: source, to: address) else { return }
            let key = "\(source) \(address) \(port) \(transport)"
            guard seen.insert(key).inserted else { return }
            let category = ports.published.contains { $0.port == port && $0.transport == transport } ? "published"
                : ports.container.contains(port) ? "container" : "unpublished"
            let index = flows.count
            flows.append(DiffFlow(index: index, source: source, sourceName: nodes[source].name, origin: departure.origin,
                                  sourceEndpoint: SocketEndpoint(departure.address, firstPort + UInt16(index)),
                                  destination: SocketEndpoint(address, port),
                                  destinationName: owner(of: address).map { nodes[$0].name } ?? "nobody",
                                  transport: transport, category: category))
        }

        // The core.
        let peers = nodes.indices.filter { if case .peer = nodes[$0].kind { true } else { false } }
        let containers = nodes.indices.filter { if case .container = nodes[$0].kind { true } else { false } }
        let uplinkAddress = topology.uplinks.first?.addresses.first { $0.family == .ipv4 }?.address
        for c in topology.containers {
            for binding in c.published where binding.transport == .tcp || binding.transport == .udp {
                if let address = binding.hostAddress, address == IPAddress("::1")! || (address.family == .ipv4 && Prefix("127.0.0.0/8")!.contains(address)) {
                    add(0, address, binding.hostPort, binding.transport)
                } else if let peer = peers.first, let address = binding.hostAddress ?? uplinkAddress {
                    add(peer, address, binding.hostPort, binding.transport)
                }
            }
        }
        if let uplink = topology.uplinks.first?.addresses.first?.address {
            if let first = ports.published.first { add(0, uplink, first.port, first.transport) }
            // An unpublished port of the host from outside: INPUT decides.
            if let peer = peers.first, let port = ports.unpublished.last { add(peer, uplink, port, .tcp) }
        }
        // IPv6: the host to its first IPv6 gateway on the first published port (ip6 nat OUTPUT).
        if let gateway = topology.bridges.lazy.flatMap(\.gateways).first(where: { $0.family == .ipv6 })?.address,
           let first = ports.published.first {
            add(0, gateway, first.port, first.transport)
        }
        if let peer = peers.first, let address = nodes[peer].addresses.first {
            for c in containers where departure(from: c, to: address) != nil {
                add(c, address, ports.container.first ?? ports.unpublished[0], .tcp)
                break
            }
        }
        for a in containers {
            for b in containers where a != b {
                if let address = nodes[b].addresses.first, nodes[a].links.contains(where: { l in l.prefixes.contains { $0.contains(address) } }) {
                    add(a, address, ports.container.first ?? ports.unpublished[0], .udp)
                    break
                }
            }
        }

        // Every container straight from the first peer (routed to its address, no DNAT).
        if let peer = peers.first {
            for c in containers {
                if let address = nodes[c].addresses.first { add(peer, address, ports.container.first ?? ports.unpublished[0], .udp) }
            }
        }

        // Random flows: the destination node first, then one of its addresses.
        var attempts = 0
        while flows.count < count, attempts < count * 200 {
            attempts += 1
            let transport: TransportProtocol = Bool.random(using: &random) ? .tcp : .udp
            let source = Int.random(in: 0..<nodes.count, using: &random)
            let address = nodes[Int.random(in: 0..<nodes.count, using: &random)].addresses.randomElement(using: &random)!
            let roll = Double.random(in: 0..<1, using: &random)
            let port: UInt16
            if roll < 0.45, !ports.published.isEmpty {
                let same = ports.published.filter { $0.transport == transport }
                port = (same.isEmpty ? ports.published : same).randomElement(using: &random)!.port
            } else if roll < 0.7, !ports.container.isEmpty {
                port = ports.container.randomElement(using: &random)!
            } else {
                port = ports.unpublished.randomElement(using: &random)!
            }
            add(source, address, port, transport)
        }
        return (flows, ports)
    }
}

/// Every policy under `Policies/` (the top-level `.weir` files; `include/` holds fragments).
enum DifferentialPolicies {
    static var all: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: LabPolicy.root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }
}
