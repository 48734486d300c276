import WeirModel

/// Reads the x_tables blobs iptables-nft stores as `match`/`target` expressions (netlink
/// note §2.4) into model matches and targets. Blobs are the extension's C struct in host byte
/// order (x86_64: little-endian); ports and addresses inside NAT ranges are network order.
///
/// Understood: matches `conntrack` rev 3 (`--ctstate` only), `addrtype` rev 0 and 1 (one type
/// per direction, no `--limit-iface-*`), `comment` rev 0, `tcp` and `udp` rev 0 (ports only);
/// targets `MASQUERADE` rev 0, `DNAT`/`SNAT` rev 0–2 (one address, optional ports), `REJECT`
/// rev 0, `LOG` rev 0 (no log flags) and `CHECKSUM` rev 0 (`--checksum-fill`). Anything else is
/// an `NftXtables.Failure` naming what it is.
public enum NftXtables {
    /// What one xt expression means in the model.
    public enum Lifted: Sendable, Equatable {
        /// Matches, in the order iptables prints them.
        case matches([Match])
        case target(Target)
    }

    /// Why a blob has no model meaning.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// `xt_conntrack` match flags.
    static let conntrackState: UInt16 = 1 << 0
    static let conntrackStateAlias: UInt16 = 1 << 13
    /// `xt_conntrack` state bits (`XT_CONNTRACK_STATE_BIT`); UNTRACKED is bit 8 there, 0x40 in nft.
    static let conntrackBits: [(ConntrackState, UInt16)] = [
        (.invalid, 0x01), (.established, 0x02), (.related, 0x04), (.new, 0x08), (.untracked, 0x100),
    ]

    /// `NF_NAT_RANGE_*`.
    static let natMapIPs: UInt32 = 1
    static let natProtoSpecified: UInt32 = 2

