import Testing
import WeirDiagnostics
import WeirModel
import WeirTestFixtures
import WeirNftables

/// Builders for hand-made programs: native expressions, and x_tables blobs written from the C
/// structs (independently of `NftXtables`) in x86_64 host byte order.
enum NftBuild {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func put(_ bytes: [UInt8], at offset: Int, in blob: inout [UInt8]) {
        for (i, b) in bytes.enumerated() { blob[offset + i] = b }
    }
    /// An interface name as iptables-nft compares it: strlen + 1 bytes.
    static func name8(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    static func name16(_ text: String) -> [UInt8] { Array(text.utf8) + [UInt8](repeating: 0, count: 16 - text.utf8.count) }

    static func meta(_ key: MetaExpression.Key, _ reg: UInt32 = 1) -> MetaExpression { MetaExpression(key, into: NftRegister(kernel: reg)) }
    static func cmp(_ op: CmpExpression.Operator, _ data: [UInt8], _ reg: UInt32 = 1) -> CmpExpression { CmpExpression(op, data, source: NftRegister(kernel: reg)) }
    static func payload(_ base: PayloadExpression.Base, _ offset: UInt32, _ length: UInt32, _ reg: UInt32 = 1) -> PayloadExpression {
        PayloadExpression(base, offset: offset, length: length, into: NftRegister(kernel: reg))
    }
    static let counter = CounterExpression(packets: 12, bytes: 3400)
    static func verdict(_ v: ImmediateExpression.Verdict) -> ImmediateExpression { .verdict(v) }

    // MARK: xt blobs

    /// `struct xt_conntrack_mtinfo3` (168 bytes with XT_ALIGN).
    static func conntrack(states: UInt16, matchFlags: UInt16 = 1, invert: UInt16 = 0) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 168)
        put(le16(matchFlags), at: 146, in: &blob)
        put(le16(invert), at: 148, in: &blob)
        put(le16(states), at: 150, in: &blob)
        return XtablesExpression(.match, name: "conntrack", revision: 3, info: blob)
    }
    /// `struct xt_addrtype_info_v1 { u16 source, dest; u32 flags; }`.
    static func addrtype(source: UInt16 = 0, dest: UInt16 = 0, flags: UInt32 = 0) -> XtablesExpression {
        XtablesExpression(.match, name: "addrtype", revision: 1, info: le16(source) + le16(dest) + le32(flags))
    }
    /// `char comment[256]`.
    static func comment(_ text: String) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 256)
        put(Array(text.utf8), at: 0, in: &blob)
        return XtablesExpression(.match, name: "comment", revision: 0, info: blob)
    }
    /// `struct xt_tcp { u16 spts[2], dpts[2]; u8 option, flg_mask, flg_cmp, invflags; }`.
    static func tcp(sports: (UInt16, UInt16) = (0, 65535), dports: (UInt16, UInt16) = (0, 65535), invert: UInt8 = 0, option: UInt8 = 0) -> XtablesExpression {
        XtablesExpression(.match, name: "tcp", revision: 0,
                          info: le16(sports.0) + le16(sports.1) + le16(dports.0) + le16(dports.1) + [option, 0, 0, invert])
    }
    /// `struct xt_udp { u16 spts[2], dpts[2]; u8 invflags, padding; }` + XT_ALIGN padding.
    static func udp(sports: (UInt16, UInt16) = (0, 65535), dports: (UInt16, UInt16) = (0, 65535), invert: UInt8 = 0) -> XtablesExpression {
        XtablesExpression(.match, name: "udp", revision: 0,
                          info: le16(sports.0) + le16(sports.1) + le16(dports.0) + le16(dports.1) + [invert, 0, 0, 0])
    }
    /// `struct nf_nat_ipv4_multi_range_compat` (24 bytes): rangesize, then one
    /// `nf_nat_ipv4_range { u32 flags; be32 min_ip, max_ip; be16 min, max; }`.
    static func masqueradeV4(flags: UInt32 = 0, ports: (UInt16, UInt16) = (0, 0), rangesize: UInt32 = 1) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 24)
        put(le32(rangesize), at: 0, in: &blob)
        put(le32(flags), at: 4, in: &blob)
        put(be16(ports.0) + be16(ports.1), at: 16, in: &blob)
        return XtablesExpression(.target, name: "MASQUERADE", revision: 0, info: blob)
    }
    /// `struct nf_nat_range` (40 bytes): flags, min_addr[16], max_addr[16], be16 min_proto, max_proto.
    static func masqueradeV6(flags: UInt32 = 0, ports: (UInt16, UInt16) = (0, 0)) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 40)
        put(le32(flags), at: 0, in: &blob)
        put(be16(ports.0) + be16(ports.1), at: 36, in: &blob)
        return XtablesExpression(.target, name: "MASQUERADE", revision: 0, info: blob)
    }
    /// `struct nf_nat_range2` (48 bytes with XT_ALIGN): nf_nat_range + be16 base_proto.
    static func nat(_ name: String, flags: UInt32, min: [UInt8], max: [UInt8]? = nil, ports: (UInt16, UInt16) = (0, 0), base: UInt16 = 0) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 48)
        put(le32(flags), at: 0, in: &blob)
        put(min, at: 4, in: &blob)
        put(max ?? min, at: 20, in: &blob)
        put(be16(ports.0) + be16(ports.1) + be16(base), at: 36, in: &blob)
        return XtablesExpression(.target, name: name, revision: 2, info: blob)
    }
    /// `struct ipt_reject_info { enum ipt_reject_with with; }` (+ padding).
    static func reject(_ with: UInt32) -> XtablesExpression {
        XtablesExpression(.target, name: "REJECT", revision: 0, info: le32(with) + [0, 0, 0, 0])
    }
    /// `struct xt_log_info { u8 level, logflags; char prefix[30]; }`.
    static func log(level: UInt8, flags: UInt8 = 0, prefix: String) -> XtablesExpression {
        var blob = [UInt8](repeating: 0, count: 32)
        blob[0] = level
        blob[1] = flags
        put(Array(prefix.utf8), at: 2, in: &blob)
        return XtablesExpression(.target, name: "LOG", revision: 0, info: blob)
    }

    /// Docker S1 as iptables-nft 1.8.9 stores it (netlink note §2.2): interfaces compared with
    /// strlen + 1 bytes, l4proto before addresses, xt blobs for conntrack, addrtype, MASQUERADE and
    /// DNAT, a counter in every rule, and iptables-nft's own table names.
    static var dockerS1IptablesNft: NftRuleset {
        let d0 = name8("docker0")
        func base(_ hook: Hook, _ prio: Int32, _ type: NftChainType, _ policy: ChainPolicy = .accept, _ rules: [NftRule] = []) -> NftChain {
            NftChain(name: hook.rawValue, base: NftBaseChain(type: type, hook: hook, priority: prio, policy: policy), rules: rules)
        }
        func rule(_ e: [any NftExpression]) -> NftRule { NftRule(e) }
        let filter = NftTable(family: .ipv4, name: "filter", chains: [
            base(.input, 0, .filter),
            base(.forward, 0, .filter, .drop, [
                rule([counter, verdict(.jump("DOCKER-USER"))]),
                rule([counter, verdict(.jump("DOCKER-ISOLATION-STAGE-1"))]),
                rule([meta(.oifname), cmp(.eq, d0), conntrack(states: 0x6), counter, verdict(.accept)]),
                rule([meta(.oifname), cmp(.eq, d0), counter, verdict(.jump("DOCKER"))]),
                rule([meta(.iifname), cmp(.eq, d0), meta(.oifname), cmp(.neq, d0), counter, verdict(.accept)]),
                rule([meta(.iifname), cmp(.eq, d0), meta(.oifname), cmp(.eq, d0), counter, verdict(.accept)]),
            ]),
            base(.output, 0, .filter),
            NftChain(name: "DOCKER", rules: [
                rule([meta(.iifname), cmp(.neq, d0), meta(.oifname), cmp(.eq, d0), meta(.l4proto), cmp(.eq, [6]),
                      payload(.network, 16, 4), cmp(.eq, [172, 17, 0, 2]), payload(.transport, 2, 2), cmp(.eq, be16(80)),
                      counter, verdict(.accept)]),
            ]),
            NftChain(name: "DOCKER-ISOLATION-STAGE-1", rules: [
                rule([meta(.iifname), cmp(.eq, d0), meta(.oifname), cmp(.neq, d0), counter, verdict(.jump("DOCKER-ISOLATION-STAGE-2"))]),
                rule([counter, verdict(.return)]),
            ]),
            NftChain(name: "DOCKER-ISOLATION-STAGE-2", rules: [
                rule([meta(.oifname), cmp(.eq, d0), counter, verdict(.drop)]),
                rule([counter, verdict(.return)]),
            ]),
            NftChain(name: "DOCKER-USER", rules: [rule([counter, verdict(.return)])]),
        ])
        let nat = NftTable(family: .ipv4, name: "nat", chains: [
            base(.prerouting, -100, .nat, .accept, [rule([addrtype(dest: 1 << 2), counter, verdict(.jump("DOCKER"))])]),
            base(.input, 100, .nat),
            base(.output, -100, .nat, .accept, [
                rule([payload(.network, 16, 1), cmp(.neq, [127]), addrtype(dest: 1 << 2), counter, verdict(.jump("DOCKER"))]),
            ]),
            base(.postrouting, 100, .nat, .accept, [
                rule([meta(.oifname), cmp(.neq, d0), payload(.network, 12, 2), cmp(.eq, [172, 17]), counter, masqueradeV4()]),
                rule([meta(.l4proto), cmp(.eq, [6]), payload(.network, 12, 4), cmp(.eq, [172, 17, 0, 2]),
                      payload(.network, 16, 4), cmp(.eq, [172, 17, 0, 2]), payload(.transport, 2, 2), cmp(.eq, be16(80)), counter, masqueradeV4()]),
            ]),
            NftChain(name: "DOCKER", rules: [
                rule([meta(.iifname), cmp(.eq, d0), counter, verdict(.return)]),
                rule([meta(.iifname), cmp(.neq, d0), meta(.l4proto), cmp(.eq, [6]), payload(.transport, 2, 2), cmp(.eq, be16(10080)),
                      counter, nat("DNAT", flags: 3, min: [172, 17, 0, 2], ports: (80, 80))]),
            ]),
        ])
        return NftRuleset(tables: [filter, nat])
    }
}

