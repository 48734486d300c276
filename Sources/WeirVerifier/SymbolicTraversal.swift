import WeirModel
import WeirSimulator

/// A header field's value on one path through the host: the arriving packet's own field, or
/// the constant a NAT target wrote. Every NAT in the model writes a constant (DNAT and SNAT
/// their destination, MASQUERADE the out interface's address, known on the path), so a path
/// needs no more than this.
public enum AddressValue: Sendable, Hashable, CustomStringConvertible {
    case original(Direction)
    case constant(IPAddress)

    public var description: String {
        switch self {
        case .original(let d): d == .source ? "src" : "dst"
        case .constant(let a): "\(a)"
        }
    }
}

/// A port's value on a path (see `AddressValue`).
public enum PortValue: Sendable, Hashable, CustomStringConvertible {
    case original(Direction)
    case constant(UInt16)

    public var description: String {
        switch self {
        case .original(let d): d == .source ? "sport" : "dport"
        case .constant(let p): "\(p)"
        }
    }
}

/// What happens to every packet of one class: where it ends, and its header then, as values
/// of the arriving packet's fields.
public struct SymbolicOutcome: Sendable, Hashable, CustomStringConvertible {
    public enum Fate: Sendable, Hashable {
        case deliveredLocally
        /// Out the interface of this class (`PacketSpace.interfaces`).
        case forwarded(Int)
        case sent(Int)
        /// By a rule or a policy (where is not observable, and the simulator's trace tells).
        case dropped
        case unroutable

        var getsThrough: Bool {
            switch self {
            case .deliveredLocally, .forwarded, .sent: true
            case .dropped, .unroutable: false
            }
        }
    }

    public var fate: Fate
    public var source: AddressValue
    public var destination: AddressValue
    public var sourcePort: PortValue
    public var destinationPort: PortValue

    public var description: String {
        let header = "src=\(source) dst=\(destination) sport=\(sourcePort) dport=\(destinationPort)"
        switch fate {
        case .deliveredLocally: return "delivered locally, \(header)"
        case .forwarded(let c): return "forwarded out class \(c), \(header)"
        case .sent(let c): return "sent out class \(c), \(header)"
        case .dropped: return "dropped"
        case .unroutable: return "unroutable"
        }
    }

    /// The outcome for one concrete arriving packet.
    public func concrete(for packet: Packet, space: PacketSpace) -> ObservableOutcome {
        func address(_ value: AddressValue) -> IPAddress {
            switch value {
            case .original(let d): d == .source ? packet.source : packet.destination
            case .constant(let a): a
            }
        }
        func port(_ value: PortValue) -> UInt16 {
            switch value {
            case .original(let d): d == .source ? packet.sourcePort : packet.destinationPort
            case .constant(let p): p
            }
        }
        var final = packet
        final.source = address(source)
        final.destination = address(destination)
        final.sourcePort = port(sourcePort)
        final.destinationPort = port(destinationPort)
        switch fate {
        case .deliveredLocally: return ObservableOutcome(fate: .deliveredLocally, packet: final)
        case .forwarded(let c): return ObservableOutcome(fate: .forwarded(space.interfaces[c]), packet: final)
        case .sent(let c): return ObservableOutcome(fate: .sent(space.interfaces[c]), packet: final)
        case .dropped: return ObservableOutcome(fate: .dropped, packet: nil)
        case .unroutable: return ObservableOutcome(fate: .unroutable, packet: nil)
        }
    }
}

/// One class of packets and what happens to all of them.
public struct OutcomeClass: Sendable {
    public var packets: BDDManager.Node
    public var outcome: SymbolicOutcome
}

