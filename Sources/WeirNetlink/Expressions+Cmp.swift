import CNftnl
import WeirNftables

extension CmpExpression: NetlinkExpression {
    /// `NFTNL_EXPR_CMP_SREG`
    static let sourceAttribute = UInt16(NFTNL_EXPR_CMP_SREG)
    /// `NFTNL_EXPR_CMP_OP`
    static let operatorAttribute = UInt16(NFTNL_EXPR_CMP_OP)
    /// `NFTNL_EXPR_CMP_DATA`
    static let dataAttribute = UInt16(NFTNL_EXPR_CMP_DATA)

    static var nftnlNames: [String] { ["cmp"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        try ExpressionCodec.checkValue(data, "cmp data")
        e.set(Self.sourceAttribute, source)
        e.set(Self.operatorAttribute, op.rawValue)
        e.set(Self.dataAttribute, data)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> CmpExpression {
        let rawOp = try ExpressionCodec.require(e.u32(operatorAttribute), e, "an operator")
        guard let op = Operator(rawValue: rawOp) else { throw Unrepresentable(reason: "cmp operator \(rawOp) has no program form") }
        return CmpExpression(op, try ExpressionCodec.require(e.data(dataAttribute), e, "data"),
                             source: try ExpressionCodec.require(e.register(sourceAttribute), e, "a source register"))
    }
}