/// `NftLifting`: every equivalent encoding, iptables-nft's xt blobs, and explicit errors.
@Suite struct NftLiftingTests {
    typealias B = NftBuild
    typealias N = NftFixtures
    static let docker0 = N.iface("docker0")

    static func lift(_ expressions: [any NftExpression], comment: String? = nil, family: Family = .ipv4) -> Rule? {
        switch NftLifting.lift(NftRule(expressions, comment: comment), family: family) {
        case .success(let rule): return rule
        case .failure(let failure):
            Issue.record("lifting failed: \(failure)")
            return nil
        }
    }

    static func failure(_ expressions: [any NftExpression], family: Family = .ipv4) -> String? {
        switch NftLifting.lift(NftRule(expressions), family: family) {
        case .success(let rule):
            Issue.record("lifted to \(rule), expected an error")
            return nil
        case .failure(let failure): return failure.message
        }
    }

    @Test func iptablesNftDockerProgramLiftsToTheImportedModel() {
        let (lifted, diagnostics) = NftLifting.lift(B.dockerS1IptablesNft)
        #expect(diagnostics.map(\.description) == [])
        #expect(lifted == N.F.dockerS1)
    }

    @Test func interfaceEncodings() {
        let accept = B.verdict(.accept)
        let exact = Rule([.inInterface(Self.docker0)], .accept)
        #expect(Self.lift([B.meta(.iifname), B.cmp(.eq, B.name8("docker0")), accept]) == exact)
        #expect(Self.lift([B.meta(.iifname), B.cmp(.eq, B.name16("docker0")), accept]) == exact)
        #expect(Self.lift([B.meta(.iifname), B.cmp(.eq, Array("docker0".utf8) + [0, 0, 0]), accept]) == exact)
        #expect(Self.lift([B.meta(.oifname), B.cmp(.neq, Array("docker".utf8)), accept]) == Rule([.outInterface(N.iface("docker+"), negated: true)], .accept))
        #expect(Self.lift([B.meta(.iifname), B.cmp(.eq, Array("veth12345678901".utf8) + [0]), accept]) == Rule([.inInterface(N.iface("veth12345678901"))], .accept))
        #expect(Self.failure([B.meta(.iifname), B.cmp(.eq, Array("eth0".utf8) + [0, 65]), accept])?.contains("neither an exact name nor a prefix") == true)
        #expect(Self.failure([B.meta(.iifname), B.cmp(.gt, B.name16("eth0")), accept])?.contains("'gt' compare of meta iifname") == true)
    }