    /// The model meaning of an xt expression in a table of `family`.
    /// `portProtocol` is the rule's non-negated protocol so far (a tcp/udp match needs it).
    public static func lift(_ xt: XtablesExpression, family: Family, portProtocol: TransportProtocol?) -> Result<Lifted, Failure> {
        let what = "x_tables \(xt.role == .match ? "match" : "target") '\(xt.name)' rev \(xt.revision)"
        func need(_ size: Int) throws(Failure) {
            if xt.info.count < size { throw Failure("\(what) has \(xt.info.count) bytes of info; expected at least \(size)") }
        }
        do throws(Failure) {
            switch (xt.role, xt.name, xt.revision) {
            case (.match, "conntrack", 3):
                try need(152)
                return .success(.matches([try conntrack(xt.info, what: what)]))
            case (.match, "addrtype", 0):
                try need(12)
                let invertSource = NftEncoding.hostU32(xt.info, at: 4) != 0
                let invertDest = NftEncoding.hostU32(xt.info, at: 8) != 0
                return .success(.matches(try addrtype(xt.info, invertSource: invertSource, invertDest: invertDest, what: what)))
            case (.match, "addrtype", 1):
                try need(8)
                let flags = NftEncoding.hostU32(xt.info, at: 4)
                if flags & ~UInt32(3) != 0 {
                    throw Failure("\(what) limits the lookup to an interface (--limit-iface-in/out), which the model cannot express")
                }
                return .success(.matches(try addrtype(xt.info, invertSource: flags & 1 != 0, invertDest: flags & 2 != 0, what: what)))
            case (.match, "comment", 0):
                let end = xt.info.firstIndex(of: 0) ?? xt.info.endIndex
                return .success(.matches([.comment(String(decoding: xt.info[..<end], as: UTF8.self))]))
            case (.match, "tcp", 0), (.match, "udp", 0):
                let isTCP = xt.name == "tcp"
                try need(isTCP ? 12 : 9)
                let expected: TransportProtocol = isTCP ? .tcp : .udp
                if portProtocol != expected {
                    throw Failure("\(what) without a preceding '\(expected)' protocol match")
                }
                let invert: UInt8
                if isTCP {
                    if xt.info[8] != 0 || xt.info[9] != 0 || xt.info[10] != 0 {
                        throw Failure("\(what) matches TCP flags or options, which the model cannot express")
                    }
                    invert = xt.info[11]
                    if invert & ~UInt8(3) != 0 { throw Failure("\(what) inverts TCP flags or options, which the model cannot express") }
                } else {
                    invert = xt.info[8]
                    if invert & ~UInt8(3) != 0 { throw Failure("\(what) has unknown inversion flags 0x\(String(invert, radix: 16))") }
                }
                return .success(.matches(try ports(xt.info, invert: invert, what: what)))
            case (.target, "MASQUERADE", 0):
                let (flags, _, ports) = try natRange(xt.info, layout: family == .ipv4 ? .ipv4Compat : .range, family: family, what: what)
                if flags & ~natProtoSpecified != 0 {
                    throw Failure("\(what) has NAT flags 0x\(String(flags, radix: 16)) (random, persistent, …) the model cannot express")
                }
                return .success(.target(.masquerade(ports: ports)))
            case (.target, "DNAT", let revision), (.target, "SNAT", let revision):
                let layout: NatLayout
                switch revision {
                case 0 where family == .ipv4: layout = .ipv4Compat
                case 1: layout = .range
                case 2: layout = .range2
                default: throw Failure("\(what) is not supported (DNAT/SNAT revisions 0 (IPv4), 1 and 2 are)")
                }
                let (flags, address, ports) = try natRange(xt.info, layout: layout, family: family, what: what)
                if flags & ~(natMapIPs | natProtoSpecified) != 0 {
                    throw Failure("\(what) has NAT flags 0x\(String(flags, radix: 16)) (random, persistent, …) the model cannot express")
                }
                guard let address else { throw Failure("\(what) has no address (--to without an address), which the model cannot express") }
                let destination = NATDestination(address: address, ports: ports)
                return .success(.target(xt.name == "DNAT" ? .dnat(destination) : .snat(destination)))
            case (.target, "REJECT", 0):
                try need(4)
                let with = NftEncoding.hostU32(xt.info, at: 0)
                // enum ipt_reject_with / ip6t_reject_with.
                let v4: [UInt32: String?] = [0: "icmp-net-unreachable", 1: "icmp-host-unreachable", 2: "icmp-proto-unreachable",
                                             3: nil, 5: "icmp-net-prohibited", 6: "icmp-host-prohibited",
                                             7: "tcp-reset", 8: "icmp-admin-prohibited"]
                let v6: [UInt32: String?] = [0: "icmp6-no-route", 1: "icmp6-adm-prohibited", 3: "icmp6-addr-unreachable",
                                             4: nil, 6: "tcp-reset", 7: "icmp6-policy-fail", 8: "icmp6-reject-route"]
                guard let name = (family == .ipv4 ? v4 : v6)[with] else {
                    throw Failure("\(what) rejects with type \(with), which the model cannot express")
                }
                return .success(.target(.reject(with: name)))
            case (.target, "LOG", 0):
                try need(32)
                let level = xt.info[0]
                if xt.info[1] != 0 {
                    throw Failure("\(what) has log flags 0x\(String(xt.info[1], radix: 16)) (--log-tcp-sequence, …) the model cannot express")
                }
                if level > 7 { throw Failure("\(what) has log level \(level), not a syslog level") }
                let prefixBytes = xt.info[2..<32]
                let end = prefixBytes.firstIndex(of: 0) ?? prefixBytes.endIndex
                let prefix = String(decoding: prefixBytes[..<end], as: UTF8.self)
                return .success(.target(.log(prefix: prefix.isEmpty ? nil : prefix,
                                              level: level == NftLayout.defaultLogLevel ? nil : level)))
            case (.target, "CHECKSUM", 0):
                try need(1)
                guard xt.info[0] & 1 != 0 else { throw Failure("\(what) without --checksum-fill") }
                return .success(.target(.checksumFill))
            default:
                throw Failure("\(what) is not supported")
            }
        } catch {
            return .failure(error)
        }
    }

    static func conntrack(_ info: [UInt8], what: String) throws(Failure) -> Match {
        let matchFlags = NftEncoding.hostU16(info, at: 146)
        let invertFlags = NftEncoding.hostU16(info, at: 148)
        let stateMask = NftEncoding.hostU16(info, at: 150)
        guard matchFlags & conntrackState != 0 else {
            throw Failure("\(what) does not match --ctstate (match flags 0x\(String(matchFlags, radix: 16)))")
        }
        if matchFlags & ~(conntrackState | conntrackStateAlias) != 0 {
            throw Failure("\(what) matches more than --ctstate (match flags 0x\(String(matchFlags, radix: 16))), which the model cannot express")
        }
        var states: Set<ConntrackState> = []
        var rest = stateMask
        for (state, bit) in conntrackBits where stateMask & bit != 0 {
            states.insert(state)
            rest &= ~bit
        }
        if rest != 0 {
            throw Failure("\(what) matches conntrack states 0x\(String(rest, radix: 16)) (SNAT, DNAT, …) the model cannot express")
        }
        if states.isEmpty { throw Failure("\(what) has an empty state set") }
        return .conntrackState(states, negated: invertFlags & conntrackState != 0)
    }

