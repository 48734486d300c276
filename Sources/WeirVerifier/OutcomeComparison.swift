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
enum OutcomeComparison {
    static func firstDifference(_ left: [OutcomeClass], _ right: [OutcomeClass], space: PacketSpace, manager m: BDDManager) -> Counterexample? {
        func grouped(_ classes: [OutcomeClass]) -> [OutcomeClass.Fate: BDDManager.Node] {
            var out: [OutcomeClass.Fate: BDDManager.Node] = [:]
            for c in classes { out[c.fate] = m.or(out[c.fate, default: .false], c.packets) }
            return out
        }
        let l = grouped(left), r = grouped(right)
        var differing = BDDManager.Node.false
        for fate in Set(l.keys).union(r.keys) {
            let a = l[fate, default: .false], b = r[fate, default: .false]
            if a == b { continue }
            differing = m.or(differing, m.or(m.minus(a, b), m.minus(b, a)))
        }
        guard !differing.isFalse,
              let witness = packet(in: m.exists(differing, where: space.isRewrite), space: space, manager: m) else { return nil }
        func outcome(_ classes: [OutcomeClass]) -> ObservableOutcome? {
            classes.lazy.compactMap { $0.outcome(for: witness.packet, from: witness.origin, space: space, manager: m) }.first
        }
        guard let a = outcome(left), let b = outcome(right) else { return nil }
        return Counterexample(packet: witness.packet, origin: witness.origin, left: a, right: b)
    }

    /// One concrete arriving packet of a non-empty set (over the arriving fields), and where it
    /// arrives. Prefers what a reader expects: a new connection, over tcp or udp, from an interface.
    static func packet(in set: BDDManager.Node, space: PacketSpace, manager m: BDDManager) -> (packet: Packet, origin: Origin)? {
        let new = m.equals(space.state, UInt128(PacketSpace.stateIndex(.new)))
        let received = m.not(m.equals(space.inInterface, 0))
        func proto(_ p: TransportProtocol) -> BDDManager.Node { m.equals(space.transportProtocol, UInt128(p.number)) }
        let preferences = [m.and(new, m.and(received, proto(.tcp))), m.and(new, proto(.tcp)), m.and(new, proto(.udp)), new, .true]
        guard let preferred = preferences.lazy.map({ m.and(set, $0) }).first(where: { !$0.isFalse }),
              let assignment = m.anyMember(preferred) else { return nil }
        func field(_ f: PacketSpace.Field) -> UInt128 {
            (0..<f.width).reduce(UInt128(0)) { $0 << 1 | (assignment[f.variable($1)] == true ? 1 : 0) }
        }
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
        return (packet, inClass == 0 ? .local : .interface(space.representative(ofClass: inClass)))
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
