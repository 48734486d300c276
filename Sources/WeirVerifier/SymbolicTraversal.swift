import WeirModel
import WeirSimulator

/// One class of packets and what happens to all of them.
public struct OutcomeClass: Sendable {
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

    /// The class as a relation between each arriving packet and its final header (the current
    /// copies of `PacketSpace`); when the fate does not get through, the header is not
    /// observable and the current copies equal the arriving ones.
    public var packets: BDDManager.Node
    public var fate: Fate

    /// What happens to one concrete packet, nil when it is not in this class.
    public func outcome(for packet: Packet, from origin: Origin, space: PacketSpace, manager m: BDDManager) -> ObservableOutcome? {
        let input = space.inputClass(origin)
        let arriving = space.arrivingSet(packet, input: input, manager: m)
        guard let assignment = m.anyMember(m.and(packets, arriving)) else { return nil }
        func value(_ f: PacketSpace.Rewritable, _ arrived: UInt128) -> UInt128 { f.currentValue(in: assignment, arrived: arrived) }
        var final = packet
        final.source = IPAddress(family: space.family, bits: value(space.source, packet.source.bits))
        final.destination = IPAddress(family: space.family, bits: value(space.destination, packet.destination.bits))
        final.sourcePort = UInt16(value(space.sourcePort, UInt128(packet.sourcePort)))
        final.destinationPort = UInt16(value(space.destinationPort, UInt128(packet.destinationPort)))
        switch fate {
        case .deliveredLocally: return ObservableOutcome(fate: .deliveredLocally, packet: final)
        case .forwarded(let c): return ObservableOutcome(fate: .forwarded(space.interfaces[c]), packet: final)
        case .sent(let c): return ObservableOutcome(fate: .sent(space.interfaces[c]), packet: final)
        case .dropped: return ObservableOutcome(fate: .dropped, packet: nil)
        case .unroutable: return ObservableOutcome(fate: .unroutable, packet: nil)
        }
    }
}

/// Symbolic execution of a ruleset through the simulator's pipeline (`Simulator.traverse`):
/// the same hooks in the same order, base chains by priority, nat only for NEW packets, the
/// routing decision after PREROUTING (and again after OUTPUT), bridging, loopback re-entry,
/// and MASQUERADE to the out interface's address — on sets of packets instead of one packet.
///
/// A path's packets are a relation between the arriving packet and its current header
/// (`PacketSpace`): NAT rewrites the current value of a field, so all the DNATs of a chain
/// continue on one path, with each arriving packet tied to its own rewritten destination.
/// The in-interface field's class 0 ("none") stands for a locally sent packet. A path carries
/// what the pipeline fixes: the out interface once routed, the in interface where known, and
/// the interface the routing table sends its current destinations to. A match on an interface
/// so fixed is decided on the spot; any other is a BDD over the current header. On a host, the
/// classes returned are disjoint on arriving packets and cover every packet of the family; the
/// concrete simulator, given a packet of a class (without a known flow), ends with that
/// class's fate and final header. On every possible host they are that for each choice of the
/// host's (`PacketSpace.HostChoices`), and a masqueraded source may be any address.
public struct SymbolicTraversal {
    public let ruleset: Ruleset
    /// Nil: every possible host (`PacketSpace.everyHost`).
    public let host: HostModel?
    public let space: PacketSpace
    public let manager: BDDManager
    let encoder: MatchEncoder
    /// What this traversal computed once, shared with other traversals in the same space.
    let cache: SymbolicCache
    /// This ruleset's chains by table and name, as the cache identifies their contents.
    let chainIDs = ChainIDs()
    /// The family's base chains per hook, in the simulator's order (priority, then ruleset order).
    let bases: [Hook: [(table: Table, chain: Chain)]]
    /// The routing table as regions of the current destination.
    let destinationRegions: [(interface: Int, destinations: BDDManager.Node)]