/// Symbolic execution of a ruleset through the simulator's pipeline (`Simulator.traverse`):
/// the same hooks in the same order, base chains by priority, nat only for NEW packets, the
/// routing decision after PREROUTING (and again after OUTPUT), bridging, loopback re-entry,
/// and MASQUERADE to the out interface's address — on sets of packets instead of one packet.
///
/// Sets are BDDs over the arriving packet's fields (`PacketSpace`); the in-interface field's
/// class 0 ("none") stands for a locally sent packet. A path carries what is constant on it:
/// the field values NAT wrote (`AddressValue`, `PortValue`), the out interface once routed,
/// and the in interface where the pipeline fixes it. A match on a constant is decided on the
/// spot; any other becomes a BDD. The classes returned are disjoint and cover every packet of
/// the family; the concrete simulator, given a packet of a class (without a known flow), ends
/// with that class's outcome.
public struct SymbolicTraversal {
    public let ruleset: Ruleset
    public let host: HostModel
    public let space: PacketSpace
    public let manager: BDDManager
    let encoder: MatchEncoder
    /// Match → packets, for matches on fields no NAT has rewritten (the same on every path).
    let cache = MatchCache()
    /// tcp, udp or sctp.
    let hasPorts: BDDManager.Node
    /// The family's base chains per hook, in the simulator's order (priority, then ruleset order).
    let bases: [Hook: [(table: Table, chain: Chain)]]
    /// The routing table as regions of the destination (and source) field.
    let destinationRegions: [(interface: Int, destinations: BDDManager.Node)]
    let sourceRegions: [(interface: Int, destinations: BDDManager.Node)]

    public init(ruleset: Ruleset, host: HostModel, space: PacketSpace, manager: BDDManager) {
        self.ruleset = ruleset
        self.host = host
        self.space = space
        self.manager = manager
        encoder = MatchEncoder(space: space, host: host, manager: manager)
        hasPorts = encoder.hasPorts
        var all: [(hook: Hook, priority: Int, order: Int, table: Table, chain: Chain)] = []
        for table in ruleset.tables where table.family == space.family {
            for chain in table.chains {
                if case .base(let hook, let priority, _) = chain.kind {
                    all.append((hook, priority, all.count, table, chain))
                }
            }
        }
        all.sort { ($0.priority, $0.order) < ($1.priority, $1.order) }
        var bases: [Hook: [(table: Table, chain: Chain)]] = [:]
        for entry in all { bases[entry.hook, default: []].append((entry.table, entry.chain)) }
        self.bases = bases
        destinationRegions = Self.routeRegions(field: space.destinationStart, host: host, space: space, manager: manager)
        sourceRegions = Self.routeRegions(field: space.sourceStart, host: host, space: space, manager: manager)
    }

    // MARK: Paths

    /// One path: its packets and what is constant on it.
    struct Path {
        var packets: BDDManager.Node
        var source: AddressValue = .original(.source)
        var destination: AddressValue = .original(.destination)
        var sourcePort: PortValue = .original(.source)
        var destinationPort: PortValue = .original(.destination)
        /// Nil: the arriving packet's in-interface field; else a class (0: none).
        var input: Int?
        /// The out interface class (0: none).
        var output = 0
        /// The bridge the packet is bridged on, if it is.
        var bridge: Int?

        func with(_ packets: BDDManager.Node) -> Path {
            var copy = self
            copy.packets = packets
            return copy
        }

        func outcome(_ fate: SymbolicOutcome.Fate) -> SymbolicOutcome {
            SymbolicOutcome(fate: fate, source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort)
        }

        /// What two paths must share to merge into one.
        var key: Key { Key(source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort, input: input, output: output, bridge: bridge) }

        struct Key: Hashable {
            var source: AddressValue
            var destination: AddressValue
            var sourcePort: PortValue
            var destinationPort: PortValue
            var input: Int?
            var output: Int
            var bridge: Int?
        }
    }

    /// Unions the packets of paths that agree on everything else, keeping first-seen order.
    func merged(_ paths: [Path]) -> [Path] {
        var index: [Path.Key: Int] = [:]
        var out: [Path] = []
        for path in paths where !path.packets.isFalse {
            if let i = index[path.key] {
                out[i].packets = manager.or(out[i].packets, path.packets)
            } else {
                index[path.key] = out.count
                out.append(path)
            }
        }
        return out
    }

