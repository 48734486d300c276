import WeirModel
import WeirSimulator

/// Compares two rulesets' outcome classes and finds a packet they treat differently.
///
/// Each class is a relation between arriving packets and their final headers, and a ruleset
/// gives every arriving packet exactly one fate and one final header. So two rulesets agree on
/// every packet iff, fate by fate, their relations are equal — and BDDs are canonical, so that
/// is one comparison of node indices per fate. Where a fate's relations differ, every
/// arriving packet in the difference is a counterexample: it ends with that fate and header on
/// one side and not on the other.
///
/// On every possible host a class is a relation over the host's choices too; the counterexample
/// then comes with a concrete host that makes its choices (`ChosenHost`), and its outcomes are
/// the simulator's on that host.
enum OutcomeComparison {
    static func firstDifference(_ left: [OutcomeClass], _ right: [OutcomeClass], rulesets: (Ruleset, Ruleset),
                                space: PacketSpace, manager m: BDDManager) -> Counterexample? {
        func grouped(_ classes: [OutcomeClass]) -> [OutcomeClass.Fate: BDDManager.Node] {
            var out: [OutcomeClass.Fate: BDDManager.Node] = [:]
            for c in classes { out[c.fate] = m.or(out[c.fate, default: .false], c.packets) }
            return out
        }
        let l = grouped(left), r = grouped(right)
        // The difference in the fates that get through first: there the current header is
        // kept, and on every possible host a masqueraded source in it is the host address the
        // difference needs (a drop keeps no header).
        var passing = BDDManager.Node.false, stopped = BDDManager.Node.false
        for fate in Set(l.keys).union(r.keys) {
            let a = l[fate, default: .false], b = r[fate, default: .false]
            if a == b { continue }
            let difference = m.or(m.minus(a, b), m.minus(b, a))
            if fate.getsThrough { passing = m.or(passing, difference) } else { stopped = m.or(stopped, difference) }
        }
        let differing = passing.isFalse ? stopped : passing
        guard !differing.isFalse else { return nil }
        // The witness is taken from the difference itself, current header included.
        guard let witness = packet(in: differing, space: space, manager: m) else {
            preconditionFailure("a non-empty difference of outcome classes has no packet")
        }
        guard space.everyHost else {
            func outcome(_ classes: [OutcomeClass]) -> ObservableOutcome {
                guard let found = classes.lazy.compactMap({ $0.outcome(for: witness.packet, from: witness.origin, space: space, manager: m) }).first else {
                    preconditionFailure("\(witness.packet) is in no outcome class")
                }
                return found
            }
            return Counterexample(packet: witness.packet, origin: witness.origin, left: outcome(left), right: outcome(right))
        }
        let source = space.source
        var masquerade: IPAddress?
        if witness.assignment[source.marker!] == true {
            masquerade = IPAddress(family: space.family, bits: source.current.value(in: witness.assignment))
        }
        // A host that makes the witness's choices, and both sides simulated on it. The
        // addresses NAT writes on the way are learnt from a first run of the simulator (NAT
        // comes before the routing that the host's choices decide, and a dropped packet's class
        // keeps no header to read them from), and the host is made again with them. MASQUERADE's
        // source is an address of the host's own, not one to choose for.
        var destinations: [IPAddress] = [], sources: [IPAddress] = []
        func simulate(_ host: HostModel) -> [Traversal] {
            [rulesets.0, rulesets.1].map { Simulator(ruleset: $0, host: host).simulate(witness.packet, from: witness.origin, trace: false) }
        }
        var host = ChosenHost.make(space: space, packet: witness.packet, assignment: witness.assignment,
                                   destinations: destinations, sources: sources, masquerade: masquerade)
        var runs = simulate(host)
        for _ in 0..<3 {
            let newDestinations = runs.map(\.packet.destination).filter { $0 != witness.packet.destination && !destinations.contains($0) }
            let newSources = runs.map(\.packet.source).filter { $0 != witness.packet.source && !sources.contains($0) && !host.isLocal($0) }
            if newDestinations.isEmpty && newSources.isEmpty { break }
            destinations += newDestinations
            sources += newSources
            host = ChosenHost.make(space: space, packet: witness.packet, assignment: witness.assignment,
                                   destinations: destinations, sources: sources, masquerade: masquerade)
            runs = simulate(host)
        }
        return Counterexample(packet: witness.packet, origin: witness.origin, left: ObservableOutcome(runs[0]), right: ObservableOutcome(runs[1]), host: host)
    }

