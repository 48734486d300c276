import CNftnl
import WeirNftables

extension XtablesExpression: NetlinkExpression {
    /// `NFTNL_EXPR_MT_NAME`
    static let matchNameAttribute = UInt16(NFTNL_EXPR_MT_NAME)
    /// `NFTNL_EXPR_MT_REV`
    static let matchRevisionAttribute = UInt16(NFTNL_EXPR_MT_REV)
    /// `NFTNL_EXPR_MT_INFO`
    static let matchInfoAttribute = UInt16(NFTNL_EXPR_MT_INFO)
    /// `NFTNL_EXPR_TG_NAME`
    static let targetNameAttribute = UInt16(NFTNL_EXPR_TG_NAME)
    /// `NFTNL_EXPR_TG_REV`
    static let targetRevisionAttribute = UInt16(NFTNL_EXPR_TG_REV)
    /// `NFTNL_EXPR_TG_INFO`
    static let targetInfoAttribute = UInt16(NFTNL_EXPR_TG_INFO)

    static var nftnlNames: [String] { ["match", "target"] }
    var nftnlName: String { role == .match ? "match" : "target" }

    private static func attributes(_ role: Role) -> (name: UInt16, revision: UInt16, info: UInt16) {
        role == .match ? (matchNameAttribute, matchRevisionAttribute, matchInfoAttribute)
            : (targetNameAttribute, targetRevisionAttribute, targetInfoAttribute)
    }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        // libnftnl keeps the name in a 29-byte buffer and cuts longer ones silently.
        try ExpressionCodec.checkString(name, "the x_tables extension name '\(name)'", maxBytes: NF.xtNameMaxLength - 1)
        guard info.count <= 0xFFFF - 64 else {
            throw ExpressionEncodingError(message: "x_tables \(name) info of \(info.count) bytes does not fit a netlink attribute")
        }
        let attrs = Self.attributes(role)
        e.set(attrs.name, name)
        e.set(attrs.revision, revision)
        // libnftnl 1.2.4 keeps the info pointer it is given and frees it: hand it a malloc'ed copy.
        guard e.set(attrs.info, handingOver: info) else {
            throw ExpressionEncodingError(message: "could not allocate \(info.count) bytes for the x_tables info")
        }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> XtablesExpression {
        let role: Role = e.name == "match" ? .match : .target
        let attrs = attributes(role)
        return XtablesExpression(role, name: try ExpressionCodec.require(e.string(attrs.name), e, "a name"),
                                 revision: e.u32(attrs.revision) ?? 0, info: e.data(attrs.info) ?? [])
    }
}