    // MARK: The pipeline

    /// Every packet of the family, split into classes by outcome.
    public func classes() -> [OutcomeClass] {
        let m = manager
        // One class per outcome, in the order outcomes first appear.
        var finished: [OutcomeClass] = []
        var positions: [SymbolicOutcome: Int] = [:]
        func finish(_ path: Path, _ fate: SymbolicOutcome.Fate) {
            guard !path.packets.isFalse else { return }
            var outcome = path.outcome(fate)
            if !fate.getsThrough {
                // The header is not observable: one class for every drop (and one for no route).
                outcome = SymbolicOutcome(fate: fate, source: .original(.source), destination: .original(.destination),
                                          sourcePort: .original(.source), destinationPort: .original(.destination))
            }
            if let i = positions[outcome] {
                finished[i].packets = m.or(finished[i].packets, path.packets)
            } else {
                positions[outcome] = finished.count
                finished.append(OutcomeClass(packets: path.packets, outcome: outcome))
            }
        }
        func finish(_ drops: [(BDDManager.Node, String)], from path: Path) {
            for (packets, _) in drops { finish(path.with(packets), .dropped) }
        }

        let all = universe
        let local = m.equals(field: space.inInterfaceStart, width: space.interfaceBits, 0)
        let loopback = space.interfaceClass("lo")

        // Received on an interface.
        var received = Path(packets: m.minus(all, local), input: nil)
        var arriving: [Path] = []
        for bridge in host.interfaces where bridge.isBridge {
            let c = space.interfaceClass(bridge.name)
            let on = m.and(received.packets, m.and(m.equals(field: space.inInterfaceStart, width: space.interfaceBits, UInt128(c)),
                                                    routed(to: c, field: .original(.destination))))
            if on.isFalse { continue }
            received.packets = m.minus(received.packets, on)
            var bridged = Path(packets: on, input: c)
            bridged.bridge = c
            if !host.bridgeNetfilter {
                finish(bridged, .forwarded(c))
            } else {
                arriving.append(bridged)
            }
        }
        arriving.insert(received, at: 0)
        let (afterPrerouting, droppedInPrerouting) = runHook(.prerouting, arriving)
        for (path, drops) in droppedInPrerouting { finish(drops, from: path) }
        for path in afterPrerouting {
            for (routedPath, out) in route(path) {
                guard let out else {
                    finish(routedPath, .unroutable)
                    continue
                }
                if out == loopback {
                    let (delivered, drops) = runHook(.input, [routedPath])
                    for (p, d) in drops { finish(d, from: p) }
                    for p in delivered { finish(p, .deliveredLocally) }
                    continue
                }
                // Forwarding: on, or a bridged packet going back out of its bridge.
                var forwardable = routedPath
                if !host.ipForward && routedPath.bridge != out {
                    finish(routedPath, .unroutable)
                    continue
                }
                forwardable.output = out
                let (forwarded, forwardDrops) = runHook(.forward, [forwardable])
                for (p, d) in forwardDrops { finish(d, from: p) }
                let leaving = forwarded.map { p -> Path in
                    var q = p
                    q.input = 0
                    return q
                }
                let (sent, postDrops) = runHook(.postrouting, leaving)
                for (p, d) in postDrops { finish(d, from: p) }
                for p in sent { finish(p, .forwarded(out)) }
            }
        }

        // Sent by a local process.
        let start = Path(packets: m.and(all, local), input: 0)
        for (routedPath, first) in route(start) {
            guard let first else {
                finish(routedPath, .unroutable)
                continue
            }
            var outgoing = routedPath
            outgoing.output = first
            let (afterOutput, outputDrops) = runHook(.output, [outgoing])
            for (p, d) in outputDrops { finish(d, from: p) }
            for path in afterOutput {
                for (rerouted, out) in route(path) {
                    guard let out else {
                        finish(rerouted, .unroutable)
                        continue
                    }
                    var leaving = rerouted
                    leaving.output = out
                    let (sent, postDrops) = runHook(.postrouting, [leaving])
                    for (p, d) in postDrops { finish(d, from: p) }
                    for p in sent {
                        guard out == loopback else {
                            finish(p, .sent(out))
                            continue
                        }
                        // Back in through loopback, NAT already done.
                        var back = p
                        back.input = loopback
                        back.output = 0
                        let (inPrerouting, preDrops) = runHook(.prerouting, [back], natDone: true)
                        for (q, d) in preDrops { finish(d, from: q) }
                        let (delivered, inputDrops) = runHook(.input, inPrerouting, natDone: true)
                        for (q, d) in inputDrops { finish(d, from: q) }
                        for q in delivered { finish(q, .deliveredLocally) }
                    }
                }
            }
        }
        return finished
    }

