import CNftnl
import WeirNftables

extension CtExpression: NetlinkExpression {
    /// `NFTNL_EXPR_CT_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_CT_DREG)
    /// `NFTNL_EXPR_CT_KEY`
    static let keyAttribute = UInt16(NFTNL_EXPR_CT_KEY)
    /// `NFTNL_EXPR_CT_DIR` (original/reply; not in the program form)
    static let directionAttribute = UInt16(NFTNL_EXPR_CT_DIR)
    /// `NFTNL_EXPR_CT_SREG` (`ct set`; not in the program form)
    static let sourceAttribute = UInt16(NFTNL_EXPR_CT_SREG)

    static var nftnlNames: [String] { ["ct"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.keyAttribute, key.rawValue)
        e.set(Self.destinationAttribute, destination)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> CtExpression {
        try ExpressionCodec.requireUnset(e, [(directionAttribute, "a direction"), (sourceAttribute, "a source register (ct set)")])
        let raw = try ExpressionCodec.require(e.u32(keyAttribute), e, "a key")
        guard let key = Key(rawValue: raw) else { throw Unrepresentable(reason: "ct key \(raw) has no program form") }
        return CtExpression(key, into: try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register"))
    }
}