    /// `cache` may be shared by traversals of other rulesets with the same host, space and
    /// manager (both sides of an equivalence check): what their rulesets have in common —
    /// match sets, chains, NAT rewrites — is then computed once.
    public init(ruleset: Ruleset, host: HostModel?, space: PacketSpace, manager: BDDManager, cache: SymbolicCache = SymbolicCache()) {
        self.ruleset = ruleset
        self.host = host
        self.space = space
        self.manager = manager
        self.cache = cache
        cache.bind(to: SymbolicCache.Context(space: space, host: host, manager: manager))
        encoder = MatchEncoder(space: space, host: host, manager: manager)
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
        destinationRegions = Self.routeRegions(host: host, space: space, manager: manager)
    }

    // MARK: Paths

    /// One path: its packets and what is fixed on it.
    struct Path {
        var packets: BDDManager.Node
        /// Nil: the arriving packet's in-interface field; else a class (0: none).
        var input: Int?
        /// The out interface class (0: none).
        var output = 0
        /// The bridge the packet is bridged on, if it is.
        var bridge: Int?
        /// The class of the interface the routing table sends every current destination of
        /// the path to (-1: no route), when known; it lets a chain skip the rules for exact
        /// destinations routed elsewhere.
        var route: Int?

        func with(_ packets: BDDManager.Node) -> Path {
            var copy = self
            copy.packets = packets
            return copy
        }

        /// What two paths must share to merge into one.
        var key: Key { Key(input: input, output: output, bridge: bridge, route: route) }

        struct Key: Hashable {
            var input: Int?
            var output: Int
            var bridge: Int?
            var route: Int?
        }
    }

    /// Unions the packets of paths that agree on everything else, keeping first-seen order.
    func merged(_ paths: [Path]) -> [Path] {
        var index: [Path.Key: Int] = [:]
        var groups: [(path: Path, parts: [BDDManager.Node])] = []
        for path in paths where !path.packets.isFalse {
            if let i = index[path.key] {
                groups[i].parts.append(path.packets)
            } else {
                index[path.key] = groups.count
                groups.append((path, [path.packets]))
            }
        }
        return groups.map { $0.path.with(manager.or($0.parts)) }
    }

    // MARK: The pipeline

