import WeirModel
import WeirSimulator

/// Compares two rulesets' outcome classes and finds a packet they treat differently.
///
/// Outcomes are first grouped by what is observable (the fate without the drop location, and
/// the final header values only when the packet gets through). BDDs are canonical, so when
/// both sides send exactly the same packets to every observable outcome the node indices are
/// equal and the check is done. Otherwise the packets in the symmetric difference are examined
/// against the other side's classes: a header value written as "the arriving destination" on
/// one side and as a constant on the other agree on the packets whose destination is that
/// constant, so the difference is computed field by field, and only a non-empty one is a
/// counterexample.
enum OutcomeComparison {
    /// An outcome with header values only when they are observable.
    struct Key: Hashable {
        var fate: SymbolicOutcome.Fate
        var source: AddressValue?
        var destination: AddressValue?
        var sourcePort: PortValue?
        var destinationPort: PortValue?

        init(_ outcome: SymbolicOutcome) {
            fate = outcome.fate
            if fate.getsThrough {
                source = outcome.source
                destination = outcome.destination
                sourcePort = outcome.sourcePort
                destinationPort = outcome.destinationPort
            }
        }
    }

    static func firstDifference(_ left: [OutcomeClass], _ right: [OutcomeClass], space: PacketSpace, manager m: BDDManager) -> Counterexample? {
        func grouped(_ classes: [OutcomeClass]) -> [Key: BDDManager.Node] {
            var out: [Key: BDDManager.Node] = [:]
            for c in classes { out[Key(c.outcome), default: .false] = m.or(out[Key(c.outcome), default: .false], c.packets) }
            return out
        }
        let l = grouped(left), r = grouped(right)
        let keys = Set(l.keys).union(r.keys)
        let unequal = keys.filter { l[$0, default: .false] != r[$0, default: .false] }
        guard !unequal.isEmpty else { return nil }
        // Only the packets whose key differs between the sides can differ.
        let suspects = unequal.reduce(BDDManager.Node.false) { m.or($0, m.and(l[$1, default: .false], m.not(r[$1, default: .false]))) }
        let leftSuspects = left.filter { !m.and($0.packets, suspects).isFalse }
        let rightSuspects = right.filter { !m.and($0.packets, suspects).isFalse }
        for a in leftSuspects {
            let mine = m.and(a.packets, suspects)
            for b in rightSuspects {
                let both = m.and(mine, b.packets)
                if both.isFalse { continue }
                for part in differences(Key(a.outcome), Key(b.outcome), space: space, manager: m) {
                    let differing = m.and(both, part)
                    guard !differing.isFalse, let witness = packet(in: differing, space: space, manager: m) else { continue }
                    return Counterexample(packet: witness.packet, origin: witness.origin,
                                          left: a.outcome.concrete(for: witness.packet, space: space),
                                          right: b.outcome.concrete(for: witness.packet, space: space))
                }
            }
        }
        return nil
    }

    /// Sets whose union is the packets on which two observable outcomes differ. Two different
    /// original fields (IPv6 MASQUERADE on loopback writes the destination into the source)
    /// differ where some bit does: one small set per bit, because "source == destination" as
    /// one BDD, with all source bits before all destination bits, is exponential in the width.
    static func differences(_ a: Key, _ b: Key, space: PacketSpace, manager m: BDDManager) -> [BDDManager.Node] {
        guard a.fate == b.fate else { return [.true] }
        guard a.fate.getsThrough else { return [] }
        func addresses(_ d: Direction) -> Int { d == .source ? space.sourceStart : space.destinationStart }
        func ports(_ d: Direction) -> Int { d == .source ? space.sourcePortStart : space.destinationPortStart }
        var parts: [BDDManager.Node] = []
        func compare(_ x: AddressValue?, _ y: AddressValue?) {
            guard let x, let y else { return }
            switch (x, y) {
            case let (.constant(p), .constant(q)):
                if p != q { parts.append(.true) }
            case let (.original(d), .constant(p)), let (.constant(p), .original(d)):
                parts.append(p.family == space.family ? m.not(m.equals(field: addresses(d), width: space.addressBits, p.bits)) : .true)
            case let (.original(d), .original(e)):
                if d != e { parts += bitsDiffer(addresses(d), addresses(e), width: space.addressBits, manager: m) }
            }
        }
        func compare(_ x: PortValue?, _ y: PortValue?) {
            guard let x, let y else { return }
            switch (x, y) {
            case let (.constant(p), .constant(q)):
                if p != q { parts.append(.true) }
            case let (.original(d), .constant(p)), let (.constant(p), .original(d)):
                parts.append(m.not(m.equals(field: ports(d), width: 16, UInt128(p))))
            case let (.original(d), .original(e)):
                if d != e { parts += bitsDiffer(ports(d), ports(e), width: 16, manager: m) }
            }
        }
        compare(a.source, b.source)
        compare(a.destination, b.destination)
        compare(a.sourcePort, b.sourcePort)
        compare(a.destinationPort, b.destinationPort)
        return parts
    }

