import CNftnl
import WeirNftables

extension MetaExpression: NetlinkExpression {
    /// `NFTNL_EXPR_META_KEY`
    static let keyAttribute = UInt16(NFTNL_EXPR_META_KEY)
    /// `NFTNL_EXPR_META_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_META_DREG)
    /// `NFTNL_EXPR_META_SREG` (`meta set`, not in the program form)
    static let sourceAttribute = UInt16(NFTNL_EXPR_META_SREG)

    static var nftnlNames: [String] { ["meta"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.keyAttribute, key.rawValue)
        e.set(Self.destinationAttribute, destination)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> MetaExpression {
        try ExpressionCodec.requireUnset(e, [(sourceAttribute, "a source register (meta set)")])
        let raw = try ExpressionCodec.require(e.u32(keyAttribute), e, "a key")
        guard let key = Key(rawValue: raw) else { throw Unrepresentable(reason: "meta key \(raw) has no program form") }
        return MetaExpression(key, into: try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register"))
    }
}
