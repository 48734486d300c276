import CNftnl
import WeirNftables

extension PayloadExpression: NetlinkExpression {
    /// `NFTNL_EXPR_PAYLOAD_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_PAYLOAD_DREG)
    /// `NFTNL_EXPR_PAYLOAD_BASE`
    static let baseAttribute = UInt16(NFTNL_EXPR_PAYLOAD_BASE)
    /// `NFTNL_EXPR_PAYLOAD_OFFSET`
    static let offsetAttribute = UInt16(NFTNL_EXPR_PAYLOAD_OFFSET)
    /// `NFTNL_EXPR_PAYLOAD_LEN`
    static let lengthAttribute = UInt16(NFTNL_EXPR_PAYLOAD_LEN)
    /// `NFTNL_EXPR_PAYLOAD_SREG` (a payload write)
    static let sourceAttribute = UInt16(NFTNL_EXPR_PAYLOAD_SREG)
    /// `NFTNL_EXPR_PAYLOAD_CSUM_TYPE`
    static let checksumTypeAttribute = UInt16(NFTNL_EXPR_PAYLOAD_CSUM_TYPE)
    /// `NFTNL_EXPR_PAYLOAD_CSUM_OFFSET`
    static let checksumOffsetAttribute = UInt16(NFTNL_EXPR_PAYLOAD_CSUM_OFFSET)
    /// `NFTNL_EXPR_PAYLOAD_FLAGS`
    static let flagsAttribute = UInt16(NFTNL_EXPR_PAYLOAD_FLAGS)

    static var nftnlNames: [String] { ["payload"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.destinationAttribute, destination)
        e.set(Self.baseAttribute, base.rawValue)
        e.set(Self.offsetAttribute, offset)
        e.set(Self.lengthAttribute, length)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> PayloadExpression {
        try ExpressionCodec.requireUnset(e, [(sourceAttribute, "a source register (payload write)")])
        for attr in [checksumTypeAttribute, checksumOffsetAttribute, flagsAttribute] where (e.u32(attr) ?? 0) != 0 {
            throw Unrepresentable(reason: "payload with checksum update has no program form")
        }
        let rawBase = try ExpressionCodec.require(e.u32(baseAttribute), e, "a base")
        guard let base = Base(rawValue: rawBase) else { throw Unrepresentable(reason: "payload base \(rawBase) has no program form") }
        return PayloadExpression(base, offset: try ExpressionCodec.require(e.u32(offsetAttribute), e, "an offset"),
                                 length: try ExpressionCodec.require(e.u32(lengthAttribute), e, "a length"),
                                 into: try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register"))
    }
}
