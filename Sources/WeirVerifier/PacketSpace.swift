import WeirModel
import WeirSimulator

/// The variables of symbolic IPv4/IPv6 packets of one family.
///
/// A set of packets on a path is a relation between the packet as it arrived and its header
/// now, after NAT. Each field NAT can rewrite (addresses and ports) has its arriving copy, a
/// "rewritten" flag and a current copy: flag 0 means the current value is the arriving one
/// (and the current copy is all zeros), flag 1 that it is the current copy, which then differs
/// from the arriving value. So every (arriving, current) pair has one encoding and sets stay
/// canonical, and an unrewritten packet costs nothing in the current copies.
///
/// Order, first tested first: the protocol, the destination port (flag, current, arriving),
/// the current destination address (flag, current), the source port (flag, current,
/// arriving), the source address (flag, masquerade marker, current, arriving), the arriving
/// destination address, the host's choices (`HostChoices`, used on every possible host only),
/// the conntrack state, the in-interface class, the out-interface class. What one published port's rules decide (its
/// protocol and port, and its DNAT's current port and address) thus sits at the top, above
/// what all of them share (the local addresses Docker's DNAT applies to, the sources, states
/// and interfaces), so each port costs its own few nodes and operations on it stay shallow.
/// Interfaces come last: with them first, every set split at the top by interface.
///
/// Interfaces are finite classes: every name a rule or the host mentions, one representative
/// per wildcard prefix for the names no rule lists (`eth*`), one for any other name (`*`), and
/// "none" (no interface: a locally sent packet's input, a received packet's output before
/// routing).
public struct PacketSpace: Sendable {
    /// Where a field's bits are: bit i (most significant first) is variable `start + i`.
    public struct Field: Sendable, Hashable {
        public let start: Int
        public let width: Int

        public func variable(_ bit: Int) -> Int { start + bit }

        /// The bit of this field a variable holds, if it holds one.
        public func bit(of variable: Int) -> Int? {
            (start..<start + width).contains(variable) ? variable - start : nil
        }
    }

    /// A field NAT can rewrite: its arriving copy, the flag "rewritten", the current copy, and
    /// for the source the flag "masqueraded on an unknown host" (`PacketSpace.everyHost`).
    public struct Rewritable: Sendable, Hashable {
        public let arriving: Field
        public let flag: Int
        public let current: Field
        public var marker: Int? = nil

        /// Whether a variable is the flag, the marker or a bit of the current copy.
        public func isRewrite(_ variable: Int) -> Bool {
            variable == flag || variable == marker || current.bit(of: variable) != nil
        }
    }

    /// The host's choices for one packet when the check is for every possible host: the route
    /// of its arriving destination and of the destination it was rewritten to (an interface
    /// class, `lo` for a local address, 0 for no route), and whether its arriving source, its
    /// rewritten source and both destinations are local or broadcast addresses. They are
    /// inputs, like the packet's fields, and only the ones of a field's current value matter.
    public struct HostChoices: Sendable {
        public let routeOfDestination: Field
        public let routeOfRewrittenDestination: Field
        public let sourceIsLocal: Int
        public let rewrittenSourceIsLocal: Int
        public let destinationIsBroadcast: Int
        public let rewrittenDestinationIsBroadcast: Int
        public let sourceIsBroadcast: Int
        public let rewrittenSourceIsBroadcast: Int
    }

    public let family: Family
    /// Interface classes; index 0 is "none".
    public let interfaces: [String]
    public let interfaceBits: Int
    public let addressBits: Int
    /// True when the check is for every possible host: routes, local and broadcast addresses
    /// are the `hostChoices` variables, not a host model's.
    public let everyHost: Bool

    public init(family: Family, ruleset: Ruleset, host: HostModel?) {
        self.init(family: family, rulesets: [ruleset], host: host)
    }

    /// The space of packets that tells apart everything any of `rulesets` can, on `host` (nil:
    /// on every possible host).
    public init(family: Family, rulesets: [Ruleset], host: HostModel?) {
        self.family = family
        everyHost = host == nil
        var exact = Set(host?.interfaces.map(\.name) ?? ["lo"])
        var prefixes = Set<String>()
        for table in rulesets.flatMap(\.tables) where table.family == family {
            for chain in table.chains {
                for rule in chain.rules {
                    for match in rule.matches {
                        switch match {
                        case .inInterface(let name, _), .outInterface(let name, _):
                            if name.isWildcard { prefixes.insert(name.name) } else { exact.insert(name.name) }
                        default: break
                        }
                    }
                }
            }
        }
        // "*" is any name no rule lists; "p*" a name with prefix p that no rule lists.
        interfaces = [""] + exact.sorted() + prefixes.filter { !$0.isEmpty }.map { $0 + "*" }.sorted() + ["*"]
        var bits = 1
        while (1 << bits) < interfaces.count { bits += 1 }
        interfaceBits = bits
        addressBits = family.bitWidth
    }

