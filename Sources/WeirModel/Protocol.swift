/// A transport protocol by IP protocol number.
public struct TransportProtocol: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let number: UInt8
    public init(number: UInt8) { self.number = number }

    public static let icmp = TransportProtocol(number: 1)
    public static let tcp = TransportProtocol(number: 6)
    public static let udp = TransportProtocol(number: 17)
    public static let icmpv6 = TransportProtocol(number: 58)
    public static let sctp = TransportProtocol(number: 132)

    /// Names netfilter tools print, by number.
    static let names: [UInt8: String] = [1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"]

    /// Parses a name (`tcp`, `udp`, `sctp`, `icmp`, `ipv6-icmp`/`icmpv6`) or a number 1–255.
    public init?(name: some StringProtocol) {
        let lower = name.lowercased()
        if lower == "icmpv6" { self = .icmpv6; return }
        if let (number, _) = Self.names.first(where: { $0.value == lower }) { self.init(number: number); return }
        guard let n = UInt8(lower), n > 0 else { return nil }
        self.init(number: n)
    }

    /// Whether the protocol has 16-bit ports netfilter can match.
    public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp }

    /// The name iptables prints (`tcp`), or the number.
    public var description: String { Self.names[number] ?? String(number) }

    public static func < (lhs: TransportProtocol, rhs: TransportProtocol) -> Bool { lhs.number < rhs.number }
}

/// An inclusive range of ports, `first...last` (a single port when equal).
public struct PortRange: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let first: UInt16
    public let last: UInt16

    public init(_ first: UInt16, _ last: UInt16) {
        precondition(first <= last, "port range must not be reversed")
        self.first = first
        self.last = last
    }

    public init(_ port: UInt16) { self.init(port, port) }

    public var isSingle: Bool { first == last }
    public var count: Int { Int(last) - Int(first) + 1 }

    public func contains(_ port: UInt16) -> Bool { first <= port && port <= last }

    /// `80` or `8000-8002`.
    public var description: String { isSingle ? "\(first)" : "\(first)-\(last)" }

    public static func < (lhs: PortRange, rhs: PortRange) -> Bool { (lhs.first, lhs.last) < (rhs.first, rhs.last) }
}

/// A conntrack state, as `ct state` / `--ctstate` name them.
public enum ConntrackState: String, Sendable, Hashable, CaseIterable, Comparable {
    // Declaration order is the order iptables prints them.
    case invalid = "INVALID", new = "NEW", related = "RELATED", established = "ESTABLISHED", untracked = "UNTRACKED"

    public static func < (lhs: ConntrackState, rhs: ConntrackState) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A routing address type (`addrtype` / `fib … type`).
public enum AddressType: String, Sendable, Hashable, CaseIterable {
    case unspec = "UNSPEC", unicast = "UNICAST", local = "LOCAL", broadcast = "BROADCAST",
         anycast = "ANYCAST", multicast = "MULTICAST", blackhole = "BLACKHOLE",
         unreachable = "UNREACHABLE", prohibit = "PROHIBIT", `throw` = "THROW", nat = "NAT",
         xresolve = "XRESOLVE"
}
