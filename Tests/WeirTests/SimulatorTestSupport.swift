import Foundation
import Testing
import WeirDriver
import WeirModel
import WeirSimulator

// MARK: Building rulesets by hand

/// Small constructors for hand-made rulesets: `base(.forward, in: "filter", policy: .drop, [rules])`.
enum SimulatorFixtures {
    static func base(_ hook: Hook, in table: String, policy: ChainPolicy = .accept, _ rules: [Rule] = []) -> Chain {
        Chain(name: hook.rawValue, kind: .base(hook: hook, priority: XtablesLayout.priority(table: table, hook: hook), policy: policy), rules: rules)
    }

    static func user(_ name: String, _ rules: [Rule] = []) -> Chain { Chain(name: name, kind: .user, rules: rules) }

    /// A table with every built-in chain of `name` (policy ACCEPT, empty), replaced by `chains`.
    static func table(_ name: String, _ family: Family = .ipv4, _ chains: [Chain] = []) -> Table {
        var table = XtablesLayout.emptyTable(name, family: family)!
        for chain in chains { table.add(chain) }
        return table
    }

    static func rule(_ matches: Match..., target: Target) -> Rule { Rule(matches, target) }

    static let tcp = Match.protocol(.tcp)
    static let udp = Match.protocol(.udp)
    static func dport(_ port: UInt16) -> Match { .port(.destination, PortRange(port)) }
    static func src(_ text: String, negated: Bool = false) -> Match { .address(.source, Prefix(text)!, negated: negated) }
    static func dst(_ text: String, negated: Bool = false) -> Match { .address(.destination, Prefix(text)!, negated: negated) }
    static func iif(_ name: String, negated: Bool = false) -> Match { .inInterface(InterfaceName(iptables: name), negated: negated) }
    static func oif(_ name: String, negated: Bool = false) -> Match { .outInterface(InterfaceName(iptables: name), negated: negated) }
    static func to(_ address: String, _ port: UInt16? = nil) -> NATDestination {
        NATDestination(address: IPAddress(address)!, ports: port.map { PortRange($0) })
    }

    /// eth0 10.0.0.1/24 (default route), the bridge docker0 172.17.0.1/16, lo.
    static let host = HostModel(
        interfaces: [.init(name: "eth0", addresses: [Prefix("10.0.0.1/24")!, Prefix("fd00::1/64")!]),
                     .init(name: "docker0", addresses: [Prefix("172.17.0.1/16")!, Prefix("fd00:17::1/64")!], isBridge: true)],
        extraRoutes: [.init(destination: Prefix("0.0.0.0/0")!, interface: "eth0"), .init(destination: Prefix("::/0")!, interface: "eth0")])

    static func packet(_ source: String, _ destination: String, _ transport: TransportProtocol = .tcp, sport: UInt16 = 40000,
                       dport: UInt16 = 80, state: ConntrackState = .new) -> Packet {
        Packet(source: IPAddress(source)!, destination: IPAddress(destination)!, transport: transport,
               sourcePort: sport, destinationPort: dport, state: state)
    }

