import CNftnl
import WeirNftables

extension RangeExpression: NetlinkExpression {
    /// `NFTNL_EXPR_RANGE_SREG`
    static let sourceAttribute = UInt16(NFTNL_EXPR_RANGE_SREG)
    /// `NFTNL_EXPR_RANGE_OP`
    static let operatorAttribute = UInt16(NFTNL_EXPR_RANGE_OP)
    /// `NFTNL_EXPR_RANGE_FROM_DATA`
    static let fromAttribute = UInt16(NFTNL_EXPR_RANGE_FROM_DATA)
    /// `NFTNL_EXPR_RANGE_TO_DATA`
    static let toAttribute = UInt16(NFTNL_EXPR_RANGE_TO_DATA)

    static var nftnlNames: [String] { ["range"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        try ExpressionCodec.checkValue(from, "range start")
        try ExpressionCodec.checkValue(to, "range end")
        e.set(Self.sourceAttribute, source)
        e.set(Self.operatorAttribute, op.rawValue)
        e.set(Self.fromAttribute, from)
        e.set(Self.toAttribute, to)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> RangeExpression {
        let rawOp = try ExpressionCodec.require(e.u32(operatorAttribute), e, "an operator")
        guard let op = Operator(rawValue: rawOp) else { throw Unrepresentable(reason: "range operator \(rawOp) has no program form") }
        return RangeExpression(op, from: try ExpressionCodec.require(e.data(fromAttribute), e, "a start"),
                               to: try ExpressionCodec.require(e.data(toAttribute), e, "an end"),
                               source: try ExpressionCodec.require(e.register(sourceAttribute), e, "a source register"))
    }
}
