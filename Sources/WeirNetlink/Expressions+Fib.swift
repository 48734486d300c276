import CNftnl
import WeirNftables

extension FibExpression: NetlinkExpression {
    /// `NFTNL_EXPR_FIB_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_FIB_DREG)
    /// `NFTNL_EXPR_FIB_RESULT`
    static let resultAttribute = UInt16(NFTNL_EXPR_FIB_RESULT)
    /// `NFTNL_EXPR_FIB_FLAGS`
    static let flagsAttribute = UInt16(NFTNL_EXPR_FIB_FLAGS)

    static var nftnlNames: [String] { ["fib"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.destinationAttribute, destination)
        e.set(Self.resultAttribute, result.rawValue)
        e.set(Self.flagsAttribute, flags.rawValue)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> FibExpression {
        let raw = try ExpressionCodec.require(e.u32(resultAttribute), e, "a result")
        guard let result = Result(rawValue: raw) else { throw Unrepresentable(reason: "fib result \(raw) has no program form") }
        return FibExpression(flags: Flags(rawValue: try ExpressionCodec.require(e.u32(flagsAttribute), e, "flags")), result: result,
                             into: try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register"))
    }
}
