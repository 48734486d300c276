import CNftnl
import WeirNftables

extension CounterExpression: NetlinkExpression {
    /// `NFTNL_EXPR_CTR_PACKETS`
    static let packetsAttribute = UInt16(NFTNL_EXPR_CTR_PACKETS)
    /// `NFTNL_EXPR_CTR_BYTES`
    static let bytesAttribute = UInt16(NFTNL_EXPR_CTR_BYTES)

    static var nftnlNames: [String] { ["counter"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        // Like nft: starting values only when not 0 (the kernel starts from 0 without them).
        if packets != 0 { e.set(Self.packetsAttribute, u64: packets) }
        if bytes != 0 { e.set(Self.bytesAttribute, u64: bytes) }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> CounterExpression {
        CounterExpression(packets: e.u64(packetsAttribute) ?? 0, bytes: e.u64(bytesAttribute) ?? 0)
    }
}