    static func addrtype(_ info: [UInt8], invertSource: Bool, invertDest: Bool, what: String) throws(Failure) -> [Match] {
        var matches: [Match] = []
        for (direction, offset, invert) in [(Direction.source, 0, invertSource), (.destination, 2, invertDest)] {
            let mask = NftEncoding.hostU16(info, at: offset)
            if mask == 0 { continue }
            guard mask.nonzeroBitCount == 1, let type = NftEncoding.addressType(rtn: UInt32(mask.trailingZeroBitCount)) else {
                throw Failure("\(what) matches several address types (mask 0x\(String(mask, radix: 16))); the model has one per match")
            }
            matches.append(.addressType(direction, type, negated: invert))
        }
        if matches.isEmpty { throw Failure("\(what) matches no address type") }
        return matches
    }

    static func ports(_ info: [UInt8], invert: UInt8, what: String) throws(Failure) -> [Match] {
        var matches: [Match] = []
        for (direction, offset, bit) in [(Direction.source, 0, UInt8(1)), (.destination, 4, UInt8(2))] {
            let low = NftEncoding.hostU16(info, at: offset)
            let high = NftEncoding.hostU16(info, at: offset + 2)
            guard low <= high else { throw Failure("\(what) has a reversed port range \(low):\(high)") }
            let negated = invert & bit != 0
            if low == 0 && high == 65535 && !negated { continue }
            matches.append(.port(direction, PortRange(low, high), negated: negated))
        }
        // A bare `-m tcp` matches like `--dport 0:65535` (what the iptables importer gives too).
        return matches.isEmpty ? [.port(.destination, PortRange(0, 65535))] : matches
    }

    enum NatLayout {
        /// `nf_nat_ipv4_multi_range_compat`: rangesize, then flags, min_ip, max_ip, min, max.
        case ipv4Compat
        /// `nf_nat_range`: flags, min_addr[16], max_addr[16], min_proto, max_proto.
        case range
        /// `nf_nat_range2`: `nf_nat_range` + base_proto.
        case range2
    }

    static func natRange(_ info: [UInt8], layout: NatLayout, family: Family, what: String) throws(Failure) -> (flags: UInt32, address: IPAddress?, ports: PortRange?) {
        let flagsAt: Int, minAt: Int, maxAt: Int, addressLength: Int, protoAt: Int, size: Int
        switch layout {
        case .ipv4Compat: (flagsAt, minAt, maxAt, addressLength, protoAt, size) = (4, 8, 12, 4, 16, 20)
        case .range: (flagsAt, minAt, maxAt, addressLength, protoAt, size) = (0, 4, 20, family == .ipv4 ? 4 : 16, 36, 40)
        case .range2: (flagsAt, minAt, maxAt, addressLength, protoAt, size) = (0, 4, 20, family == .ipv4 ? 4 : 16, 36, 42)
        }
        if info.count < size { throw Failure("\(what) has \(info.count) bytes of info; expected at least \(size)") }
        if layout == .ipv4Compat, NftEncoding.hostU32(info, at: 0) != 1 {
            throw Failure("\(what) has \(NftEncoding.hostU32(info, at: 0)) ranges; the model has one")
        }
        if layout == .range2, info[40] != 0 || info[41] != 0 {
            throw Failure("\(what) has a base port (port offset mapping), which the model cannot express")
        }
        let flags = NftEncoding.hostU32(info, at: flagsAt)
        var address: IPAddress? = nil
        if flags & natMapIPs != 0 {
            let low = NftEncoding.address(family: family, bytes: Array(info[minAt..<(minAt + addressLength)]))
            let high = NftEncoding.address(family: family, bytes: Array(info[maxAt..<(maxAt + addressLength)]))
            guard let low, low == high else {
                throw Failure("\(what) maps to an address range; the model has one address")
            }
            address = low
        }
        var ports: PortRange? = nil
        if flags & natProtoSpecified != 0 {
            let low = UInt16(info[protoAt]) << 8 | UInt16(info[protoAt + 1])
            let high = UInt16(info[protoAt + 2]) << 8 | UInt16(info[protoAt + 3])
            guard low <= high else { throw Failure("\(what) has a reversed port range \(low)-\(high)") }
            ports = PortRange(low, high)
        }
        return (flags, address, ports)
    }
}