    /// A policy of `Policies/`, loaded as `weir trace` loads it.
    static func policy(_ name: String) throws -> (ruleset: Ruleset, host: HostModel) {
        switch RulesetSource.policy(Repository.policy(name)).load() {
        case .success(let loaded): return (loaded.ruleset, try #require(loaded.host))
        case .failure(let error):
            Issue.record("\(name) does not load: \(error.diagnostics)")
            throw CancellationError()
        }
    }

    /// A generated benchmark policy (`weir bench`'s), loaded from text.
    static func benchmarkPolicy(networks: Int, publishes: Int) throws -> (ruleset: Ruleset, host: HostModel) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-sim-bench-\(UUID().uuidString).weir").path
        try BenchmarkPolicy.text(networks: networks, publishes: publishes, perContainer: 10).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        switch RulesetSource.policy(path).load() {
        case .success(let loaded): return (loaded.ruleset, try #require(loaded.host))
        case .failure(let error):
            Issue.record("the benchmark policy does not load: \(error.diagnostics)")
            throw CancellationError()
        }
    }
}

extension Traversal {
    /// `table:chain:kind:N` of every step.
    var locations: [String] { steps.map(\.location) }
    /// `table:chain:kind:N IN=… OUT=…` of every step.
    var lines: [String] { steps.map { "\($0.location) IN=\($0.input ?? "") OUT=\($0.output ?? "")" } }
}

// MARK: The reference evaluator

/// The simulator's semantics written as plainly as possible: rules as enum cases matched one by
/// one, chains scanned from the top, strings everywhere. The fast `Simulator` (precompiled rules,
/// interned interfaces, indexed long chains) must agree with it on every packet; the property
/// tests check that on random rulesets and packets.
struct ReferenceSimulator {
    struct Step: Equatable, CustomStringConvertible {
        var location: String
        var input: String?
        var output: String?
        var packet: Packet
        var description: String { "\(location) IN=\(input ?? "") OUT=\(output ?? "") \(packet)" }
    }

    struct Result: Equatable {
        var steps: [Step]
        var outcome: Outcome
        var packet: Packet
        var exit: String?
        var translation: [Packet]?
    }

    let ruleset: Ruleset
    let host: HostModel

    struct Walk {
        var packet: Packet
        var input: String?
        var output: String?
        var steps: [Step] = []
        var dropped: String? = nil
    }

    /// The fast simulator's result in the reference's shape.
    static func shape(_ t: Traversal) -> Result {
        Result(steps: t.steps.map { Step(location: $0.location, input: $0.input, output: $0.output, packet: $0.packet) },
               outcome: t.outcome, packet: t.packet, exit: t.exitInterface,
               translation: t.translation.map { [$0.original, $0.translated] })
    }

    func simulate(_ packet: Packet, from origin: Origin, flow: [Packet]? = nil) -> Result {
        var walk = Walk(packet: packet)
        func finish(_ outcome: Outcome, exit: String?) -> Result {
            let p = walk.packet
            let translated = p.source != packet.source || p.destination != packet.destination
                || p.sourcePort != packet.sourcePort || p.destinationPort != packet.destinationPort
            return Result(steps: walk.steps, outcome: outcome, packet: p, exit: exit, translation: translated ? [packet, p] : nil)
        }
        switch origin {
        case .interface(let name):
            walk.input = name
            // A frame for another port of the bridge it came in on is bridged, not routed.
            let bridged = isBridge(name) && host.route(packet.destination) == name
            if bridged && !host.bridgeNetfilter { return finish(.forwarded(name), exit: name) }
            runHook(.prerouting, &walk, deNAT: flow)
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            guard let out = host.route(walk.packet.destination) else { return finish(.unroutable, exit: nil) }
            if out == "lo" {
                runHook(.input, &walk)
                // nat INPUT un-NATs a reply's source (the answer to host → 10.0.3.121:10080).
                if let flow { unNATSource(&walk, flow) }
                if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
                return finish(.deliveredLocally, exit: "lo")
            }
            guard host.ipForward || (bridged && out == name) else { return finish(.unroutable, exit: nil) }
            walk.output = out
            runHook(.forward, &walk)
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            walk.input = nil
            runHook(.postrouting, &walk)
            if let flow { unNATSource(&walk, flow) }
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            return finish(.forwarded(out), exit: out)
        case .local:
            guard let first = host.route(walk.packet.destination) else { return finish(.unroutable, exit: nil) }
            walk.output = first
            runHook(.output, &walk, deNAT: flow)
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            guard let out = host.route(walk.packet.destination) else { return finish(.unroutable, exit: nil) }
            walk.output = out
            runHook(.postrouting, &walk)
            if let flow { unNATSource(&walk, flow) }
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            guard out == "lo" else { return finish(.sent(out), exit: out) }
            walk.input = "lo"
            walk.output = nil
            runHook(.prerouting, &walk, natDone: true)
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            runHook(.input, &walk, natDone: true)
            if let at = walk.dropped { return finish(.dropped(at: at), exit: nil) }
            return finish(.deliveredLocally, exit: "lo")
        }
    }