    @Test(arguments: [Family.ipv4, Family.ipv6])
    func prefixEncodings(family: Family) {
        let v4 = family == .ipv4
        let accept = B.verdict(.accept)
        let src: UInt32 = v4 ? 12 : 8
        let width: UInt32 = v4 ? 4 : 16
        let net = N.p(v4 ? "172.16.0.0/16" : "fd00:1::/32")
        let bytes = NftEncoding.addressBytes(net.address)
        let expected = Rule([.address(.source, net)], .accept)
        // Short load of the whole bytes.
        #expect(Self.lift([B.payload(.network, src, width / 2 == 8 ? 4 : 2), B.cmp(.eq, Array(bytes.prefix(v4 ? 2 : 4))), accept], family: family) == expected)
        // Full load + bitwise mask (what nft writes for unaligned prefixes; also valid for aligned ones).
        let mask = NftEncoding.prefixMask(length: net.length, byteCount: Int(width))
        #expect(Self.lift([B.payload(.network, src, width), BitwiseExpression(mask: mask), B.cmp(.eq, bytes), accept], family: family) == expected)
        // Unaligned, negated, destination.
        let odd = N.p(v4 ? "10.16.0.0/12" : "fd00::/12")
        let dst: UInt32 = v4 ? 16 : 24
        #expect(Self.lift([B.payload(.network, dst, width), BitwiseExpression(mask: NftEncoding.prefixMask(length: 12, byteCount: Int(width))),
                           B.cmp(.neq, NftEncoding.addressBytes(odd.address)), accept], family: family)
            == Rule([.address(.destination, odd, negated: true)], .accept))
        // A mask that is not a prefix, and bits outside the mask, are errors.
        var holey = mask
        holey[holey.count - 1] = 0xff
        #expect(Self.failure([B.payload(.network, src, width), BitwiseExpression(mask: holey), B.cmp(.eq, bytes), accept], family: family)?
            .contains("is not a prefix") == true)
        var outside = bytes
        outside[outside.count - 1] = 1
        #expect(Self.failure([B.payload(.network, src, width), BitwiseExpression(mask: mask), B.cmp(.eq, outside), accept], family: family)?
            .contains("outside its mask") == true)
        #expect(Self.failure([B.payload(.network, src + 1, 1), B.cmp(.eq, [1]), accept], family: family)?.contains("not an \(family.rawValue) address") == true)
    }

    @Test func portEncodings() {
        let tcp: [any NftExpression] = [B.meta(.l4proto), B.cmp(.eq, [6])]
        let dport = B.payload(.transport, 2, 2)
        let accept = B.verdict(.accept)
        let range = Rule([.protocol(.tcp), .port(.destination, PortRange(8000, 8080))], .accept)
        // iptables-nft: range eq; nft 1.0.6: cmp gte + cmp lte.
        #expect(Self.lift(tcp + [dport, RangeExpression(.eq, from: B.be16(8000), to: B.be16(8080)), accept]) == range)
        #expect(Self.lift(tcp + [dport, B.cmp(.gte, B.be16(8000)), B.cmp(.lte, B.be16(8080)), accept]) == range)
        #expect(Self.lift(tcp + [dport, B.cmp(.lte, B.be16(8080)), B.cmp(.gte, B.be16(8000)), accept]) == range)
        #expect(Self.lift(tcp + [dport, B.cmp(.gt, B.be16(7999)), B.cmp(.lt, B.be16(8081)), accept]) == range)
        #expect(Self.lift(tcp + [dport, B.cmp(.gte, B.be16(1024)), accept]) == Rule([.protocol(.tcp), .port(.destination, PortRange(1024, 65535))], .accept))
        #expect(Self.lift(tcp + [B.payload(.transport, 0, 2), RangeExpression(.neq, from: B.be16(1), to: B.be16(2)), dport, B.cmp(.neq, B.be16(80)), accept])
            == Rule([.protocol(.tcp), .port(.source, PortRange(1, 2), negated: true), .port(.destination, PortRange(80), negated: true)], .accept))
        // Bounds on two loads stay two matches.
        #expect(Self.lift(tcp + [dport, B.cmp(.gte, B.be16(10)), B.payload(.transport, 0, 2), B.cmp(.lte, B.be16(20)), accept])
            == Rule([.protocol(.tcp), .port(.destination, PortRange(10, 65535)), .port(.source, PortRange(0, 20))], .accept))
        #expect(Self.failure(tcp + [dport, B.cmp(.gte, B.be16(9000)), B.cmp(.lte, B.be16(8000)), accept])?.contains("match nothing") == true)
        // A port needs a port protocol before it (nft's bare `th dport` does not say which).
        #expect(Self.failure([dport, B.cmp(.eq, B.be16(80)), accept])?.contains("without a tcp, udp or sctp protocol match") == true)
        #expect(Self.failure([B.meta(.l4proto), B.cmp(.neq, [6]), dport, B.cmp(.eq, B.be16(80)), accept])?.contains("without a tcp") == true)
        // `ip protocol` is the IPv4 protocol too.
        #expect(Self.lift([B.payload(.network, 9, 1), B.cmp(.eq, [17]), dport, B.cmp(.eq, B.be16(53)), accept])
            == Rule([.protocol(.udp), .port(.destination, PortRange(53))], .accept))
    }

    @Test func stateEncodings() {
        let accept = B.verdict(.accept)
        let ct = CtExpression(.state)
        func masked(_ m: UInt32) -> BitwiseExpression { BitwiseExpression(mask: B.le32(m)) }
        #expect(Self.lift([ct, masked(6), B.cmp(.neq, B.le32(0)), accept]) == Rule([.conntrackState([.related, .established])], .accept))
        #expect(Self.lift([ct, masked(0x48), B.cmp(.eq, B.le32(0)), accept]) == Rule([.conntrackState([.new, .untracked], negated: true)], .accept))
        // nft's `ct state != established` and `ct state established` without a mask.
        #expect(Self.lift([ct, B.cmp(.neq, B.le32(2)), accept]) == Rule([.conntrackState([.established], negated: true)], .accept))
        #expect(Self.lift([ct, B.cmp(.eq, B.le32(8)), accept]) == Rule([.conntrackState([.new])], .accept))
        #expect(Self.lift([ct, masked(1), B.cmp(.eq, B.le32(1)), accept]) == Rule([.conntrackState([.invalid])], .accept))
        // nft 1.0.6 writes `ct state != established,related` as `cmp neq 6`: always true, no state set.
        #expect(Self.failure([ct, B.cmp(.neq, B.le32(6)), accept])?.contains("not a state set") == true)
        #expect(Self.failure([ct, masked(0x80), B.cmp(.neq, B.le32(0)), accept])?.contains("are not conntrack states") == true)
    }

    @Test func guardsCountersAndRegisters() {
        let accept = B.verdict(.accept)
        let rule = Rule([.protocol(.tcp)], .accept)
        // inet-style nfproto guard, meta protocol guard, counters anywhere.
        #expect(Self.lift([B.meta(.nfproto), B.cmp(.eq, [2]), B.counter, B.meta(.l4proto), B.cmp(.eq, [6]), B.counter, accept, B.counter]) == rule)
        #expect(Self.lift([B.meta(.protocol), B.cmp(.eq, [0x86, 0xdd]), B.meta(.l4proto), B.cmp(.eq, [6]), accept], family: .ipv6) == rule)
        #expect(Self.failure([B.meta(.nfproto), B.cmp(.eq, [10]), accept])?.contains("nfproto guard that no ip packet passes") == true)
        // NFT_REG32 numbering: reg32 9 is the second word of reg 1; reg32 8 is reg 1.
        #expect(NftRegister(kernel: 8) == NftRegister.r1)
        #expect(Self.lift([B.meta(.l4proto, 9), B.cmp(.eq, [6], 9), accept]) == rule)
        #expect(Self.lift([B.meta(.l4proto, 8), B.cmp(.eq, [6], 1), accept]) == rule)
        // A 16-byte load fills reg 1's four words; writing one of them clobbers it.
        #expect(Self.failure([B.meta(.iifname), ImmediateExpression(.data([1, 2]), into: NftRegister(kernel: 10)), B.cmp(.eq, B.name16("eth0")), accept])?
            .contains("reads register 1, which holds nothing") == true)
        // Loads into other registers leave it alone.
        #expect(Self.lift([B.meta(.iifname), B.meta(.l4proto, 2), B.cmp(.eq, [6], 2), B.cmp(.eq, B.name16("eth0")), accept])
            == Rule([.inInterface(N.iface("eth0")), .protocol(.tcp)], .accept))
    }

    @Test func nativeTargets() {
        let tcp: [any NftExpression] = [B.meta(.l4proto), B.cmp(.eq, [6])]
        // nft's own NAT shape: no addr_max, no map-ips flag (the kernel adds them on readback).
        let dnat = NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: .r2, protoMax: nil, flags: .protoSpecified)
        #expect(Self.lift(tcp + [ImmediateExpression(.data([172, 17, 0, 2]), into: .r1), ImmediateExpression(.data(B.be16(80)), into: .r2), dnat])
            == Rule([.protocol(.tcp)], .dnat(NATDestination(address: N.ip("172.17.0.2"), ports: PortRange(80)))))
        let masq = MasqExpression(protoMin: NftRegister(kernel: 1), protoMax: NftRegister(kernel: 2))
        #expect(Self.lift(tcp + [ImmediateExpression(.data(B.be16(1024)), into: .r1), ImmediateExpression(.data(B.be16(2048)), into: .r2), masq])
            == Rule([.protocol(.tcp)], .masquerade(ports: PortRange(1024, 2048))))
        #expect(Self.lift([RejectExpression(.icmpxUnreachable, code: 3)]) == Rule([], .reject(with: "icmp-admin-prohibited")))
        #expect(Self.lift([RejectExpression(.icmpxUnreachable, code: 1)], family: .ipv6) == Rule([], .reject(with: nil)))
        #expect(Self.lift([RejectExpression(.icmpUnreachable, code: 3)]) == Rule([], .reject(with: nil)))
        #expect(Self.lift([LogExpression(prefix: "x", level: 4)]) == Rule([], .log(prefix: "x", level: nil)))
        #expect(Self.lift([LogExpression(prefix: "", level: nil)]) == Rule([], .log(prefix: nil, level: nil)))
        #expect(Self.lift([B.verdict(.accept)], comment: "hi") == Rule([.comment("hi")], .accept))

        #expect(Self.failure([RejectExpression(.icmpUnreachable, code: 12)])?.contains("has no ip REJECT type") == true)
        #expect(Self.failure([B.verdict(.continue)])?.contains("verdict continue") == true)
        #expect(Self.failure([B.meta(.l4proto), B.cmp(.eq, [6])]) == "the rule has no verdict or action; the model needs one")
        #expect(Self.failure([LogExpression(prefix: nil, level: nil), B.verdict(.accept)]) == "expression 2 [ immediate reg 0 accept ]: a second action; the model has one per rule")
        #expect(Self.failure([B.verdict(.accept), B.meta(.l4proto)])?.contains("comes after the rule's action") == true)
        #expect(Self.failure([ImmediateExpression(.data([1, 2, 3, 4]), into: .r1),
                              NatExpression(.snat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: NatExpression.Flags(rawValue: 4))])?
            .contains("NAT flags 0x4") == true)
        #expect(Self.failure([ImmediateExpression(.data([1, 2, 3, 4]), into: .r1), ImmediateExpression(.data([1, 2, 3, 9]), into: .r2),
                              NatExpression(.snat, family: .ipv4, addressMin: .r1, addressMax: .r2, protoMin: nil, protoMax: nil, flags: .mapIPs)])?
            .contains("address range") == true)
        #expect(Self.failure([B.payload(.network, 16, 4),
                              NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: .mapIPs)])?
            .contains("holds a packet value, not a constant") == true)
        #expect(Self.failure([ImmediateExpression(.data([1, 2, 3, 4]), into: .r1),
                              NatExpression(.dnat, family: .ipv6, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: .mapIPs)])?
            .contains("ip6 NAT in an ip table") == true)
    }

    /// An expression kind the lifter does not know (the netlink reader may add types).
    struct Lookup: NftExpression, Equatable {
        static let kind = "lookup"
        var description: String { "[ lookup reg 1 set __set0 ]" }
    }

    @Test func unknownExpressionsAreExplicitErrors() {
        let program = NftRuleset(tables: [NftTable(family: .ipv4, name: "weir-filter", chains: [
            NftChain(name: "INPUT", base: NftBaseChain(type: .filter, hook: .input, priority: 0, policy: .drop), rules: [
                NftRule([B.verdict(.accept)]),
                NftRule([B.payload(.transport, 2, 2), Lookup(), B.verdict(.accept)]),
            ]),
        ])])
        let (ruleset, diagnostics) = NftLifting.lift(program)
        #expect(diagnostics.map(\.description) == [
            "error: table ip weir-filter, chain INPUT, rule 2: expression 2 [ lookup reg 1 set __set0 ]: the 'lookup' expression has no meaning in the model",
        ])
        #expect(ruleset == Ruleset(tables: [Table(family: .ipv4, name: "filter", chains: [
            Chain(name: "INPUT", kind: .base(hook: .input, priority: 0, policy: .drop), rules: [Rule([], .accept)]),
        ])]))
    }

    @Test func tableNames() {
        func table(_ name: String, _ family: Family = .ipv4) -> NftTable {
            NftTable(family: family, name: name, chains: [NftChain(name: "C", rules: [NftRule([B.verdict(.drop)])])])
        }
        let (ruleset, diagnostics) = NftLifting.lift(NftRuleset(tables: [
            table("weir-filter"), table("nat"), table("weir-filter", .ipv6), table("other"), table("filter"),
        ]))
        #expect(ruleset.tables.map { "\($0.family.rawValue) \($0.name)" } == ["ip filter", "ip nat", "ip other", "ip6 filter"])
        #expect(diagnostics.map(\.description) == ["error: tables ip weir-filter and ip filter both lift to table 'filter'; keeping the first"])
    }

    // MARK: x_tables blobs

    @Test func conntrackBlobs() {
        let accept = B.verdict(.accept)
        #expect(Self.lift([B.conntrack(states: 0x6), accept]) == Rule([.conntrackState([.related, .established])], .accept))
        // UNTRACKED is bit 8 in xt_conntrack (0x40 in nft).
        #expect(Self.lift([B.conntrack(states: 0x108), accept]) == Rule([.conntrackState([.new, .untracked])], .accept))
        #expect(Self.lift([B.conntrack(states: 0x1, invert: 1), accept]) == Rule([.conntrackState([.invalid], negated: true)], .accept))
        // `-m state --state NEW` is conntrack with STATE_ALIAS.
        #expect(Self.lift([B.conntrack(states: 0x8, matchFlags: 0x2001), accept]) == Rule([.conntrackState([.new])], .accept))
        #expect(Self.failure([B.conntrack(states: 0x40), accept])?.contains("states 0x40 (SNAT, DNAT, …)") == true)
        #expect(Self.failure([B.conntrack(states: 0x2, matchFlags: 0x3), accept])?.contains("matches more than --ctstate") == true)
        #expect(Self.failure([XtablesExpression(.match, name: "conntrack", revision: 3, info: [0, 1]), accept])?
            .contains("has 2 bytes of info; expected at least 152") == true)
        #expect(Self.failure([XtablesExpression(.match, name: "conntrack", revision: 2, info: []), accept])?
            .contains("x_tables match 'conntrack' rev 2 is not supported") == true)
    }

    @Test func addrtypeAndCommentBlobs() {
        let jump = B.verdict(.jump("DOCKER"))
        #expect(Self.lift([B.addrtype(dest: 1 << 2), jump]) == Rule([.addressType(.destination, .local)], .jump("DOCKER")))
        #expect(Self.lift([B.addrtype(source: 1 << 1, dest: 1 << 5, flags: 1), jump])
            == Rule([.addressType(.source, .unicast, negated: true), .addressType(.destination, .multicast)], .jump("DOCKER")))
        #expect(Self.lift([B.addrtype(dest: 1 << 2, flags: 2), jump]) == Rule([.addressType(.destination, .local, negated: true)], .jump("DOCKER")))
        #expect(Self.failure([B.addrtype(dest: 1 << 2, flags: 4), jump])?.contains("--limit-iface-in/out") == true)
        #expect(Self.failure([B.addrtype(dest: 0b110), jump])?.contains("several address types") == true)
        // rev 0: u16 source, dest; u32 invert_source, invert_dest.
        let rev0 = XtablesExpression(.match, name: "addrtype", revision: 0, info: B.le16(0) + B.le16(1 << 2) + B.le32(0) + B.le32(1))
        #expect(Self.lift([rev0, jump]) == Rule([.addressType(.destination, .local, negated: true)], .jump("DOCKER")))
        // A comment blob keeps its place among the other matches.
        #expect(Self.lift([B.comment("no ssh"), B.conntrack(states: 8), jump]) == Rule([.comment("no ssh"), .conntrackState([.new])], .jump("DOCKER")))
    }

    @Test func portBlobs() {
        let accept = B.verdict(.accept)
        let tcp: [any NftExpression] = [B.meta(.l4proto), B.cmp(.eq, [6])]
        let udp: [any NftExpression] = [B.meta(.l4proto), B.cmp(.eq, [17])]
        #expect(Self.lift(tcp + [B.tcp(dports: (80, 80)), accept]) == Rule([.protocol(.tcp), .port(.destination, PortRange(80))], .accept))
        #expect(Self.lift(tcp + [B.tcp(sports: (1, 1024), dports: (22, 22), invert: 2), accept])
            == Rule([.protocol(.tcp), .port(.source, PortRange(1, 1024)), .port(.destination, PortRange(22), negated: true)], .accept))
        #expect(Self.lift(tcp + [B.tcp(), accept]) == Rule([.protocol(.tcp), .port(.destination, PortRange(0, 65535))], .accept))
        #expect(Self.lift(udp + [B.udp(sports: (53, 53), invert: 1), accept]) == Rule([.protocol(.udp), .port(.source, PortRange(53), negated: true)], .accept))
        #expect(Self.failure(tcp + [B.tcp(option: 2), accept])?.contains("TCP flags or options") == true)
        #expect(Self.failure(udp + [B.tcp(dports: (80, 80)), accept])?.contains("without a preceding 'tcp' protocol match") == true)
    }

    @Test func targetBlobs() {
        let tcp: [any NftExpression] = [B.meta(.l4proto), B.cmp(.eq, [6])]
        #expect(Self.lift([B.masqueradeV4()]) == Rule([], .masquerade(ports: nil)))
        #expect(Self.lift(tcp + [B.masqueradeV4(flags: 2, ports: (1024, 65535))]) == Rule([.protocol(.tcp)], .masquerade(ports: PortRange(1024, 65535))))
        #expect(Self.lift(tcp + [B.masqueradeV6(flags: 2, ports: (7, 7))], family: .ipv6) == Rule([.protocol(.tcp)], .masquerade(ports: PortRange(7))))
        #expect(Self.failure([B.masqueradeV4(flags: 4)])?.contains("NAT flags 0x4") == true)
        #expect(Self.failure([B.masqueradeV4(rangesize: 2)])?.contains("has 2 ranges") == true)

        #expect(Self.lift([B.nat("SNAT", flags: 1, min: [10, 0, 3, 121])]) == Rule([], .snat(NATDestination(address: N.ip("10.0.3.121")))))
        let v6 = NftEncoding.addressBytes(N.ip("fd00:db8:1::2"))
        #expect(Self.lift(tcp + [B.nat("DNAT", flags: 3, min: v6, ports: (6000, 6010))], family: .ipv6)
            == Rule([.protocol(.tcp)], .dnat(NATDestination(address: N.ip("fd00:db8:1::2"), ports: PortRange(6000, 6010)))))
        #expect(Self.failure([B.nat("DNAT", flags: 1, min: [10, 0, 0, 1], max: [10, 0, 0, 9])])?.contains("address range") == true)
        #expect(Self.failure([B.nat("DNAT", flags: 2, min: [], ports: (80, 80))])?.contains("has no address") == true)
        #expect(Self.failure([B.nat("DNAT", flags: 3, min: [10, 0, 0, 1], ports: (80, 80), base: 80)])?.contains("base port") == true)
        #expect(Self.failure([B.nat("DNAT", flags: 0x11, min: [10, 0, 0, 1])])?.contains("NAT flags 0x11") == true)

        let v4Reject: [(UInt32, String?)] = [(0, "icmp-net-unreachable"), (1, "icmp-host-unreachable"), (2, "icmp-proto-unreachable"), (3, nil),
                                             (5, "icmp-net-prohibited"), (6, "icmp-host-prohibited"), (8, "icmp-admin-prohibited")]
        for (with, name) in v4Reject { #expect(Self.lift([B.reject(with)]) == Rule([], .reject(with: name)), "\(with)") }
        #expect(Self.lift(tcp + [B.reject(7)]) == Rule([.protocol(.tcp)], .reject(with: "tcp-reset")))
        #expect(Self.failure([B.reject(4)])?.contains("rejects with type 4") == true)
        let v6Reject: [(UInt32, String?)] = [(0, "icmp6-no-route"), (1, "icmp6-adm-prohibited"), (3, "icmp6-addr-unreachable"), (4, nil),
                                             (6, "tcp-reset"), (7, "icmp6-policy-fail"), (8, "icmp6-reject-route")]
        for (with, name) in v6Reject { #expect(Self.lift([B.reject(with)], family: .ipv6) == Rule([], .reject(with: name)), "\(with)") }

        #expect(Self.lift([B.log(level: 4, prefix: "dk: ")]) == Rule([], .log(prefix: "dk: ", level: nil)))
        #expect(Self.lift([B.log(level: 6, prefix: "")]) == Rule([], .log(prefix: nil, level: 6)))
        #expect(Self.lift([B.log(level: 0, prefix: String(repeating: "p", count: 29))]) == Rule([], .log(prefix: String(repeating: "p", count: 29), level: 0)))
        #expect(Self.failure([B.log(level: 4, flags: 1, prefix: "")])?.contains("log flags 0x1") == true)
        #expect(Self.lift([B.meta(.l4proto), B.cmp(.eq, [132]), XtablesExpression(.target, name: "CHECKSUM", revision: 0, info: [1, 0, 0, 0, 0, 0, 0, 0])])
            == Rule([.protocol(.sctp)], .checksumFill))
        #expect(Self.failure([XtablesExpression(.target, name: "MARK", revision: 2, info: [])]) ==
            "expression 1 [ target name MARK rev 2 ]: x_tables target 'MARK' rev 2 is not supported")
    }
}
