import WeirModel

/// The byte encodings the nftables backend shares between lowering, lifting and the text
/// printer (netlink note §4). Payload data and NAT immediates are network order; `ct state`,
/// `fib` results, `meta l4proto`/`nfproto` and log levels are host order (x86_64: little-endian);
/// interface names are raw bytes.
public enum NftEncoding {
    // MARK: Interfaces

    /// The `cmp` data of an interface match: an exact name NUL-padded to 16 bytes, a wildcard's
    /// prefix bytes without a NUL (empty for a bare `+`, which matches every interface).
    public static func interfaceBytes(_ name: InterfaceName) -> [UInt8] {
        let bytes = Array(name.name.utf8)
        if name.isWildcard { return bytes }
        return bytes + [UInt8](repeating: 0, count: max(0, 16 - bytes.count))
    }

    /// The interface a `cmp` on `meta iifname/oifname` compares with: a NUL inside the compared
    /// bytes means an exact name (what precedes it), none means a prefix. Nil when the bytes
    /// after the first NUL are not all NUL (the compare could never hold) or the data is longer
    /// than a device name.
    public static func interface(fromCmpData data: [UInt8]) -> InterfaceName? {
        guard !data.isEmpty, data.count <= 16 else { return nil }
        guard let nul = data.firstIndex(of: 0) else {
            return InterfaceName(String(decoding: data, as: UTF8.self), wildcard: true)
        }
        guard data[nul...].allSatisfy({ $0 == 0 }), nul > 0 else { return nil }
        return InterfaceName(String(decoding: data[..<nul], as: UTF8.self))
    }

    // MARK: Addresses

    /// An address in network byte order (4 or 16 bytes).
    public static func addressBytes(_ address: IPAddress) -> [UInt8] {
        switch address {
        case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * $0)) }
        case .v6(let v): return (0..<16).map { UInt8(truncatingIfNeeded: v >> UInt128(120 - 8 * $0)) }
        }
    }

    /// The address of a family from network-order bytes; shorter data is zero-filled at the end.
    public static func address(family: Family, bytes: [UInt8]) -> IPAddress? {
        let width = family.bitWidth / 8
        guard bytes.count <= width else { return nil }
        let full = bytes + [UInt8](repeating: 0, count: width - bytes.count)
        let bits = full.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        return IPAddress(family: family, bits: bits)
    }

    /// The network-header offset of the source or destination address.
    public static func addressOffset(_ direction: Direction, family: Family) -> UInt32 {
        switch (family, direction) {
        case (.ipv4, .source): 12
        case (.ipv4, .destination): 16
        case (.ipv6, .source): 8
        case (.ipv6, .destination): 24
        }
    }

    /// The mask of a prefix length over `byteCount` bytes (network order).
    public static func prefixMask(length: Int, byteCount: Int) -> [UInt8] {
        (0..<byteCount).map { i in
            let bits = min(max(length - 8 * i, 0), 8)
            return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }

    /// The prefix length a mask stands for, or nil when its ones are not contiguous from the start.
    public static func prefixLength(ofMask mask: [UInt8]) -> Int? {
        var length = 0
        var ended = false
        for byte in mask {
            for bit in (0..<8).reversed() {
                let set = byte >> UInt8(bit) & 1 == 1
                if set {
                    if ended { return nil }
                    length += 1
                } else {
                    ended = true
                }
            }
        }
        return length
    }

    // MARK: Numbers

    /// A port in network byte order.
    public static func portBytes(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff)] }

    /// A port from 2 network-order bytes.
    public static func port(_ bytes: [UInt8]) -> UInt16? {
        guard bytes.count == 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    /// A host-order (little-endian) u32.
    public static func hostU32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) } }

    /// A host-order u32 from up to 4 bytes (zero-extended), nil when longer.
    public static func hostU32(_ bytes: [UInt8]) -> UInt32? {
        guard bytes.count <= 4 else { return nil }
        return bytes.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
    }

    /// A host-order u16 at `offset` of a blob.
    static func hostU16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    /// A host-order u32 at `offset` of a blob.
    static func hostU32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << UInt32(8 * $1) }
    }

    /// `nfproto` / `NFPROTO_*` of a family.
    public static func nfproto(_ family: Family) -> UInt8 { family == .ipv4 ? 2 : 10 }

    /// The ethertype (`meta protocol`) of a family.
    public static func ethertype(_ family: Family) -> UInt16 { family == .ipv4 ? 0x0800 : 0x86dd }

    // MARK: Conntrack states

    /// The `ct state` bitmask of a set of states.
    public static func ctStateMask(_ states: Set<ConntrackState>) -> UInt32 {
        states.reduce(0) { $0 | CtExpression.stateBit($1) }
    }

    /// The states of a `ct state` bitmask, nil when it has bits no state has.
    public static func ctStates(fromMask mask: UInt32) -> Set<ConntrackState>? {
        var states: Set<ConntrackState> = []
        var rest = mask
        for state in ConntrackState.allCases where mask & CtExpression.stateBit(state) != 0 {
            states.insert(state)
            rest &= ~CtExpression.stateBit(state)
        }
        return rest == 0 ? states : nil
    }

    // MARK: Address types

    /// The kernel's `RTN_*` value of an address type (what `fib … type` yields).
    public static func rtn(_ type: AddressType) -> UInt32 {
        switch type {
        case .unspec: 0
        case .unicast: 1
        case .local: 2
        case .broadcast: 3
        case .anycast: 4
        case .multicast: 5
        case .blackhole: 6
        case .unreachable: 7
        case .prohibit: 8
        case .throw: 9
        case .nat: 10
        case .xresolve: 11
        }
    }

    /// The address type of an `RTN_*` value.
    public static func addressType(rtn: UInt32) -> AddressType? {
        AddressType.allCases.first { Self.rtn($0) == rtn }
    }
}

