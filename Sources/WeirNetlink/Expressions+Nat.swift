import CNftnl
import WeirModel
import WeirNftables

extension NatExpression: NetlinkExpression {
    /// `NFTNL_EXPR_NAT_TYPE`
    static let typeAttribute = UInt16(NFTNL_EXPR_NAT_TYPE)
    /// `NFTNL_EXPR_NAT_FAMILY`
    static let familyAttribute = UInt16(NFTNL_EXPR_NAT_FAMILY)
    /// `NFTNL_EXPR_NAT_REG_ADDR_MIN`
    static let addressMinAttribute = UInt16(NFTNL_EXPR_NAT_REG_ADDR_MIN)
    /// `NFTNL_EXPR_NAT_REG_ADDR_MAX`
    static let addressMaxAttribute = UInt16(NFTNL_EXPR_NAT_REG_ADDR_MAX)
    /// `NFTNL_EXPR_NAT_REG_PROTO_MIN`
    static let protoMinAttribute = UInt16(NFTNL_EXPR_NAT_REG_PROTO_MIN)
    /// `NFTNL_EXPR_NAT_REG_PROTO_MAX`
    static let protoMaxAttribute = UInt16(NFTNL_EXPR_NAT_REG_PROTO_MAX)
    /// `NFTNL_EXPR_NAT_FLAGS`
    static let flagsAttribute = UInt16(NFTNL_EXPR_NAT_FLAGS)

    static var nftnlNames: [String] { ["nat"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.typeAttribute, type.rawValue)
        e.set(Self.familyAttribute, family.nfproto)
        if let addressMin { e.set(Self.addressMinAttribute, addressMin) }
        if let addressMax { e.set(Self.addressMaxAttribute, addressMax) }
        if let protoMin { e.set(Self.protoMinAttribute, protoMin) }
        if let protoMax { e.set(Self.protoMaxAttribute, protoMax) }
        // The kernel reports flags only when they are not 0; sending none keeps that symmetric.
        if !flags.isEmpty { e.set(Self.flagsAttribute, flags.rawValue) }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> NatExpression {
        let rawType = try ExpressionCodec.require(e.u32(typeAttribute), e, "a type")
        guard let type = NatType(rawValue: rawType) else { throw Unrepresentable(reason: "nat type \(rawType) has no program form") }
        let rawFamily = try ExpressionCodec.require(e.u32(familyAttribute), e, "a family")
        guard let family = Family(nfproto: rawFamily) else { throw Unrepresentable(reason: "nat family \(rawFamily) has no program form") }
        return NatExpression(type, family: family, addressMin: e.register(addressMinAttribute), addressMax: e.register(addressMaxAttribute),
                             protoMin: e.register(protoMinAttribute), protoMax: e.register(protoMaxAttribute),
                             flags: Flags(rawValue: e.u32(flagsAttribute) ?? 0))
    }
}

extension Family {
    /// `NFPROTO_IPV4` / `NFPROTO_IPV6`.
    var nfproto: UInt32 { self == .ipv4 ? NF.familyIPv4 : NF.familyIPv6 }

    init?(nfproto: UInt32) {
        switch nfproto {
        case NF.familyIPv4: self = .ipv4
        case NF.familyIPv6: self = .ipv6
        default: return nil
        }
    }
}
