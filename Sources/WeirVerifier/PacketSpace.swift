import WeirModel
import WeirSimulator

/// The variables of symbolic IPv4/IPv6 packets of one family, most significant bit first:
/// source and destination address, protocol, source and destination port, conntrack state,
/// in-interface class, out-interface class (interfaces last: with them first, every set split
/// at the top by interface and Docker-sized rulesets took 1.6 times as long). Interfaces are finite classes: every name a rule or
/// the host mentions, one representative per wildcard prefix for the names no rule lists
/// (`eth*`), one for any other name (`*`), and "none" (no interface: a locally sent packet's
/// input, a received packet's output before routing).
public struct PacketSpace: Sendable {
    public let family: Family
    /// Interface classes; index 0 is "none".
    public let interfaces: [String]
    public let interfaceBits: Int
    public let addressBits: Int

    public init(family: Family, ruleset: Ruleset, host: HostModel) {
        self.init(family: family, rulesets: [ruleset], host: host)
    }

    /// The space of packets that tells apart everything any of `rulesets` can.
    public init(family: Family, rulesets: [Ruleset], host: HostModel) {
        self.family = family
        var exact = Set(host.interfaces.map(\.name))
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

    // Variable layout.
    public var sourceStart: Int { 0 }
    public var destinationStart: Int { sourceStart + addressBits }
    public var protocolStart: Int { destinationStart + addressBits }
    public var sourcePortStart: Int { protocolStart + 8 }
    public var destinationPortStart: Int { sourcePortStart + 16 }
    public var stateStart: Int { destinationPortStart + 16 }
    public var inInterfaceStart: Int { stateStart + 3 }
    public var outInterfaceStart: Int { inInterfaceStart + interfaceBits }
    public var variableCount: Int { outInterfaceStart + interfaceBits }

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
}

/// Turns model matches into sets of packets.
public struct MatchEncoder {
    public let space: PacketSpace
    public let host: HostModel
    public let manager: BDDManager

    public init(space: PacketSpace, host: HostModel, manager: BDDManager) {
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
            return negate(interfaces(name, field: space.inInterfaceStart), negated)
        case let .outInterface(name, negated):
            return negate(interfaces(name, field: space.outInterfaceStart), negated)
        case let .address(direction, prefix, negated):
            guard prefix.family == space.family else { return negated ? .true : .false }
            let start = direction == .source ? space.sourceStart : space.destinationStart
            return negate(m.prefix(field: start, width: space.addressBits, prefix.address.bits, length: prefix.length), negated)
        case let .protocol(transport, negated):
            return negate(m.equals(field: space.protocolStart, width: 8, UInt128(transport.number)), negated)
        case let .port(direction, range, negated):
            let start = direction == .source ? space.sourcePortStart : space.destinationPortStart
            let inRange = m.range(field: start, width: 16, UInt128(range.first), UInt128(range.last))
            // A port match never holds for a protocol without ports, negated or not.
            return m.and(hasPorts, negate(inRange, negated))
        case let .conntrackState(states, negated):
            let any = states.reduce(BDDManager.Node.false) { m.or($0, m.equals(field: space.stateStart, width: 3, UInt128(PacketSpace.stateIndex($1)))) }
            return negate(any, negated)
        case let .addressType(direction, type, negated):
            let start = direction == .source ? space.sourceStart : space.destinationStart
            return negate(addresses(ofType: type, field: start), negated)
        case .comment:
            return .true
        }
    }

    private func negate(_ set: BDDManager.Node, _ negated: Bool) -> BDDManager.Node { negated ? manager.not(set) : set }

    var hasPorts: BDDManager.Node {
        [TransportProtocol.tcp, .udp, .sctp].reduce(BDDManager.Node.false) {
            manager.or($0, manager.equals(field: space.protocolStart, width: 8, UInt128($1.number)))
        }
    }

    private func interfaces(_ name: InterfaceName, field: Int) -> BDDManager.Node {
        space.interfaces.indices.filter { space.pattern(name, matchesClass: $0) }.reduce(BDDManager.Node.false) {
            manager.or($0, manager.equals(field: field, width: space.interfaceBits, UInt128($1)))
        }
    }

    /// The addresses of a routing type on the host (as `HostModel.addressType` classifies them).
    func addresses(ofType type: AddressType, field: Int) -> BDDManager.Node {
        let m = manager, width = space.addressBits
        func host(_ address: IPAddress) -> BDDManager.Node { m.equals(field: field, width: width, address.bits) }
        var local = BDDManager.Node.false
        if space.family == .ipv4 { local = m.prefix(field: field, width: width, IPAddress("127.0.0.0")!.bits, length: 8) }
        for interface in self.host.interfaces {
            for prefix in interface.addresses where prefix.family == space.family { local = m.or(local, host(prefix.address)) }
        }
        let unspecified = host(IPAddress(family: space.family, bits: 0))
        let multicast = space.family == .ipv4
            ? m.prefix(field: field, width: width, IPAddress("224.0.0.0")!.bits, length: 4)
            : m.prefix(field: field, width: width, IPAddress("ff00::")!.bits, length: 8)
        var broadcast = BDDManager.Node.false
        if space.family == .ipv4 {
            broadcast = host(IPAddress("255.255.255.255")!)
            for interface in self.host.interfaces {
                for prefix in interface.addresses where prefix.family == .ipv4 && prefix.length < 31 { broadcast = m.or(broadcast, host(prefix.last)) }
            }
        }
        // The same precedence as HostModel.addressType: unspecified, local, multicast, broadcast, unicast.
        let unspec = unspecified
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