    /// Every packet the space can describe: a valid in-interface class and conntrack state, and
    /// no out interface (it is a property of the path, not of the arriving packet).
    public var universe: BDDManager.Node {
        let m = manager
        let classes = m.range(field: space.inInterfaceStart, width: space.interfaceBits, 0, UInt128(space.interfaces.count - 1))
        let noOutput = m.equals(field: space.outInterfaceStart, width: space.interfaceBits, 0)
        let states = m.range(field: space.stateStart, width: 3, 0, UInt128(ConntrackState.allCases.count - 1))
        return m.and(classes, m.and(noOutput, states))
    }

    // MARK: Routing

    /// The destinations `HostModel.route` sends out the interface of class `c`, for a
    /// destination held in `field`.
    func routed(to c: Int, field: AddressValue) -> BDDManager.Node {
        regions(field).filter { $0.interface == c }.reduce(BDDManager.Node.false) { manager.or($0, $1.destinations) }
    }

    func regions(_ field: AddressValue) -> [(interface: Int, destinations: BDDManager.Node)] {
        switch field {
        case .original(.source): sourceRegions
        case .original(.destination): destinationRegions
        case .constant: []
        }
    }

    /// The routing table as disjoint regions of an address field: local addresses (`lo`), then
    /// each route minus the longer (or earlier equally long) ones, as `HostModel.route` picks.
    static func routeRegions(field start: Int, host: HostModel, space: PacketSpace, manager m: BDDManager) -> [(interface: Int, destinations: BDDManager.Node)] {
        let width = space.addressBits
        var local = BDDManager.Node.false
        if space.family == .ipv4 { local = m.prefix(field: start, width: width, IPAddress("127.0.0.0")!.bits, length: 8) }
        for interface in host.interfaces {
            for prefix in interface.addresses where prefix.family == space.family {
                local = m.or(local, m.equals(field: start, width: width, prefix.address.bits))
            }
        }
        var regions: [(interface: Int, destinations: BDDManager.Node)] = [(space.interfaceClass("lo"), local)]
        var covered = local
        let candidates = host.interfaces.flatMap { i in i.addresses.map { HostModel.Route(destination: $0.canonical, interface: i.name) } } + host.extraRoutes
        let ordered = candidates.enumerated().filter { $0.element.destination.family == space.family }
            .sorted { ($0.element.destination.length, -$0.offset) > ($1.element.destination.length, -$1.offset) }
        for (_, route) in ordered {
            let region = m.minus(m.prefix(field: start, width: width, route.destination.address.bits, length: route.destination.length), covered)
            if region.isFalse { continue }
            covered = m.or(covered, region)
            regions.append((space.interfaceClass(route.interface), region))
        }
        return regions
    }