/// The REJECT types of each family: the model's (iptables') canonical name, its alias, and the
/// nf_tables encoding.
public struct NftRejectKind: Sendable, Hashable {
    /// The model's name (`icmp-host-prohibited`), as `--reject-with` canonically spells it.
    public var name: String
    /// iptables' short alias (`host-prohib`).
    public var alias: String
    /// The `reject` expression type.
    public var type: RejectExpression.RejectType
    /// The ICMP / ICMPv6 code (0 for a TCP reset).
    public var code: UInt8
    /// How `nft` spells it after `reject with` (`icmp host-prohibited`, `tcp reset`).
    public var nftText: String

    /// Every type, per family.
    public static let all: [Family: [NftRejectKind]] = [
        .ipv4: [
            .init(name: "icmp-net-unreachable", alias: "net-unreach", type: .icmpUnreachable, code: 0, nftText: "icmp net-unreachable"),
            .init(name: "icmp-host-unreachable", alias: "host-unreach", type: .icmpUnreachable, code: 1, nftText: "icmp host-unreachable"),
            .init(name: "icmp-proto-unreachable", alias: "proto-unreach", type: .icmpUnreachable, code: 2, nftText: "icmp prot-unreachable"),
            .init(name: "icmp-port-unreachable", alias: "port-unreach", type: .icmpUnreachable, code: 3, nftText: "icmp port-unreachable"),
            .init(name: "icmp-net-prohibited", alias: "net-prohib", type: .icmpUnreachable, code: 9, nftText: "icmp net-prohibited"),
            .init(name: "icmp-host-prohibited", alias: "host-prohib", type: .icmpUnreachable, code: 10, nftText: "icmp host-prohibited"),
            .init(name: "icmp-admin-prohibited", alias: "admin-prohib", type: .icmpUnreachable, code: 13, nftText: "icmp admin-prohibited"),
            .init(name: "tcp-reset", alias: "tcp-rst", type: .tcpReset, code: 0, nftText: "tcp reset"),
        ],
        .ipv6: [
            .init(name: "icmp6-no-route", alias: "no-route", type: .icmpUnreachable, code: 0, nftText: "icmpv6 no-route"),
            .init(name: "icmp6-adm-prohibited", alias: "adm-prohibited", type: .icmpUnreachable, code: 1, nftText: "icmpv6 admin-prohibited"),
            .init(name: "icmp6-addr-unreachable", alias: "addr-unreach", type: .icmpUnreachable, code: 3, nftText: "icmpv6 addr-unreachable"),
            .init(name: "icmp6-port-unreachable", alias: "port-unreach", type: .icmpUnreachable, code: 4, nftText: "icmpv6 port-unreachable"),
            .init(name: "icmp6-policy-fail", alias: "policy-fail", type: .icmpUnreachable, code: 5, nftText: "icmpv6 policy-fail"),
            .init(name: "icmp6-reject-route", alias: "reject-route", type: .icmpUnreachable, code: 6, nftText: "icmpv6 reject-route"),
            .init(name: "tcp-reset", alias: "tcp-reset", type: .tcpReset, code: 0, nftText: "tcp reset"),
        ],
    ]

    /// The type REJECT uses when the model names none (port unreachable).
    public static func defaultKind(_ family: Family) -> NftRejectKind {
        all[family]!.first { $0.type == .icmpUnreachable && $0.code == (family == .ipv4 ? 3 : 4) }!
    }

    /// The kind of a model reject type (name or alias, any case; nil: the default); nil when unknown.
    public static func kind(_ name: String?, family: Family) -> NftRejectKind? {
        guard let name else { return defaultKind(family) }
        let lower = name.lowercased()
        return all[family]!.first { $0.name == lower || $0.alias == lower }
    }

    /// The kind of a `reject` expression in a table of `family`; ICMPX codes (inet tables) map
    /// the way the kernel maps them. Nil when the code has no model name.
    public static func kind(_ expression: RejectExpression, family: Family) -> NftRejectKind? {
        switch expression.type {
        case .tcpReset:
            return all[family]!.first { $0.type == .tcpReset }
        case .icmpUnreachable:
            return all[family]!.first { $0.type == .icmpUnreachable && $0.code == expression.code }
        case .icmpxUnreachable:
            // NFT_REJECT_ICMPX_NO_ROUTE 0, PORT_UNREACH 1, HOST_UNREACH 2, ADMIN_PROHIBITED 3.
            let v4: [UInt8] = [0, 3, 1, 13]
            let v6: [UInt8] = [0, 4, 3, 1]
            guard expression.code < 4 else { return nil }
            let code = family == .ipv4 ? v4[Int(expression.code)] : v6[Int(expression.code)]
            return all[family]!.first { $0.type == .icmpUnreachable && $0.code == code }
        }
    }

    /// The model's target for this kind: `reject(with: nil)` for the default.
    public func target(family: Family) -> Target {
        self == Self.defaultKind(family) ? .reject(with: nil) : .reject(with: name)
    }
}