    /// One concrete arriving packet of a non-empty set, where it arrives, and the whole
    /// assignment it came from (host choices and current header included). Prefers what a reader expects: a new connection, over tcp or udp, from an interface.
    static func packet(in set: BDDManager.Node, space: PacketSpace, manager m: BDDManager) -> (packet: Packet, origin: Origin, assignment: [Int: Bool])? {
        let new = m.equals(space.state, UInt128(PacketSpace.stateIndex(.new)))
        let received = m.not(m.equals(space.inInterface, 0))
        let fromOutside = m.minus(received, m.equals(space.inInterface, UInt128(space.interfaceClass("lo"))))
        func proto(_ p: TransportProtocol) -> BDDManager.Node { m.equals(space.transportProtocol, UInt128(p.number)) }
        let preferences = [m.and(new, m.and(fromOutside, proto(.tcp))), m.and(new, m.and(received, proto(.tcp))),
                           m.and(new, proto(.tcp)), m.and(new, proto(.udp)), new, .true]
        guard let preferred = preferences.lazy.map({ m.and(set, $0) }).first(where: { !$0.isFalse }),
              let assignment = m.anyMember(preferred) else { return nil }
        func field(_ f: PacketSpace.Field) -> UInt128 { f.value(in: assignment) }
        let family = space.family
        let inClass = Int(field(space.inInterface))
        let stateIndex = Int(field(space.state))
        guard inClass < space.interfaces.count, stateIndex < ConntrackState.allCases.count else { return nil }
        let packet = Packet(source: IPAddress(family: family, bits: field(space.source.arriving)),
                            destination: IPAddress(family: family, bits: field(space.destination.arriving)),
                            transport: TransportProtocol(number: UInt8(field(space.transportProtocol))),
                            sourcePort: UInt16(field(space.sourcePort.arriving)),
                            destinationPort: UInt16(field(space.destinationPort.arriving)),
                            state: ConntrackState.allCases[stateIndex])
        return (packet, inClass == 0 ? .local : .interface(space.representative(ofClass: inClass)), assignment)
    }
}

extension PacketSpace {
    /// A concrete interface name of a class: the name itself, or for a wildcard class a name
    /// with its prefix that no rule or host lists (`br-*` → `br-weir0`, `*` → `weir0`).
    public func representative(ofClass index: Int) -> String {
        let name = interfaces[index]
        guard name.hasSuffix("*") else { return name }
        let prefix = String(name.dropLast())
        var n = 0
        while interfaceClass(prefix + "weir\(n)") != index { n += 1 }
        return prefix + "weir\(n)"
    }

    /// The in-interface class of an origin (0: a local process).
    public func inputClass(_ origin: Origin) -> Int {
        switch origin {
        case .local: 0
        case .interface(let name): interfaceClass(name)
        }
    }

    /// The one arriving packet (its current header unconstrained) with no out interface.
    public func arrivingSet(_ packet: Packet, input: Int, manager m: BDDManager) -> BDDManager.Node {
        let fields: [(Field, UInt128)] = [
            (source.arriving, packet.source.bits), (destination.arriving, packet.destination.bits),
            (transportProtocol, UInt128(packet.transport.number)),
            (sourcePort.arriving, UInt128(packet.sourcePort)), (destinationPort.arriving, UInt128(packet.destinationPort)),
            (state, UInt128(PacketSpace.stateIndex(packet.state))), (inInterface, UInt128(input)), (outInterface, 0),
        ]
        return fields.reduce(BDDManager.Node.true) { m.and($0, m.equals($1.0, $1.1)) }
    }

    /// Whether a concrete packet arriving from `origin` is in `set` (with some current header).
    public func contains(_ set: BDDManager.Node, packet: Packet, origin: Origin, manager: BDDManager) -> Bool {
        !manager.and(set, arrivingSet(packet, input: inputClass(origin), manager: manager)).isFalse
    }
}