    /// Every packet of the family, split into classes by outcome.
    public func classes() -> [OutcomeClass] {
        let m = manager
        // The relations ending in each fate, in the order fates first appear.
        var fates: [OutcomeClass.Fate] = []
        var parts: [OutcomeClass.Fate: [BDDManager.Node]] = [:]
        func finish(_ packets: BDDManager.Node, _ fate: OutcomeClass.Fate) {
            guard !packets.isFalse else { return }
            if parts[fate] == nil { fates.append(fate) }
            parts[fate, default: []].append(packets)
        }
        /// The packets that come through a hook; the ones it drops are finished.
        func run(_ hook: Hook, _ paths: [Path], natDone: Bool = false) -> [Path] {
            let (through, dropped) = runHook(hook, paths, natDone: natDone)
            for packets in dropped { finish(packets, .dropped) }
            return through
        }
        /// The parts of a path with a route, each with its out interface; the rest is finished.
        func routes(of path: Path) -> [(Path, Int)] {
            route(path).compactMap { part, out in
                guard let out else {
                    finish(part.packets, .unroutable)
                    return nil
                }
                return (part, out)
            }
        }

        let all = universe
        let local = m.equals(space.inInterface, 0)
        let loopback = space.interfaceClass("lo")

        // Received on an interface.
        var received = Path(packets: m.minus(all, local), input: nil)
        var arriving: [Path] = []
        for bridge in host?.interfaces ?? [] where bridge.isBridge {
            let c = space.interfaceClass(bridge.name)
            let on = m.and(received.packets, m.and(m.equals(space.inInterface, UInt128(c)), routed(to: c)))
            if on.isFalse { continue }
            received.packets = m.minus(received.packets, on)
            var bridged = Path(packets: on, input: c)
            bridged.bridge = c
            bridged.route = c
            if host?.bridgeNetfilter == false {
                finish(bridged.packets, .forwarded(c))
            } else {
                arriving.append(bridged)
            }
        }
        arriving.insert(received, at: 0)
        let afterPrerouting = run(.prerouting, arriving)
        for path in afterPrerouting {
            for (routedPath, out) in routes(of: path) {
                if out == loopback {
                    let delivered = run(.input, [routedPath])
                    for p in delivered { finish(p.packets, .deliveredLocally) }
                    continue
                }
                // Forwarding: on, or a bridged packet going back out of its bridge; on every
                // possible host, where the host chose to forward.
                var forwardable = routedPath
                if host?.ipForward == false && routedPath.bridge != out {
                    finish(routedPath.packets, .unroutable)
                    continue
                }
                if host == nil {
                    let forwards = m.variable(space.hostChoices.forwards)
                    finish(m.minus(routedPath.packets, forwards), .unroutable)
                    forwardable.packets = m.and(routedPath.packets, forwards)
                    if forwardable.packets.isFalse { continue }
                }
                forwardable.output = out
                let forwarded = run(.forward, [forwardable])
                let leaving = forwarded.map { p -> Path in
                    var q = p
                    q.input = 0
                    return q
                }
                let sent = run(.postrouting, leaving)
                for p in sent { finish(p.packets, .forwarded(out)) }
            }
        }

        // Sent by a local process.
        let start = Path(packets: m.and(all, local), input: 0)
        for (routedPath, first) in routes(of: start) {
            var outgoing = routedPath
            outgoing.output = first
            let afterOutput = run(.output, [outgoing])
            for path in afterOutput {
                for (rerouted, out) in routes(of: path) {
                    var leaving = rerouted
                    leaving.output = out
                    let sent = run(.postrouting, [leaving])
                    for p in sent {
                        guard out == loopback else {
                            finish(p.packets, .sent(out))
                            continue
                        }
                        // Back in through loopback, NAT already done.
                        var back = p
                        back.input = loopback
                        back.output = 0
                        let inPrerouting = run(.prerouting, [back], natDone: true)
                        let delivered = run(.input, inPrerouting, natDone: true)
                        for q in delivered { finish(q.packets, .deliveredLocally) }
                    }
                }
            }
        }

        // A fate that does not get through keeps no header: it is reset to the arriving one,
        // so equal sets of packets give equal nodes.
        let unchanged = m.unchanged(space)
        return fates.map { fate in
            var packets = m.or(parts[fate] ?? [])
            if !fate.getsThrough { packets = m.and(m.exists(packets, where: space.isRewrite), unchanged) }
            return OutcomeClass(packets: packets, fate: fate)
        }
    }

    /// Every packet the space can describe, as it arrives: a valid in-interface class and
    /// conntrack state, no out interface (a property of the path, not of the arriving packet),
    /// the current header equal to the arriving one, and on every possible host valid routes.
    public var universe: BDDManager.Node {
        let m = manager
        let classes = m.range(space.inInterface, 0, UInt128(space.interfaces.count - 1))
        let noOutput = m.equals(space.outInterface, 0)
        let states = m.range(space.state, 0, UInt128(ConntrackState.allCases.count - 1))
        var all = m.and(m.and(classes, m.and(noOutput, states)), m.unchanged(space))
        if space.everyHost {
            let choices = space.hostChoices
            let routes = [choices.routeOfDestination] + choices.written.map(\.route)
            all = routes.reduce(all) { m.and($0, m.range($1, 0, UInt128(space.interfaces.count - 1))) }
        }
        return all
    }

    // MARK: Routing

    /// The current destinations `HostModel.route` sends out the interface of class `c`.
    func routed(to c: Int) -> BDDManager.Node {
        destinationRegions.filter { $0.interface == c }.reduce(BDDManager.Node.false) { manager.or($0, $1.destinations) }
    }