    /// For each bit, the set where the two fields differ in it.
    static func bitsDiffer(_ a: Int, _ b: Int, width: Int, manager m: BDDManager) -> [BDDManager.Node] {
        (0..<width).map { i in
            m.or(m.and(m.variable(a + i), m.notVariable(b + i)), m.and(m.notVariable(a + i), m.variable(b + i)))
        }
    }

    /// One concrete packet of a non-empty set, and where it arrives.
    /// Prefers what a reader expects: a new connection, over tcp or udp, from an interface.
    static func packet(in set: BDDManager.Node, space: PacketSpace, manager m: BDDManager) -> (packet: Packet, origin: Origin)? {
        let new = m.equals(field: space.stateStart, width: 3, UInt128(PacketSpace.stateIndex(.new)))
        let received = m.not(m.equals(field: space.inInterfaceStart, width: space.interfaceBits, 0))
        func proto(_ p: TransportProtocol) -> BDDManager.Node { m.equals(field: space.protocolStart, width: 8, UInt128(p.number)) }
        let preferences = [m.and(new, m.and(received, proto(.tcp))), m.and(new, proto(.tcp)), m.and(new, proto(.udp)), new, .true]
        guard let preferred = preferences.lazy.map({ m.and(set, $0) }).first(where: { !$0.isFalse }),
              let assignment = m.anyMember(preferred) else { return nil }
        func field(_ start: Int, _ width: Int) -> UInt128 {
            (0..<width).reduce(UInt128(0)) { $0 << 1 | (assignment[start + $1] == true ? 1 : 0) }
        }
        let family = space.family
        let inClass = Int(field(space.inInterfaceStart, space.interfaceBits))
        let stateIndex = Int(field(space.stateStart, 3))
        guard inClass < space.interfaces.count, stateIndex < ConntrackState.allCases.count else { return nil }
        let packet = Packet(source: IPAddress(family: family, bits: field(space.sourceStart, space.addressBits)),
                            destination: IPAddress(family: family, bits: field(space.destinationStart, space.addressBits)),
                            transport: TransportProtocol(number: UInt8(field(space.protocolStart, 8))),
                            sourcePort: UInt16(field(space.sourcePortStart, 16)),
                            destinationPort: UInt16(field(space.destinationPortStart, 16)),
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

    /// Whether a concrete packet arriving from `origin` is in `set`.
    public func contains(_ set: BDDManager.Node, packet: Packet, origin: Origin, manager: BDDManager) -> Bool {
        let inClass: Int = switch origin {
        case .local: 0
        case .interface(let name): interfaceClass(name)
        }
        let fields: [(start: Int, width: Int, value: UInt128)] = [
            (inInterfaceStart, interfaceBits, UInt128(inClass)), (outInterfaceStart, interfaceBits, 0),
            (sourceStart, addressBits, packet.source.bits), (destinationStart, addressBits, packet.destination.bits),
            (protocolStart, 8, UInt128(packet.transport.number)), (sourcePortStart, 16, UInt128(packet.sourcePort)),
            (destinationPortStart, 16, UInt128(packet.destinationPort)), (stateStart, 3, UInt128(PacketSpace.stateIndex(packet.state))),
        ].sorted { $0.start < $1.start }
        return manager.contains(set) { variable in
            guard let f = fields.last(where: { $0.start <= variable }), variable < f.start + f.width else { return false }
            return (f.value >> UInt128(f.width - 1 - (variable - f.start))) & 1 == 1
        }
    }
}