    func reply(to result: Result) -> Result? {
        let d = result.packet
        let reply = Packet(source: d.destination, destination: d.source, transport: d.transport,
                           sourcePort: d.destinationPort, destinationPort: d.sourcePort, state: .established)
        let origin: Origin
        switch result.outcome {
        case .deliveredLocally: origin = .local
        case .forwarded(let out), .sent(let out): origin = .interface(out)
        default: return nil
        }
        return simulate(reply, from: origin, flow: result.translation ?? [d, d])
    }

    func isBridge(_ name: String) -> Bool { host.interfaces.contains { $0.name == name && $0.isBridge } }

    /// flow = [original, translated].
    func unNATDestination(_ walk: inout Walk, _ flow: [Packet]) {
        if walk.packet.destination == flow[1].source, walk.packet.destinationPort == flow[1].sourcePort {
            walk.packet.destination = flow[0].source
            walk.packet.destinationPort = flow[0].sourcePort
        }
    }

    func unNATSource(_ walk: inout Walk, _ flow: [Packet]) {
        if walk.packet.source == flow[1].destination, walk.packet.sourcePort == flow[1].destinationPort {
            walk.packet.source = flow[0].destination
            walk.packet.sourcePort = flow[0].destinationPort
        }
    }

    /// Base chains of the hook by priority; a reply's destination is un-NATed where the nat
    /// hook (priority -100) would do it.
    func runHook(_ hook: Hook, _ walk: inout Walk, natDone: Bool = false, deNAT: [Packet]? = nil) {
        var bases: [(table: Table, chain: Chain, priority: Int, order: Int)] = []
        for table in ruleset.tables where table.family == walk.packet.family {
            for chain in table.chains {
                if case .base(let h, let priority, _) = chain.kind, h == hook { bases.append((table, chain, priority, bases.count)) }
            }
        }
        bases.sort { ($0.priority, $0.order) < ($1.priority, $1.order) }
        var pending = deNAT
        for base in bases {
            if let flow = pending, base.priority > -100 { unNATDestination(&walk, flow); pending = nil }
            if base.table.name == "nat" && (walk.packet.state != .new || natDone) { continue }
            runBase(base.table, base.chain, &walk)
            if walk.dropped != nil { return }
        }
        if let flow = pending { unNATDestination(&walk, flow) }
    }

    func record(_ walk: inout Walk, _ table: Table, _ chain: Chain, _ kind: String, _ number: Int) {
        walk.steps.append(Step(location: "\(table.name):\(chain.name):\(kind):\(number)", input: walk.input, output: walk.output, packet: walk.packet))
    }

    func policy(_ walk: inout Walk, _ table: Table, _ base: Chain) {
        record(&walk, table, base, "policy", base.rules.count + 1)
        if base.policy == .drop { walk.dropped = "\(table.name):\(base.name):policy:\(base.rules.count + 1)" }
    }

