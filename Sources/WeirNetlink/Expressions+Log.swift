import CNftnl
import WeirNftables

extension LogExpression: NetlinkExpression {
    /// `NFTNL_EXPR_LOG_PREFIX`
    static let prefixAttribute = UInt16(NFTNL_EXPR_LOG_PREFIX)
    /// `NFTNL_EXPR_LOG_LEVEL`
    static let levelAttribute = UInt16(NFTNL_EXPR_LOG_LEVEL)
    /// `NFTNL_EXPR_LOG_GROUP` (nflog; not in the program form)
    static let groupAttribute = UInt16(NFTNL_EXPR_LOG_GROUP)
    /// `NFTNL_EXPR_LOG_SNAPLEN`
    static let snaplenAttribute = UInt16(NFTNL_EXPR_LOG_SNAPLEN)
    /// `NFTNL_EXPR_LOG_QTHRESHOLD`
    static let queueThresholdAttribute = UInt16(NFTNL_EXPR_LOG_QTHRESHOLD)
    /// `NFTNL_EXPR_LOG_FLAGS`
    static let flagsAttribute = UInt16(NFTNL_EXPR_LOG_FLAGS)

    static var nftnlNames: [String] { ["log"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        if let prefix {
            // NF_LOG_PREFIXLEN is 128 with the NUL.
            try ExpressionCodec.checkString(prefix, "the log prefix", maxBytes: 127)
            e.set(Self.prefixAttribute, prefix)
        }
        if let level { e.set(Self.levelAttribute, level) }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> LogExpression {
        try ExpressionCodec.requireUnset(e, [(groupAttribute, "a group (nflog)"), (snaplenAttribute, "a snaplen"),
                                             (queueThresholdAttribute, "a queue threshold")])
        if let flags = e.u32(flagsAttribute), flags != 0 {
            throw Unrepresentable(reason: "log with flags 0x\(String(flags, radix: 16)) has no program form")
        }
        return LogExpression(prefix: e.string(prefixAttribute), level: e.u32(levelAttribute))
    }
}
