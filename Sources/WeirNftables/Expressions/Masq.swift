/// `masq [proto_min reg …]`: source NAT to the out interface's address.
public struct MasqExpression: NftExpression, Equatable {
    public static let kind = "masq"
    public var protoMin: NftRegister?
    public var protoMax: NftRegister?
    public init(protoMin: NftRegister? = nil, protoMax: NftRegister? = nil) {
        self.protoMin = protoMin
        self.protoMax = protoMax
    }
    public var description: String {
        var out = "[ masq"
        if let protoMin { out += " proto_min reg \(protoMin)" }
        if let protoMax { out += " proto_max reg \(protoMax)" }
        if !flags.isEmpty { out += " flags 0x\(String(flags.rawValue, radix: 16))" }
        return out + " ]"
    }
}
