import CNftnl
import WeirNftables

extension MasqExpression: NetlinkExpression {
    /// `NFTNL_EXPR_MASQ_FLAGS` (`NF_NAT_RANGE_*`)
    static let flagsAttribute = UInt16(NFTNL_EXPR_MASQ_FLAGS)
    /// `NFTNL_EXPR_MASQ_REG_PROTO_MIN`
    static let protoMinAttribute = UInt16(NFTNL_EXPR_MASQ_REG_PROTO_MIN)
    /// `NFTNL_EXPR_MASQ_REG_PROTO_MAX`
    static let protoMaxAttribute = UInt16(NFTNL_EXPR_MASQ_REG_PROTO_MAX)

    static var nftnlNames: [String] { ["masq"] }

    /// The flags a masq of this shape carries: `NF_NAT_RANGE_PROTO_SPECIFIED` with port
    /// registers (the kernel ignores the ports without it; nft sends the same), else none.
    var netlinkFlags: UInt32 { protoMin != nil ? NatExpression.Flags.protoSpecified.rawValue : 0 }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        if let protoMin { e.set(Self.protoMinAttribute, protoMin) }
        if let protoMax { e.set(Self.protoMaxAttribute, protoMax) }
        // The kernel reports flags only when they are not 0; sending none keeps that symmetric.
        if netlinkFlags != 0 { e.set(Self.flagsAttribute, netlinkFlags) }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> MasqExpression {
        let masq = MasqExpression(protoMin: e.register(protoMinAttribute), protoMax: e.register(protoMaxAttribute))
        // The program form's flags follow from its registers; anything else (random,
        // persistent, ports without PROTO_SPECIFIED) cannot be held.
        let flags = e.u32(flagsAttribute) ?? 0
        guard flags == masq.netlinkFlags else {
            throw Unrepresentable(reason: "masq with flags 0x\(String(flags, radix: 16))\(masq.protoMin == nil ? "" : " and port registers") has no program form")
        }
        return masq
    }
}
