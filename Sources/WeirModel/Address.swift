/// An address family of netfilter: the model is written for both, backends say which they carry.
public enum Family: String, Sendable, Hashable, CaseIterable, Comparable {
    /// IPv4 (`ip` in nft, `iptables`).
    case ipv4 = "ip"
    /// IPv6 (`ip6` in nft, `ip6tables`).
    case ipv6 = "ip6"

    /// Bits in an address of this family.
    public var bitWidth: Int { self == .ipv4 ? 32 : 128 }

    public static func < (lhs: Family, rhs: Family) -> Bool { lhs == .ipv4 && rhs == .ipv6 }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    public var family: Family {
        switch self { case .v4: .ipv4; case .v6: .ipv6 }
    }

    /// The address as a 128-bit number (IPv4 in the low 32 bits).
    public var bits: UInt128 {
        switch self { case .v4(let v): UInt128(v); case .v6(let v): v }
    }

    public init(family: Family, bits: UInt128) {
        switch family {
        case .ipv4: self = .v4(UInt32(truncatingIfNeeded: bits))
        case .ipv6: self = .v6(bits)
        }
    }

    /// `0.0.0.0` or `::`.
    public var isUnspecified: Bool { bits == 0 }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no zone).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let v = Self.parseV6(Array(text.utf8)) else { return nil }
            self = .v6(v)
        } else {
            guard let v = Self.parseV4(Array(text.utf8)) else { return nil }
            self = .v4(v)
        }
    }

    static func parseV4(_ bytes: [UInt8]) -> UInt32? {
        var parts: [UInt32] = []
        var current: UInt32 = 0
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return nil }
                parts.append(current)
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if digits > 0 && current == 0 { return nil }  // no leading zeros: "010" is ambiguous
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        parts.append(current)
        guard parts.count == 4 else { return nil }
        return parts.reduce(0) { $0 << 8 | $1 }
    }

    static func parseV6(_ bytes: [UInt8]) -> UInt128? {
        let colon = UInt8(ascii: ":")
        var doubleColon: Int? = nil
        if bytes.count >= 2 {
            for i in 0..<(bytes.count - 1) where bytes[i] == colon && bytes[i + 1] == colon {
                guard doubleColon == nil else { return nil }  // at most one "::" (":::" fails here too)
                doubleColon = i
            }
        }
        func groups(_ part: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: colon, omittingEmptySubsequences: false)
            return pieces.contains(where: \.isEmpty) ? nil : pieces
        }
        let head = doubleColon.map { bytes[..<$0] } ?? bytes[...]
        let tail = doubleColon.map { bytes[($0 + 2)...] } ?? []
        guard let headGroups = groups(head), let tailGroups = groups(tail) else { return nil }
        func words(_ list: [ArraySlice<UInt8>], v4Last: Bool) -> [UInt16]? {
            var out: [UInt16] = []
            for (i, group) in list.enumerated() {
                if v4Last, i == list.count - 1, group.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseV4(Array(group)) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xffff))
                    continue
                }
                guard (1...4).contains(group.count) else { return nil }
                var value: UInt16 = 0
                for byte in group {
                    guard let digit = hexValue(byte) else { return nil }
                    value = value << 4 | UInt16(digit)
                }
                out.append(value)
            }
            return out
        }
        guard let headWords = words(headGroups, v4Last: doubleColon == nil),
              let tailWords = words(tailGroups, v4Last: true) else { return nil }
        let all: [UInt16]
        if doubleColon != nil {
            guard headWords.count + tailWords.count <= 7 else { return nil }
            all = headWords + Array(repeating: 0, count: 8 - headWords.count - tailWords.count) + tailWords
        } else {
            guard headWords.count == 8 else { return nil }
            all = headWords
        }
        return all.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Dotted quad, or IPv6 as `inet_ntop` prints it (RFC 5952: lowercase, longest run of two or
    /// more zero groups compressed, embedded IPv4 for mapped and compatible addresses).
    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        case .v6(let v):
            let words = (0..<8).map { UInt16(truncatingIfNeeded: v >> UInt128(112 - 16 * $0)) }
            var bestStart = -1, bestLength = 0, runStart = -1
            for i in 0...8 {
                if i < 8, words[i] == 0 {
                    if runStart < 0 { runStart = i }
                } else if runStart >= 0 {
                    if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                    runStart = -1
                }
            }
            if bestLength < 2 { bestStart = -1 }
            var out = ""
            var i = 0
            while i < 8 {
                if i == bestStart {
                    out += "::"
                    i += bestLength
                    continue
                }
                if i == 6, bestStart == 0, bestLength == 6 || (bestLength == 5 && words[5] == 0xffff) {
                    if !out.hasSuffix(":") { out += ":" }  // "::ffff:1.2.3.4", as inet_ntop prints it
                    out += IPAddress.v4(UInt32(truncatingIfNeeded: v)).description
                    break
                }
                if !out.isEmpty, !out.hasSuffix(":") { out += ":" }
                out += String(words[i], radix: 16)
                i += 1
            }
            return out
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family < rhs.family }
        return lhs.bits < rhs.bits
    }
}

/// An address prefix (`172.17.0.0/16`); a host is a full-length prefix.
public struct Prefix: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// A prefix; host bits of `address` are kept as given (see `isCanonical`).
    public init(address: IPAddress, length: Int) {
        precondition(length >= 0 && length <= address.family.bitWidth, "prefix length out of range")
        self.address = address
        self.length = length
    }

    /// A single host.
    public init(host: IPAddress) { self.init(address: host, length: host.family.bitWidth) }

    /// Parses `A` or `A/N`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        var length = address.family.bitWidth
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 0, n <= length, !parts[1].hasPrefix("+") else { return nil }
            length = n
        }
        self.init(address: address, length: length)
    }

    public var family: Family { address.family }

    private var mask: UInt128 {
        let width = family.bitWidth
        guard length > 0 else { return 0 }
        let ones: UInt128 = width == 128 ? ~0 : (UInt128(1) << 32) - 1
        return (ones >> UInt128(width - length)) << UInt128(width - length)
    }

    /// The first address of the prefix (host bits cleared).
    public var network: IPAddress { IPAddress(family: family, bits: address.bits & mask) }
    /// The last address of the prefix.
    public var last: IPAddress {
        let width = family.bitWidth
        let all: UInt128 = width == 128 ? ~0 : (UInt128(1) << 32) - 1
        return IPAddress(family: family, bits: (address.bits & mask) | (all & ~mask))
    }
    /// Whether no host bits are set.
    public var isCanonical: Bool { address == network }
    /// The same prefix with host bits cleared.
    public var canonical: Prefix { Prefix(address: network, length: length) }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && (other.bits & mask) == (address.bits & mask)
    }

    public func overlaps(_ other: Prefix) -> Bool {
        other.family == family && (contains(other.address) || other.contains(address))
    }

    /// `a.b.c.d/len` — always with the length, as iptables-save prints it.
    public var description: String { "\(address)/\(length)" }

    public static func < (lhs: Prefix, rhs: Prefix) -> Bool {
        (lhs.address, lhs.length) < (rhs.address, rhs.length)
    }
}
