import CNftnl
import WeirNftables

extension BitwiseExpression: NetlinkExpression {
    /// `NFTNL_EXPR_BITWISE_SREG`
    static let sourceAttribute = UInt16(NFTNL_EXPR_BITWISE_SREG)
    /// `NFTNL_EXPR_BITWISE_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_BITWISE_DREG)
    /// `NFTNL_EXPR_BITWISE_LEN`
    static let lengthAttribute = UInt16(NFTNL_EXPR_BITWISE_LEN)
    /// `NFTNL_EXPR_BITWISE_MASK`
    static let maskAttribute = UInt16(NFTNL_EXPR_BITWISE_MASK)
    /// `NFTNL_EXPR_BITWISE_XOR`
    static let xorAttribute = UInt16(NFTNL_EXPR_BITWISE_XOR)
    /// `NFTNL_EXPR_BITWISE_OP` (`NFT_BITWISE_BOOL` = 0 is mask-and-xor; shifts have no program form)
    static let operationAttribute = UInt16(NFTNL_EXPR_BITWISE_OP)
    /// `NFTNL_EXPR_BITWISE_DATA` (shift amount)
    static let shiftAttribute = UInt16(NFTNL_EXPR_BITWISE_DATA)

    static var nftnlNames: [String] { ["bitwise"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        try ExpressionCodec.checkValue(mask, "bitwise mask")
        try ExpressionCodec.checkValue(xor, "bitwise xor")
        guard mask.count == xor.count else {
            throw ExpressionEncodingError(message: "bitwise mask (\(mask.count) bytes) and xor (\(xor.count) bytes) differ in length")
        }
        e.set(Self.sourceAttribute, source)
        e.set(Self.destinationAttribute, destination)
        e.set(Self.lengthAttribute, length)
        e.set(Self.maskAttribute, mask)
        e.set(Self.xorAttribute, xor)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> BitwiseExpression {
        // The kernel reports the operation even when it is the default mask-and-xor.
        if let op = e.u32(operationAttribute), op != 0 { throw Unrepresentable(reason: "bitwise shift (op \(op)) has no program form") }
        try ExpressionCodec.requireUnset(e, [(shiftAttribute, "a shift amount")])
        let mask = try ExpressionCodec.require(e.data(maskAttribute), e, "a mask")
        let xor = try ExpressionCodec.require(e.data(xorAttribute), e, "an xor value")
        let length = try ExpressionCodec.require(e.u32(lengthAttribute), e, "a length")
        guard mask.count == Int(length), xor.count == Int(length) else {
            throw Unrepresentable(reason: "bitwise len \(length) with a \(mask.count)-byte mask and a \(xor.count)-byte xor has no program form")
        }
        return BitwiseExpression(mask: mask, xor: xor,
                                 source: try ExpressionCodec.require(e.register(sourceAttribute), e, "a source register"),
                                 destination: try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register"))
    }
}