    /// Splits a path by its routing decision: each part with its out interface class, or nil
    /// where there is no route.
    func route(_ path: Path) -> [(Path, Int?)] {
        switch path.destination {
        case .constant(let address):
            return [(path, host.route(address).map { space.interfaceClass($0) })]
        case .original:
            var out: [(Path, Int?)] = []
            var rest = path.packets
            for region in regions(path.destination) {
                let part = manager.and(rest, region.destinations)
                if part.isFalse { continue }
                rest = manager.minus(rest, part)
                out.append((path.with(part), region.interface))
            }
            if !rest.isFalse { out.append((path.with(rest), nil)) }
            return out
        }
    }

    // MARK: Hooks and chains

    /// Runs every base chain of `hook` on the paths: the paths that come through (merged), and
    /// the drops with the path they were dropped on.
    func runHook(_ hook: Hook, _ paths: [Path], natDone: Bool = false) -> ([Path], [(Path, [(BDDManager.Node, String)])]) {
        var current = merged(paths)
        var drops: [(Path, [(BDDManager.Node, String)])] = []
        let newState = manager.equals(field: space.stateStart, width: 3, UInt128(PacketSpace.stateIndex(.new)))
        for (table, chain) in bases[hook] ?? [] {
            let isNAT = table.name == "nat"
            var next: [Path] = []
            for path in current {
                var runs = path
                if isNAT {
                    if natDone { next.append(path); continue }
                    let skip = manager.minus(path.packets, newState)
                    if !skip.isFalse { next.append(path.with(skip)) }
                    runs = path.with(manager.and(path.packets, newState))
                    if runs.packets.isFalse { continue }
                }
                var dropped: [(BDDManager.Node, String)] = []
                for (packets, verdict) in ChainRun(traversal: self, table: table, path: runs).run(chain) {
                    switch verdict {
                    case .accept:
                        next.append(runs.with(packets))
                    case .drop(let at):
                        dropped.append((packets, at))
                    case .translate(let target, let at):
                        if let translated = translate(runs.with(packets), target) {
                            next.append(translated)
                        } else {
                            dropped.append((packets, at))
                        }
                    }
                }
                if !dropped.isEmpty { drops.append((runs, dropped)) }
            }
            current = merged(next)
        }
        return (current, drops)
    }

    /// A path after a NAT target; nil when MASQUERADE has no address to take (a drop).
    func translate(_ path: Path, _ target: Target) -> Path? {
        var p = path
        switch target {
        case .dnat(let to):
            p.destination = .constant(to.address)
            if let ports = to.ports { p.destinationPort = .constant(ports.first) }
        case .snat(let to):
            p.source = .constant(to.address)
            if let ports = to.ports { p.sourcePort = .constant(ports.first) }
        case .masquerade(let ports):
            guard p.output != 0, let address = masqueradeSource(p) else { return nil }
            p.source = address
            if let ports { p.sourcePort = .constant(ports.first) }
        default:
            break
        }
        return p
    }

    /// `Simulator.masqueradeSource` on a path.
    func masqueradeSource(_ path: Path) -> AddressValue? {
        let name = space.interfaces[path.output]
        guard name == "lo" else {
            return host.primaryAddress(of: name, family: space.family).map(AddressValue.constant)
        }
        if space.family == .ipv6 { return path.destination }
        let loopback = Prefix("127.0.0.0/8")!
        for interface in host.interfaces {
            if let prefix = interface.addresses.first(where: { $0.family == .ipv4 && !loopback.contains($0.address) }) {
                return .constant(prefix.address)
            }
        }
        return nil
    }

    // MARK: Matches on a path

    /// The packets of a path that a rule's matches accept.
    func packets(matching rule: Rule, on path: Path) -> BDDManager.Node {
        var set = BDDManager.Node.true
        for match in rule.matches {
            set = manager.and(set, packets(matching: match, on: path))
            if set.isFalse { break }
        }
        return set
    }