    // Variable layout (see the type's comment).
    private var a: Int { addressBits }
    private var k: Int { interfaceBits }
    public var transportProtocol: Field { Field(start: 0, width: 8) }
    public var destinationPort: Rewritable {
        Rewritable(arriving: Field(start: 25, width: 16), flag: 8, current: Field(start: 9, width: 16))
    }
    public var destination: Rewritable {
        Rewritable(arriving: Field(start: 3 * a + 77, width: a), flag: 41, current: Field(start: 42, width: a))
    }
    public var sourcePort: Rewritable {
        Rewritable(arriving: Field(start: a + 59, width: 16), flag: a + 42, current: Field(start: a + 43, width: 16))
    }
    public var source: Rewritable {
        Rewritable(arriving: Field(start: 2 * a + 77, width: a), flag: a + 75, current: Field(start: a + 77, width: a), marker: a + 76)
    }
    private var hostStart: Int { 4 * a + 77 }
    public var hostChoices: HostChoices {
        HostChoices(routeOfDestination: Field(start: hostStart, width: k), routeOfRewrittenDestination: Field(start: hostStart + k, width: k),
                    sourceIsLocal: hostStart + 2 * k, rewrittenSourceIsLocal: hostStart + 2 * k + 1,
                    destinationIsBroadcast: hostStart + 2 * k + 2, rewrittenDestinationIsBroadcast: hostStart + 2 * k + 3,
                    sourceIsBroadcast: hostStart + 2 * k + 4, rewrittenSourceIsBroadcast: hostStart + 2 * k + 5)
    }
    public var state: Field { Field(start: hostStart + 2 * k + 6, width: 3) }
    public var inInterface: Field { Field(start: hostStart + 2 * k + 9, width: k) }
    public var outInterface: Field { Field(start: hostStart + 3 * k + 9, width: k) }
    public var variableCount: Int { hostStart + 4 * k + 9 }

    /// The fields NAT can rewrite.
    public var rewritable: [Rewritable] { [source, destination, sourcePort, destinationPort] }

    /// Whether a variable is a rewritten flag, the masquerade marker or a bit of a current copy.
    public func isRewrite(_ variable: Int) -> Bool {
        variable < hostStart && (destinationPort.isRewrite(variable) || destination.isRewrite(variable)
            || sourcePort.isRewrite(variable) || source.isRewrite(variable))
    }

    /// The class a concrete interface name falls in (nil: none).
    public func interfaceClass(_ name: String?) -> Int {
        guard let name else { return 0 }
        if let index = interfaces.firstIndex(of: name) { return index }
        // The longest wildcard representative whose prefix the name has, else "*".
        let candidates = interfaces.enumerated().filter { $0.element.hasSuffix("*") && $0.element.count > 1 && name.hasPrefix(String($0.element.dropLast())) }
        return candidates.max { $0.element.count < $1.element.count }?.offset ?? interfaces.count - 1
    }

    /// Whether an interface pattern matches every name of a class.
    public func pattern(_ name: InterfaceName, matchesClass index: Int) -> Bool {
        guard index != 0 else { return false }
        let className = interfaces[index]
        if className.hasSuffix("*") {
            return name.isWildcard && className.hasPrefix(name.name)
        }
        return name.isWildcard ? className.hasPrefix(name.name) : className == name.name
    }

    /// The index of a conntrack state in the 3-bit state field.
    public static func stateIndex(_ state: ConntrackState) -> Int { ConntrackState.allCases.firstIndex(of: state)! }

    /// The variables' values for a packet that arrived as `packet` on the in-interface class
    /// `input` (0: sent locally), has the out-interface class `output`, and whose header is now
    /// `current` (nil: unchanged).
    public func assignment(_ packet: Packet, input: Int, output: Int = 0, current: Packet? = nil) -> (Int) -> Bool {
        let now = current ?? packet
        var fields: [(Field, UInt128)] = [
            (transportProtocol, UInt128(packet.transport.number)), (state, UInt128(Self.stateIndex(packet.state))),
            (inInterface, UInt128(input)), (outInterface, UInt128(output)),
        ]
        var flags: [Int] = []
        for (field, was, now) in [(source, packet.source.bits, now.source.bits), (destination, packet.destination.bits, now.destination.bits),
                                  (sourcePort, UInt128(packet.sourcePort), UInt128(now.sourcePort)),
                                  (destinationPort, UInt128(packet.destinationPort), UInt128(now.destinationPort))] {
            fields.append((field.arriving, was))
            if was != now {
                flags.append(field.flag)
                fields.append((field.current, now))
            }
        }
        var bits = [Bool](repeating: false, count: variableCount)
        for (field, value) in fields {
            for bit in 0..<field.width { bits[field.variable(bit)] = (value >> UInt128(field.width - 1 - bit)) & 1 == 1 }
        }
        for flag in flags { bits[flag] = true }
        return { bits[$0] }
    }
}

