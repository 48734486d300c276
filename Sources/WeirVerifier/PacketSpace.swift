import WeirModel
import WeirSimulator

/// The variables of symbolic IPv4/IPv6 packets of one family.
///
/// A set of packets on a path is a relation between the packet as it arrived and its header
/// now, after NAT. Each field NAT can rewrite (addresses and ports) has its arriving copy, a
/// "rewritten" flag and a current copy: flag 0 means the current value is the arriving one
/// (and the current copy is all zeros), flag 1 that it is the current copy, which then differs
/// from the arriving value. So every (arriving, current) pair has one encoding and sets stay
/// canonical, and an unrewritten packet costs nothing in the current copies. On every possible
/// host the source also has a marker, "masqueraded": the current source is then an address of
/// the host's, unknown, so its current copy is left open (every value) and the flag is set.
///
/// Order, first tested first: the protocol, the destination port (flag, current, arriving),
/// the current destination address (flag, current), the source port (flag, current,
/// arriving), the source address (flag, masquerade marker, current, arriving), the arriving
/// destination address, the host's choices (`HostChoices`, used on every possible host only),
/// the conntrack state, the in-interface class, the out-interface class. What one published
/// port's rules decide (its protocol and port, and its DNAT's current port and address) thus sits at the top, above
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

        /// The field's value in an assignment (variables it leaves out are false).
        public func value(in assignment: [Int: Bool]) -> UInt128 {
            (0..<width).reduce(UInt128(0)) { $0 << 1 | (assignment[variable($1)] == true ? 1 : 0) }
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

        /// The field's current value in an assignment, given the arriving one.
        public func currentValue(in assignment: [Int: Bool], arrived: UInt128) -> UInt128 {
            assignment[flag] == true ? current.value(in: assignment) : arrived
        }
    }

    /// The host's choices when the check is for every possible host, inputs like the packet's
    /// fields: the route of the arriving destination (an interface class, `lo` for a local
    /// address, 0 for no route), whether the arriving source is local, whether either is a
    /// subnet's broadcast address, whether the host forwards, and for each address a NAT target
    /// of the rulesets writes, its own route and broadcast choice (an address is local where
    /// its route is `lo`). An address NAT writes is one of those constants, so each rewritten
    /// value has a choice of its own, whichever side wrote it.
    public struct HostChoices: Sendable {
        /// The choices for one address a NAT target writes.
        public struct Written: Sendable {
            public let address: IPAddress
            public let route: Field
            public let isBroadcast: Int
        }

        public let routeOfDestination: Field
        public let sourceIsLocal: Int
        public let destinationIsBroadcast: Int
        public let sourceIsBroadcast: Int
        public let forwards: Int
        public let written: [Written]
    }

    public let family: Family
    /// Interface classes; index 0 is "none".
    public let interfaces: [String]
    public let interfaceBits: Int
    public let addressBits: Int
    /// True when the check is for every possible host: routes, local and broadcast addresses
    /// are the `hostChoices` variables, not a host model's.
    public let everyHost: Bool
    /// On every possible host, the addresses NAT targets write (DNAT and SNAT), sorted.
    public let writtenAddresses: [IPAddress]

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
        var written = Set<IPAddress>()
        for table in rulesets.flatMap(\.tables) where table.family == family {
            for chain in table.chains {
                for rule in chain.rules {
                    switch rule.target {
                    case .dnat(let to), .snat(let to): if to.address.family == family { written.insert(to.address) }
                    default: break
                    }
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
        writtenAddresses = host == nil ? written.sorted { $0.bits < $1.bits } : []
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
    private var hostWidth: Int { k + 4 + writtenAddresses.count * (k + 1) }
    public var hostChoices: HostChoices {
        let written = writtenAddresses.enumerated().map { index, address in
            HostChoices.Written(address: address, route: Field(start: hostStart + k + 4 + index * (k + 1), width: k),
                                isBroadcast: hostStart + k + 4 + index * (k + 1) + k)
        }
        return HostChoices(routeOfDestination: Field(start: hostStart, width: k), sourceIsLocal: hostStart + k,
                           destinationIsBroadcast: hostStart + k + 1, sourceIsBroadcast: hostStart + k + 2, forwards: hostStart + k + 3,
                           written: written)
    }
    public var state: Field { Field(start: hostStart + hostWidth, width: 3) }
    public var inInterface: Field { Field(start: hostStart + hostWidth + 3, width: k) }
    public var outInterface: Field { Field(start: hostStart + hostWidth + 3 + k, width: k) }
    public var variableCount: Int { hostStart + hostWidth + 3 + 2 * k }

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

    /// The variables' values for a packet as it arrives on the in-interface class `input` (0:
    /// sent locally), with the out-interface class `output` (nothing rewritten, no host choice).
    public func assignment(_ packet: Packet, input: Int, output: Int = 0) -> (Int) -> Bool {
        let fields: [(Field, UInt128)] = [
            (transportProtocol, UInt128(packet.transport.number)), (state, UInt128(Self.stateIndex(packet.state))),
            (inInterface, UInt128(input)), (outInterface, UInt128(output)),
            (source.arriving, packet.source.bits), (destination.arriving, packet.destination.bits),
            (sourcePort.arriving, UInt128(packet.sourcePort)), (destinationPort.arriving, UInt128(packet.destinationPort)),
        ]
        var bits = [Bool](repeating: false, count: variableCount)
        for (field, value) in fields {
            for bit in 0..<field.width { bits[field.variable(bit)] = (value >> UInt128(field.width - 1 - bit)) & 1 == 1 }
        }
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
            let loopback = UInt128(space.interfaceClass("lo"))
            // A subnet's broadcast address (IPv4 only) has at least two host bits, all ones,
            // and a route (its subnet's).
            func broadcastable(_ copy: PacketSpace.Field) -> BDDManager.Node {
                guard space.family == .ipv4 else { return .false }
                return m.and(m.variable(copy.variable(copy.width - 2)), m.variable(copy.variable(copy.width - 1)))
            }
            // A written address: local where its route is lo, broadcast where chosen and it can be.
            func written(_ copy: PacketSpace.Field, _ property: (PacketSpace.HostChoices.Written) -> BDDManager.Node) -> BDDManager.Node {
                m.or(choices.written.map { m.and(m.equals(copy, $0.address.bits), property($0)) })
            }
            let writtenLocal = { (w: PacketSpace.HostChoices.Written) in m.equals(w.route, loopback) }
            let writtenBroadcast = { (w: PacketSpace.HostChoices.Written) in m.and(m.variable(w.isBroadcast), m.not(m.equals(w.route, 0))) }
            let types = direction == .source
                ? m.ifThenElse(m.variable(field.flag),
                               addresses(ofType: type, field: field.current, local: m.or(m.variable(field.marker!), written(field.current, writtenLocal)),
                                         broadcast: m.and(written(field.current, writtenBroadcast), broadcastable(field.current))),
                               addresses(ofType: type, field: field.arriving, local: m.variable(choices.sourceIsLocal),
                                         broadcast: m.and(m.variable(choices.sourceIsBroadcast), broadcastable(field.arriving))))
                : m.ifThenElse(m.variable(field.flag),
                               addresses(ofType: type, field: field.current, local: written(field.current, writtenLocal),
                                         broadcast: m.and(written(field.current, writtenBroadcast), broadcastable(field.current))),
                               addresses(ofType: type, field: field.arriving, local: m.equals(choices.routeOfDestination, loopback),
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
        manager.or(space.interfaces.indices.filter { space.pattern(name, matchesClass: $0) }.map { manager.equals(field, UInt128($0)) })
    }

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
}
