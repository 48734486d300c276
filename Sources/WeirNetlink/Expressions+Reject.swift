import CNftnl
import WeirNftables

extension RejectExpression: NetlinkExpression {
    /// `NFTNL_EXPR_REJECT_TYPE`
    static let typeAttribute = UInt16(NFTNL_EXPR_REJECT_TYPE)
    /// `NFTNL_EXPR_REJECT_CODE`
    static let codeAttribute = UInt16(NFTNL_EXPR_REJECT_CODE)

    static var nftnlNames: [String] { ["reject"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.typeAttribute, type.rawValue)
        // Like nft: the code only for the ICMP kinds (the kernel ignores and never reports it
        // for a TCP reset).
        if type != .tcpReset { e.set(Self.codeAttribute, u8: code) }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> RejectExpression {
        let raw = try ExpressionCodec.require(e.u32(typeAttribute), e, "a type")
        guard let type = RejectType(rawValue: raw) else { throw Unrepresentable(reason: "reject type \(raw) has no program form") }
        return RejectExpression(type, code: e.u8(codeAttribute) ?? 0)
    }
}
