import CNftnl
import WeirNftables

extension LookupExpression: NetlinkExpression {
    /// `NFTNL_EXPR_LOOKUP_SREG`
    static let sourceAttribute = UInt16(NFTNL_EXPR_LOOKUP_SREG)
    /// `NFTNL_EXPR_LOOKUP_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_LOOKUP_DREG)
    /// `NFTNL_EXPR_LOOKUP_SET`
    static let setAttribute = UInt16(NFTNL_EXPR_LOOKUP_SET)
    /// `NFTNL_EXPR_LOOKUP_SET_ID`
    static let setIDAttribute = UInt16(NFTNL_EXPR_LOOKUP_SET_ID)
    /// `NFTNL_EXPR_LOOKUP_FLAGS` (`NFT_LOOKUP_F_INV` is the only flag)
    static let flagsAttribute = UInt16(NFTNL_EXPR_LOOKUP_FLAGS)
    /// `NFT_LOOKUP_F_INV`
    static let invertFlag = UInt32(NFT_LOOKUP_F_INV.rawValue)

    static var nftnlNames: [String] { ["lookup"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        guard !set.isEmpty else { throw ExpressionEncodingError(message: "a lookup without a set name") }
        try ExpressionCodec.checkString(set, "the set name '\(set)'", maxBytes: NF.nameMaxLength - 1)
        e.set(Self.setAttribute, set)
        e.set(Self.sourceAttribute, source)
        if let destination { e.set(Self.destinationAttribute, destination) }
        if let setID { e.set(Self.setIDAttribute, setID) }
        // Always sent, as the kernel always reports it (nft leaves out a 0): the program form
        // then reads back unchanged.
        e.set(Self.flagsAttribute, flags)
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> LookupExpression {
        let flags = e.u32(flagsAttribute) ?? 0
        guard flags & ~invertFlag == 0 else {
            throw Unrepresentable(reason: "lookup with flags 0x\(String(flags, radix: 16)) has no program form")
        }
        return LookupExpression(set: try ExpressionCodec.require(e.string(setAttribute), e, "a set name"),
                                source: try ExpressionCodec.require(e.register(sourceAttribute), e, "a source register"),
                                destination: e.register(destinationAttribute), invert: flags & invertFlag != 0,
                                setID: e.u32(setIDAttribute))
    }
}