    func packets(matching match: Match, on path: Path) -> BDDManager.Node {
        func constant(_ holds: Bool, _ negated: Bool) -> BDDManager.Node { holds != negated ? .true : .false }
        switch match {
        case let .inInterface(name, negated):
            guard let input = path.input else { return encoded(match) }
            return constant(space.pattern(name, matchesClass: input), negated)
        case let .outInterface(name, negated):
            return constant(space.pattern(name, matchesClass: path.output), negated)
        case let .address(direction, prefix, negated):
            switch direction == .source ? path.source : path.destination {
            case .constant(let address):
                return constant(prefix.family == address.family && prefix.contains(address), negated)
            case .original(let field):
                return encoded(.address(field, prefix, negated: negated))
            }
        case let .port(direction, range, negated):
            switch direction == .source ? path.sourcePort : path.destinationPort {
            case .constant(let port):
                return range.contains(port) != negated ? hasPorts : .false
            case .original(let field):
                return encoded(.port(field, range, negated: negated))
            }
        case let .addressType(direction, type, negated):
            switch direction == .source ? path.source : path.destination {
            case .constant(let address):
                return constant(host.addressType(of: address) == type, negated)
            case .original(let field):
                return encoded(.addressType(field, type, negated: negated))
            }
        case .protocol, .conntrackState, .comment:
            return encoded(match)
        }
    }

    /// The index of a chain, built once.
    func index(_ table: Table, _ chain: Chain) -> ChainIndex {
        let key = "\(table.name) \(chain.name)"
        if let known = cache.indexes[key] { return known }
        let built = ChainIndex(chain, space: space)
        cache.indexes[key] = built
        return built
    }

    /// The encoder's set for a match, computed once.
    func encoded(_ match: Match) -> BDDManager.Node {
        if let known = cache.sets[match] { return known }
        let set = encoder.packets(matching: match)
        cache.sets[match] = set
        return set
    }
}

/// Memoised match sets and chain indexes of one traversal.
final class MatchCache {
    var sets: [Match: BDDManager.Node] = [:]
    var indexes: [String: ChainIndex] = [:]
}

/// A chain's rules bucketed by what decides them on a path: a positive exact out interface
/// (constant on every path that runs a chain after routing), else a positive exact destination
/// address (constant after DNAT). A path then looks only at the rules that can match it, in
/// rule order — Docker's per-port rules would otherwise be scanned once per port.
struct ChainIndex {
    var byOutput: [Int: [Int]] = [:]
    var byDestination: [IPAddress: [Int]] = [:]
    var destinationKeyed: [Int] = []
    var unkeyed: [Int] = []

    init(_ chain: Chain, space: PacketSpace) {
        for (index, rule) in chain.rules.enumerated() {
            var output: Int?
            var destination: IPAddress?
            for match in rule.matches {
                switch match {
                case let .outInterface(name, false) where !name.isWildcard && output == nil:
                    output = space.interfaceClass(name.name)
                case let .address(.destination, prefix, false) where prefix.length == prefix.family.bitWidth && destination == nil:
                    destination = prefix.address
                default:
                    break
                }
            }
            if let output {
                byOutput[output, default: []].append(index)
            } else if let destination {
                byDestination[destination, default: []].append(index)
                destinationKeyed.append(index)
            } else {
                unkeyed.append(index)
            }
        }
    }

    /// The rules that can match on a path with out interface `output` and destination `destination`, in order.
    func candidates(output: Int, destination: AddressValue) -> [Int] {
        let keyed: [Int]
        if case .constant(let address) = destination { keyed = byDestination[address] ?? [] } else { keyed = destinationKeyed }
        return Self.merge(Self.merge(unkeyed, byOutput[output] ?? []), keyed)
    }

    static func merge(_ a: [Int], _ b: [Int]) -> [Int] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [Int] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] < b[j]) { out.append(a[i]); i += 1 } else { out.append(b[j]); j += 1 }
        }
        return out
    }
}

/// What a base chain decides for a class of packets.
enum ChainVerdict: Equatable {
    /// Accepted, by a rule or the policy: the packet goes on to the next base chain or hook.
    case accept
    /// Dropped or rejected, at `location` (`table:chain:rule|return|policy:N`, as traces print it).
    case drop(at: String)
    /// Accepted by a NAT target (nat tables only), which rewrites the packet.
    case translate(Target, at: String)
}