    func runBase(_ table: Table, _ base: Chain, _ walk: inout Walk) {
        var stack: [(chain: Chain, rule: Int)] = []
        var chain = base
        var index = 0
        var gotos = 0
        let isNAT = table.name == "nat"
        outer: while true {
            while index < chain.rules.count {
                let rule = chain.rules[index]
                guard matches(rule, walk) else { index += 1; continue }
                let standard: Bool = switch rule.target { case .accept, .drop, .return: true; default: false }
                let kind = rule.matches.isEmpty && standard ? (chain.name == base.name ? "policy" : "return") : "rule"
                record(&walk, table, chain, kind, index + 1)
                let location = "\(table.name):\(chain.name):\(kind):\(index + 1)"
                switch rule.target {
                case .accept: return
                case .drop, .reject: walk.dropped = location; return
                case .return:
                    guard let frame = stack.popLast() else { policy(&walk, table, base); return }
                    (chain, index) = (frame.chain, frame.rule + 1)
                    continue outer
                case .jump(let name), .goto(let name):
                    guard let target = table.chain(named: name) else { index += 1; continue }
                    if case .jump = rule.target {
                        // The kernel's jump stack holds one entry per user chain; a loop overflows it.
                        if stack.count >= table.chains.count { walk.dropped = location; return }
                        stack.append((chain, index))
                    } else {
                        // A loop of gotos never overflows it: stop after 65,536 of them.
                        gotos += 1
                        if gotos > 1 << 16 { walk.dropped = location; return }
                    }
                    (chain, index) = (target, 0)
                    continue outer
                case .dnat(let to):
                    guard isNAT else { index += 1; continue }
                    walk.packet.destination = to.address
                    if let ports = to.ports { walk.packet.destinationPort = ports.first }
                    return
                case .snat(let to):
                    guard isNAT else { index += 1; continue }
                    walk.packet.source = to.address
                    if let ports = to.ports { walk.packet.sourcePort = ports.first }
                    return
                case .masquerade(let ports):
                    guard isNAT, let out = walk.output, let address = masqueradeSource(out, walk.packet) else {
                        walk.dropped = location; return
                    }
                    walk.packet.source = address
                    if let ports { walk.packet.sourcePort = ports.first }
                    return
                case .log, .checksumFill:
                    index += 1
                }
            }
            if chain.name == base.name && stack.isEmpty { policy(&walk, table, base); return }
            record(&walk, table, chain, "return", chain.rules.count + 1)
            guard let frame = stack.popLast() else { policy(&walk, table, base); return }
            (chain, index) = (frame.chain, frame.rule + 1)
        }
    }

    /// The out interface's first address; out lo (a packet for the host's own address) IPv4 takes
    /// the first non-loopback address of the host, IPv6 the destination (the kernel's source
    /// address selection).
    func masqueradeSource(_ out: String, _ packet: Packet) -> IPAddress? {
        guard out == "lo" else { return host.primaryAddress(of: out, family: packet.family) }
        if packet.family == .ipv6 { return packet.destination }
        return host.interfaces.lazy.compactMap { $0.addresses.first { $0.family == .ipv4 && !Prefix("127.0.0.0/8")!.contains($0.address) }?.address }.first
    }

    func matches(_ rule: Rule, _ walk: Walk) -> Bool {
        let p = walk.packet
        func interface(_ pattern: InterfaceName, _ name: String?) -> Bool {
            guard let name else { return false }
            return pattern.isWildcard ? name.hasPrefix(pattern.name) : name == pattern.name
        }
        for match in rule.matches {
            let holds: Bool, negated: Bool
            switch match {
            case let .inInterface(name, n): (holds, negated) = (interface(name, walk.input), n)
            case let .outInterface(name, n): (holds, negated) = (interface(name, walk.output), n)
            case let .address(direction, prefix, n): (holds, negated) = (prefix.contains(direction == .source ? p.source : p.destination), n)
            case let .protocol(transport, n): (holds, negated) = (p.transport == transport, n)
            case let .port(direction, range, n):
                guard p.transport.hasPorts else { return false }
                (holds, negated) = (range.contains(direction == .source ? p.sourcePort : p.destinationPort), n)
            case let .conntrackState(states, n): (holds, negated) = (states.contains(p.state), n)
            case let .addressType(direction, type, n):
                (holds, negated) = (host.addressType(of: direction == .source ? p.source : p.destination) == type, n)
            case .comment: continue
            }
            if holds == negated { return false }
        }
        return true
    }
}