extension BDDManager {
    /// The set where a field equals `value`.
    public func equals(_ field: PacketSpace.Field, _ value: UInt128) -> Node {
        equals(field: field.start, width: field.width, value)
    }

    /// The set where a field's top `length` bits equal those of `value`.
    public func prefix(_ field: PacketSpace.Field, _ value: UInt128, length: Int) -> Node {
        prefix(field: field.start, width: field.width, value, length: length)
    }

    /// The set where a field is in `low...high`.
    public func range(_ field: PacketSpace.Field, _ low: UInt128, _ high: UInt128) -> Node {
        range(field: field.start, width: field.width, low, high)
    }

    /// The set where a rewritable field's current value is in `set(field)`: the current copy's
    /// where it was rewritten, the arriving copy's where it was not.
    public func current(_ field: PacketSpace.Rewritable, _ set: (PacketSpace.Field) -> Node) -> Node {
        ifThenElse(variable(field.flag), set(field.current), set(field.arriving))
    }

    /// The canonical set where a rewritable field's current value is `value`: not rewritten
    /// where it arrived with `value`, rewritten to `value` elsewhere.
    public func currentEquals(_ field: PacketSpace.Rewritable, _ value: UInt128) -> Node {
        let kept = and(notVariable(field.flag), and(equals(field.current, 0), equals(field.arriving, value)))
        let written = and(variable(field.flag), and(equals(field.current, value), not(equals(field.arriving, value))))
        let either = or(kept, written)
        return field.marker.map { and(either, notVariable($0)) } ?? either
    }

    /// Every rewritable field not rewritten (the canonical "current = arriving").
    public func unchanged(_ space: PacketSpace) -> Node {
        space.rewritable.reduce(Node.true) { set, field in
            let kept = and(notVariable(field.flag), equals(field.current, 0))
            return and(set, field.marker.map { and(kept, notVariable($0)) } ?? kept)
        }
    }
}

/// Turns model matches into sets of packets.
public struct MatchEncoder {
    public let space: PacketSpace
    /// Nil on every possible host: address types then read the host's choices.
    public let host: HostModel?
    public let manager: BDDManager

    public init(space: PacketSpace, host: HostModel?, manager: BDDManager) {
        self.space = space
        self.host = host
        self.manager = manager
    }

    /// The set of packets a rule's matches accept (all of them must hold).
    public func packets(matching rule: Rule) -> BDDManager.Node {
        var set = BDDManager.Node.true
        for match in rule.matches {
            set = manager.and(set, packets(matching: match))
            if set.isFalse { break }
        }
        return set
    }

    public func packets(matching match: Match) -> BDDManager.Node {
        let m = manager
        switch match {
        case let .inInterface(name, negated):
            return negate(interfaces(name, field: space.inInterface), negated)
        case let .outInterface(name, negated):
            return negate(interfaces(name, field: space.outInterface), negated)
        case let .address(direction, prefix, negated):
            guard prefix.family == space.family else { return negated ? .true : .false }
            let field = direction == .source ? space.source : space.destination
            return negate(m.current(field) { m.prefix($0, prefix.address.bits, length: prefix.length) }, negated)
        case let .protocol(transport, negated):
            return negate(m.equals(space.transportProtocol, UInt128(transport.number)), negated)
        case let .port(direction, range, negated):
            let field = direction == .source ? space.sourcePort : space.destinationPort
            let inRange = m.current(field) { m.range($0, UInt128(range.first), UInt128(range.last)) }
            // A port match never holds for a protocol without ports, negated or not.
            return m.and(hasPorts, negate(inRange, negated))
        case let .conntrackState(states, negated):
            let any = states.reduce(BDDManager.Node.false) { m.or($0, m.equals(space.state, UInt128(PacketSpace.stateIndex($1)))) }
            return negate(any, negated)
        case let .addressType(direction, type, negated):
            let field = direction == .source ? space.source : space.destination
            guard host == nil else { return negate(m.current(field) { addresses(ofType: type, field: $0) }, negated) }
            let choices = space.hostChoices
            // A subnet's broadcast address (IPv4 only) has at least two host bits, all ones,
            // and is routed by that subnet's interface.
            func broadcastable(_ copy: PacketSpace.Field) -> BDDManager.Node {
                guard space.family == .ipv4 else { return .false }
                return m.and(m.variable(copy.variable(copy.width - 2)), m.variable(copy.variable(copy.width - 1)))
            }
            let types = direction == .source
                ? m.ifThenElse(m.variable(field.flag),
                               addresses(ofType: type, field: field.current, local: m.or(m.variable(field.marker!), m.variable(choices.rewrittenSourceIsLocal)),
                                         broadcast: m.and(m.variable(choices.rewrittenSourceIsBroadcast), broadcastable(field.current))),
                               addresses(ofType: type, field: field.arriving, local: m.variable(choices.sourceIsLocal),
                                         broadcast: m.and(m.variable(choices.sourceIsBroadcast), broadcastable(field.arriving))))
                : m.ifThenElse(m.variable(field.flag),
                               addresses(ofType: type, field: field.current, local: route(choices.routeOfRewrittenDestination, is: space.interfaceClass("lo")),
                                         broadcast: m.and(m.and(m.variable(choices.rewrittenDestinationIsBroadcast), broadcastable(field.current)),
                                                          m.not(m.equals(choices.routeOfRewrittenDestination, 0)))),
                               addresses(ofType: type, field: field.arriving, local: route(choices.routeOfDestination, is: space.interfaceClass("lo")),
                                         broadcast: m.and(m.and(m.variable(choices.destinationIsBroadcast), broadcastable(field.arriving)),
                                                          m.not(m.equals(choices.routeOfDestination, 0)))))
            return negate(types, negated)
        case .comment:
            return .true
        }
    }

