/// An interface name pattern: an exact name, or a prefix when it ends in `+` (iptables) / `*` (nft).
public struct InterfaceName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The name without the wildcard mark.
    public let name: String
    /// Whether every interface whose name starts with `name` matches.
    public let isWildcard: Bool

    public init(_ name: String, wildcard: Bool = false) {
        self.name = name
        self.isWildcard = wildcard
    }

    /// Parses iptables spelling: `eth0`, `eth+`.
    public init(iptables text: String) {
        if text.hasSuffix("+") { self.init(String(text.dropLast()), wildcard: true) } else { self.init(text) }
    }

    /// iptables spelling.
    public var description: String { isWildcard ? name + "+" : name }

    public static func < (lhs: InterfaceName, rhs: InterfaceName) -> Bool { lhs.description < rhs.description }
}

/// Which end of a packet a match looks at.
public enum Direction: Sendable, Hashable {
    case source, destination
}

/// One condition of a rule. A rule matches when all its matches do; each may be negated.
///
/// Matches are netfilter's meanings, not one backend's syntax: the iptables backend groups
/// port matches into `-m tcp`, the nft backend into payload compares.
public enum Match: Sendable, Hashable {
    /// The interface a packet came in on (`-i`, `iifname`).
    case inInterface(InterfaceName, negated: Bool = false)
    /// The interface a packet leaves by (`-o`, `oifname`).
    case outInterface(InterfaceName, negated: Bool = false)
    /// Source or destination address within a prefix (`-s`/`-d`, `ip saddr`/`ip daddr`).
    case address(Direction, Prefix, negated: Bool = false)
    /// The transport protocol (`-p`, `meta l4proto`).
    case `protocol`(TransportProtocol, negated: Bool = false)
    /// Source or destination port in a range; needs a `protocol` match with ports before it.
    case port(Direction, PortRange, negated: Bool = false)
    /// The connection's conntrack state is one of the set (`-m conntrack --ctstate`, `ct state`).
    case conntrackState(Set<ConntrackState>, negated: Bool = false)
    /// The routing type of the source or destination address (`-m addrtype`, `fib … type`).
    case addressType(Direction, AddressType, negated: Bool = false)
    /// A remark carried into the ruleset (`-m comment`, nft `comment`); always true.
    case comment(String)
}