    /// The routing table as disjoint regions of the current destination: local addresses
    /// (`lo`), then each route minus the longer (or earlier equally long) ones, as
    /// `HostModel.route` picks.
    static func routeRegions(host: HostModel?, space: PacketSpace, manager m: BDDManager) -> [(interface: Int, destinations: BDDManager.Node)] {
        guard let host else { return chosenRouteRegions(space: space, manager: m) }
        let arriving = routeRegions(field: space.destination.arriving, host: host, space: space, manager: m)
        let current = routeRegions(field: space.destination.current, host: host, space: space, manager: m)
        return zip(arriving, current).map { ($0.interface, m.ifThenElse(m.variable(space.destination.flag), $1.destinations, $0.destinations)) }
    }

    /// The same regions of one copy of the destination (both copies give them in one order).
    static func routeRegions(field: PacketSpace.Field, host: HostModel, space: PacketSpace, manager m: BDDManager) -> [(interface: Int, destinations: BDDManager.Node)] {
        var local = BDDManager.Node.false
        if space.family == .ipv4 { local = m.prefix(field, IPAddress("127.0.0.0")!.bits, length: 8) }
        for interface in host.interfaces {
            for prefix in interface.addresses where prefix.family == space.family {
                local = m.or(local, m.equals(field, prefix.address.bits))
            }
        }
        var regions: [(interface: Int, destinations: BDDManager.Node)] = [(space.interfaceClass("lo"), local)]
        var covered = local
        let candidates = host.interfaces.flatMap { i in i.addresses.map { HostModel.Route(destination: $0.canonical, interface: i.name) } } + host.extraRoutes
        let ordered = candidates.enumerated().filter { $0.element.destination.family == space.family }
            .sorted { ($0.element.destination.length, -$0.offset) > ($1.element.destination.length, -$1.offset) }
        for (_, route) in ordered {
            let region = m.minus(m.prefix(field, route.destination.address.bits, length: route.destination.length), covered)
            if region.isFalse { continue }
            covered = m.or(covered, region)
            regions.append((space.interfaceClass(route.interface), region))
        }
        return regions
    }

    /// On every possible host: the route is the host's choice for the current destination
    /// (`HostChoices`), except that IPv4's 127.0.0.0/8 is local on every host.
    static func chosenRouteRegions(space: PacketSpace, manager m: BDDManager) -> [(interface: Int, destinations: BDDManager.Node)] {
        let loopback = space.interfaceClass("lo")
        let choices = space.hostChoices
        let localNet = Prefix("127.0.0.0/8")!
        return (1..<space.interfaces.count).map { c in
            // An arriving destination routes as chosen for it; a rewritten one, which a NAT
            // target wrote, as chosen for that address.
            var arriving = m.equals(choices.routeOfDestination, UInt128(c))
            if space.family == .ipv4 {
                arriving = m.ifThenElse(m.prefix(space.destination.arriving, localNet.address.bits, length: 8), c == loopback ? .true : .false, arriving)
            }
            let rewritten = m.or(choices.written.map { w in
                let routes: BDDManager.Node = localNet.contains(w.address) ? (c == loopback ? .true : .false) : m.equals(w.route, UInt128(c))
                return m.and(m.equals(space.destination.current, w.address.bits), routes)
            })
            return (c, m.ifThenElse(m.variable(space.destination.flag), rewritten, arriving))
        }
    }

    /// The class of the interface the host routes a destination to (-1: no route); nil on
    /// every possible host, where it is a choice.
    func routeClass(_ destination: IPAddress) -> Int? {
        guard let host else { return nil }
        if let known = cache.routes[destination] { return known }
        let found = host.route(destination).map { space.interfaceClass($0) } ?? -1
        cache.routes[destination] = found
        return found
    }