    private func negate(_ set: BDDManager.Node, _ negated: Bool) -> BDDManager.Node { negated ? manager.not(set) : set }

    var hasPorts: BDDManager.Node {
        [TransportProtocol.tcp, .udp, .sctp].reduce(BDDManager.Node.false) {
            manager.or($0, manager.equals(space.transportProtocol, UInt128($1.number)))
        }
    }

    private func interfaces(_ name: InterfaceName, field: PacketSpace.Field) -> BDDManager.Node {
        space.interfaces.indices.filter { space.pattern(name, matchesClass: $0) }.reduce(BDDManager.Node.false) {
            manager.or($0, manager.equals(field, UInt128($1)))
        }
    }

    /// The addresses of a routing type on the host (as `HostModel.addressType` classifies them).
    /// The addresses of a routing type on the host (as `HostModel.addressType` classifies them).
    func addresses(ofType type: AddressType, field: PacketSpace.Field) -> BDDManager.Node {
        let m = manager
        func host(_ address: IPAddress) -> BDDManager.Node { m.equals(field, address.bits) }
        var local = BDDManager.Node.false
        var broadcast = BDDManager.Node.false
        for interface in self.host?.interfaces ?? [] {
            for prefix in interface.addresses where prefix.family == space.family {
                local = m.or(local, host(prefix.address))
                if prefix.family == .ipv4 && prefix.length < 31 { broadcast = m.or(broadcast, host(prefix.last)) }
            }
        }
        return addresses(ofType: type, field: field, local: local, broadcast: broadcast)
    }

    /// The addresses of a routing type given which are local and broadcast besides the ones
    /// every host has (127.0.0.0/8, 255.255.255.255), with `HostModel.addressType`'s precedence:
    /// unspecified, local, multicast, broadcast, unicast.
    func addresses(ofType type: AddressType, field: PacketSpace.Field, local hostLocal: BDDManager.Node, broadcast hostBroadcast: BDDManager.Node) -> BDDManager.Node {
        let m = manager
        func host(_ address: IPAddress) -> BDDManager.Node { m.equals(field, address.bits) }
        var local = hostLocal, broadcast = hostBroadcast
        if space.family == .ipv4 {
            local = m.or(local, m.prefix(field, IPAddress("127.0.0.0")!.bits, length: 8))
            broadcast = m.or(broadcast, host(IPAddress("255.255.255.255")!))
        }
        let unspec = host(IPAddress(family: space.family, bits: 0))
        let multicast = space.family == .ipv4
            ? m.prefix(field, IPAddress("224.0.0.0")!.bits, length: 4)
            : m.prefix(field, IPAddress("ff00::")!.bits, length: 8)
        let isLocal = m.minus(local, unspec)
        let isMulticast = m.minus(m.minus(multicast, unspec), local)
        let isBroadcast = m.minus(m.minus(m.minus(broadcast, unspec), local), multicast)
        switch type {
        case .unspec: return unspec
        case .local: return isLocal
        case .multicast: return isMulticast
        case .broadcast: return isBroadcast
        case .unicast: return m.not(m.or(m.or(unspec, isLocal), m.or(isMulticast, isBroadcast)))
        default: return .false
        }
    }

    /// The choices where a route field holds interface class `c`.
    func route(_ field: PacketSpace.Field, is c: Int) -> BDDManager.Node { manager.equals(field, UInt128(c)) }
}