/// One base chain run on one path, with the simulator's semantics (`Simulator.run`): rules in
/// order, jumps to depth `tableChainCount` (deeper drops, like a loop), gotos in place,
/// RETURN, policies; NAT targets end the base chain in the nat table and do nothing elsewhere,
/// except MASQUERADE, which drops outside nat.
struct ChainRun {
    let traversal: SymbolicTraversal
    let table: Table
    let path: SymbolicTraversal.Path
    /// Gotos followed on one path before it counts as a loop (and drops).
    static let gotoLimit = 64

    var manager: BDDManager { traversal.manager }

    func run(_ base: Chain) -> [(BDDManager.Node, ChainVerdict)] {
        var finished: [(BDDManager.Node, ChainVerdict)] = []
        let back = evaluate(base, path.packets, baseName: base.name, depth: 0, gotos: 0, into: &finished)
        if !back.isFalse { finished.append((back, policy(base))) }
        return finished.filter { !$0.0.isFalse }
    }

    func policy(_ base: Chain) -> ChainVerdict {
        base.policy == .drop ? .drop(at: "\(table.name):\(base.name):policy:\(base.rules.count + 1)") : .accept
    }

    /// Runs `chain`; ended classes go to `finished`, and the packets that fall off its end or
    /// return are returned (at depth 0 the base chain's policy then applies).
    func evaluate(_ chain: Chain, _ packets: BDDManager.Node, baseName: String, depth: Int, gotos: Int,
                  into finished: inout [(BDDManager.Node, ChainVerdict)]) -> BDDManager.Node {
        let m = manager
        let isBase = chain.name == baseName && depth == 0
        var remaining = packets
        var returning = BDDManager.Node.false
        for index in traversal.index(table, chain).candidates(output: path.output, destination: path.destination) {
            if remaining.isFalse { break }
            let rule = chain.rules[index]
            let matched = m.and(remaining, traversal.packets(matching: rule, on: path))
            if matched.isFalse { continue }
            remaining = m.minus(remaining, matched)
            let standard: Bool = switch rule.target { case .accept, .drop, .return: true; default: false }
            let kind = rule.matches.isEmpty && standard ? (isBase ? "policy" : "return") : "rule"
            let location = "\(table.name):\(chain.name):\(kind):\(index + 1)"
            switch rule.target {
            case .accept:
                finished.append((matched, .accept))
            case .drop, .reject:
                finished.append((matched, .drop(at: location)))
            case .return:
                returning = m.or(returning, matched)
            case .jump(let name):
                guard let target = table.chain(named: name) else {
                    remaining = m.or(remaining, matched)
                    continue
                }
                guard depth < table.chains.count else {
                    finished.append((matched, .drop(at: location)))
                    continue
                }
                let back = evaluate(target, matched, baseName: baseName, depth: depth + 1, gotos: gotos, into: &finished)
                remaining = m.or(remaining, back)
            case .goto(let name):
                guard let target = table.chain(named: name) else {
                    remaining = m.or(remaining, matched)
                    continue
                }
                guard gotos < Self.gotoLimit else {
                    finished.append((matched, .drop(at: location)))
                    continue
                }
                // The goto'd chain replaces this one: what comes back of it leaves this chain too.
                let back = evaluate(target, matched, baseName: baseName, depth: depth, gotos: gotos + 1, into: &finished)
                returning = m.or(returning, back)
            case .dnat, .snat:
                if table.name == "nat" { finished.append((matched, .translate(rule.target, at: location))) } else { remaining = m.or(remaining, matched) }
            case .masquerade:
                finished.append((matched, table.name == "nat" ? .translate(rule.target, at: location) : .drop(at: location)))
            case .log, .checksumFill:
                remaining = m.or(remaining, matched)
            }
        }
        return m.or(returning, remaining)
    }
}