    /// Splits a path by its routing decision on the current destination: each part with its
    /// out interface class, or nil where there is no route.
    func route(_ path: Path) -> [(Path, Int?)] {
        if let known = path.route {
            return [(path, known < 0 ? nil : known)]
        }
        var out: [(Path, Int?)] = []
        var rest = path.packets
        for region in destinationRegions {
            let part = manager.and(rest, region.destinations)
            if part.isFalse { continue }
            rest = manager.minus(rest, part)
            var routed = path.with(part)
            routed.route = region.interface
            out.append((routed, region.interface))
        }
        if !rest.isFalse {
            var unrouted = path.with(rest)
            unrouted.route = -1
            out.append((unrouted, nil))
        }
        return out
    }

    // MARK: Hooks and chains

    /// Runs every base chain of `hook` on the paths: the paths that come through (merged), and
    /// the packets dropped.
    func runHook(_ hook: Hook, _ paths: [Path], natDone: Bool = false) -> (through: [Path], dropped: [BDDManager.Node]) {
        var current = merged(paths)
        var drops: [BDDManager.Node] = []
        let newState = manager.equals(space.state, UInt128(PacketSpace.stateIndex(.new)))
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
                for (packets, verdict) in ChainRun(traversal: self, table: table, path: runs).run(chain) {
                    switch verdict {
                    case .accept:
                        next.append(runs.with(packets))
                    case .drop:
                        drops.append(packets)
                    case .translated:
                        next.append(runs.with(packets))
                    case .destinationTranslated(let route):
                        var translated = runs.with(packets)
                        translated.route = route
                        next.append(translated)
                    }
                }
            }
            current = merged(next)
        }
        return (current, drops)
    }

    /// The packets of `reaching` that an SNAT or MASQUERADE rule matching `set` takes,
    /// rewritten by its target; nil when MASQUERADE has no address to take (a drop). DNATs go
    /// in batches (`destinationTranslated`).
    func translated(_ reaching: BDDManager.Node, _ set: BDDManager.Node, by target: Target, on path: Path) -> BDDManager.Node? {
        let key = SymbolicCache.RewriteKey(reaching: reaching, set: set, target: target, output: path.output)
        if let known = cache.rewrites[key] { return known }
        let result = translatedOnce(reaching, set, by: target, on: path)
        cache.rewrites[key] = result
        return result
    }

    /// The packets of `reaching` that a batch of DNAT rules with pairwise disjoint sets takes,
    /// each rewritten by its target; the targets write the same fields (`dnatWrites`).
    func destinationTranslated(_ reaching: BDDManager.Node, _ rules: [(set: BDDManager.Node, to: NATDestination)]) -> BDDManager.Node {
        rewrite(reaching, rules.map { ($0.set, dnatWrites($0.to)) })
    }

    /// What a DNAT target writes: the destination, and the destination port if it names one.
    func dnatWrites(_ to: NATDestination) -> [(PacketSpace.Rewritable, UInt128)] {
        [(space.destination, to.address.bits)] + port(space.destinationPort, to.ports)
    }

    private func port(_ field: PacketSpace.Rewritable, _ ports: PortRange?) -> [(PacketSpace.Rewritable, UInt128)] {
        ports.map { [(field, UInt128($0.first))] } ?? []
    }

    func translatedOnce(_ reaching: BDDManager.Node, _ set: BDDManager.Node, by target: Target, on path: Path) -> BDDManager.Node? {
        switch target {
        case .snat(let to):
            return rewrite(reaching, [(set, [(space.source, to.address.bits)] + port(space.sourcePort, to.ports))])
        case .masquerade(let ports):
            guard path.output != 0 else { return nil }
            if host == nil {
                // Some address of the host's: unknown, so marked, with every value left open
                // for later matches. An out interface without an address (a drop) is not
                // modelled: a pair of rulesets that agrees on every host with addresses
                // masquerades the same packets, which such a host then drops on both sides.
                let m = manager
                let matched = m.and(reaching, set)
                let marked = m.and(forgotten(matched, [space.source]), m.and(m.variable(space.source.flag), m.variable(space.source.marker!)))
                return port(space.sourcePort, ports).reduce(marked) { m.and(forgotten($0, [$1.0]), currentEquals($1.0, $1.1)) }
            }
            if let address = masqueradeAddress(path) {
                return rewrite(reaching, [(set, [(space.source, address.bits)] + port(space.sourcePort, ports))])
            }
            guard space.family == .ipv6 && space.interfaces[path.output] == "lo" else { return nil }
            // The destination becomes the source too: one part per current destination (a
            // packet out of loopback has a local one, and the host has few).
            let matched = manager.and(reaching, set)
            return manager.or(currentValues(of: space.destination, in: matched).map { value in
                assign(manager.and(matched, currentEquals(space.destination, value)), [(space.source, value)] + port(space.sourcePort, ports))
            })
        default:
            preconditionFailure("\(target) is not SNAT or MASQUERADE (DNATs go in batches: destinationTranslated)")
        }
    }

    /// The union of `assign(reaching ∧ set, writes)` over parts with pairwise disjoint sets
    /// that write the same fields, without walking `reaching` once per part where it can: when
    /// no packet reaching has those fields rewritten yet, a part's matches read only their
    /// arriving copies there, and forgetting the current copies commutes with them — so it is
    /// `∃(reaching) ∧ ⋃(set ∧ writes)`: the parts' written sets (built once each) are united
    /// first, and `reaching` is walked once for a batch of DNATs, not once per published port.
    func rewrite(_ reaching: BDDManager.Node, _ parts: [(set: BDDManager.Node, writes: [(PacketSpace.Rewritable, UInt128)])]) -> BDDManager.Node {
        let m = manager
        guard let fields = parts.first?.writes.map(\.0) else { return .false }
        precondition(parts.allSatisfy { $0.writes.map(\.0) == fields }, "the parts of one rewrite write different fields")
        guard fields.allSatisfy({ cache.isUnrewritten(reaching, $0, manager: m) }) else {
            return m.or(parts.map { assign(m.and(reaching, $0.set), $0.writes) })
        }
        return m.and(forgotten(reaching, fields), m.or(parts.map { written($0.set, $0.writes) }))
    }

    /// The packets of `set`, as not rewritten yet, with the fields `writes` names written.
    func written(_ set: BDDManager.Node, _ writes: [(PacketSpace.Rewritable, UInt128)]) -> BDDManager.Node {
        let key = SymbolicCache.WrittenKey(set: set, writes: writes.map { SymbolicCache.WriteKey(flag: $0.0.flag, value: $0.1) })
        if let known = cache.written[key] { return known }
        let m = manager
        let arriving = writes.reduce(set) { m.restrict($0, variable: $1.0.flag, to: false) }
        let built = writes.reduce(arriving) { m.and($0, currentEquals($1.0, $1.1)) }
        cache.written[key] = built
        return built
    }

    /// The packets with the current values of some fields overwritten by constants.
    func assign(_ packets: BDDManager.Node, _ writes: [(PacketSpace.Rewritable, UInt128)]) -> BDDManager.Node {
        writes.reduce(forgotten(packets, writes.map(\.0))) { manager.and($0, currentEquals($1.0, $1.1)) }
    }

    /// `BDDManager.currentEquals`, built once per field and value (a container's address and
    /// port recur across its published ports).
    func currentEquals(_ field: PacketSpace.Rewritable, _ value: UInt128) -> BDDManager.Node {
        let key = SymbolicCache.WriteKey(flag: field.flag, value: value)
        if let known = cache.writes[key] { return known }
        let built = manager.currentEquals(field, value)
        cache.writes[key] = built
        return built
    }

    /// The packets with the rewrites of some fields forgotten.
    func forgotten(_ packets: BDDManager.Node, _ fields: [PacketSpace.Rewritable]) -> BDDManager.Node {
        // One quantifier name per set of fields: which of the four.
        let quantifier = space.rewritable.enumerated().reduce(0) { fields.contains($1.element) ? $0 | 1 << $1.offset : $0 }
        return manager.exists(packets, quantifier: quantifier) { variable in fields.contains { $0.isRewrite(variable) } }
    }

    /// The source MASQUERADE writes on a path (`Simulator.masqueradeSource`), unless it is the
    /// destination (IPv6 out of loopback) or there is none.
    func masqueradeAddress(_ path: Path) -> IPAddress? {
        guard let host else { return nil }
        let name = space.interfaces[path.output]
        guard name == "lo" else { return host.primaryAddress(of: name, family: space.family) }
        guard space.family == .ipv4 else { return nil }
        let loopback = Prefix("127.0.0.0/8")!
        for interface in host.interfaces {
            if let prefix = interface.addresses.first(where: { $0.family == .ipv4 && !loopback.contains($0.address) }) {
                return prefix.address
            }
        }
        return nil
    }

    /// Every current value a field takes in a set.
    func currentValues(of field: PacketSpace.Rewritable, in set: BDDManager.Node) -> [UInt128] {
        let m = manager
        var found: Set<UInt128> = []
        for (copy, flag) in [(field.arriving, m.notVariable(field.flag)), (field.current, m.variable(field.flag))] {
            var remaining = m.exists(m.and(set, flag)) { copy.bit(of: $0) == nil }
            while let assignment = m.anyMember(remaining) {
                let value = copy.value(in: assignment)
                found.insert(value)
                remaining = m.minus(remaining, m.equals(copy, value))
            }
        }
        return found.sorted()
    }

    // MARK: Matches on a path

    /// The packets of a path that a rule's matches accept, computed once per list of matches
    /// and what the path fixes that they read (the other side of a check has the same rules in
    /// other chains or another order).
    func packets(matching rule: Rule, on path: Path) -> BDDManager.Node {
        var key = SymbolicCache.MatchesKey(matches: rule.matches)
        for match in rule.matches {
            switch match {
            case .inInterface: key.input = path.input ?? -1
            case .outInterface: key.output = path.output
            default: break
            }
        }
        if let known = cache.ruleSets[key] { return known }
        var set = BDDManager.Node.true
        for match in rule.matches {
            set = manager.and(set, packets(matching: match, on: path))
            if set.isFalse { break }
        }
        cache.ruleSets[key] = set
        return set
    }

    /// A match on an interface the path fixes is decided on the spot; any other reads the
    /// current header.
    func packets(matching match: Match, on path: Path) -> BDDManager.Node {
        func constant(_ holds: Bool, _ negated: Bool) -> BDDManager.Node { holds != negated ? .true : .false }
        switch match {
        case let .inInterface(name, negated):
            guard let input = path.input else { return encoded(match) }
            return constant(space.pattern(name, matchesClass: input), negated)
        case let .outInterface(name, negated):
            return constant(space.pattern(name, matchesClass: path.output), negated)
        default:
            return encoded(match)
        }
    }

    /// The cache's identity of a chain's contents (with its table's name and chain names, on
    /// which jumps and NAT depend).
    func chainID(_ table: Table, _ chain: Chain) -> Int {
        let name = ChainIDs.Name(table: table.name, chain: chain.name)
        if let known = chainIDs.ids[name] { return known }
        let id = cache.chainID(SymbolicCache.ChainKey(table: table.name, chainNames: Set(table.chains.map(\.name)), chain: chain))
        chainIDs.ids[name] = id
        return id
    }

    /// The index of a chain, built once.
    func index(_ table: Table, _ chain: Chain) -> ChainIndex {
        let id = chainID(table, chain)
        if let known = cache.indexes[id] { return known }
        let built = ChainIndex(chain, traversal: self)
        cache.indexes[id] = built
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
