import WeirModel

/// `nat snat|dnat FAMILY addr_min reg … proto_min reg …`: address and port translation.
public struct NatExpression: NftExpression, Equatable {
    public static let kind = "nat"
    public enum NatType: UInt32, Sendable { case snat = 0, dnat = 1 }
    /// `NF_NAT_RANGE_*` flags.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let mapIPs = Flags(rawValue: 1)
        public static let protoSpecified = Flags(rawValue: 2)
    }
    public var type: NatType
    public var family: Family
    public var addressMin: NftRegister?
    public var addressMax: NftRegister?
    public var protoMin: NftRegister?
    public var protoMax: NftRegister?
    public var flags: Flags
    public init(_ type: NatType, family: Family, addressMin: NftRegister?, addressMax: NftRegister?, protoMin: NftRegister?, protoMax: NftRegister?, flags: Flags) {
        self.type = type
        self.family = family
        self.addressMin = addressMin
        self.addressMax = addressMax
        self.protoMin = protoMin
        self.protoMax = protoMax
        self.flags = flags
    }
    public var description: String {
        var out = "[ nat \(type == .snat ? "snat" : "dnat") \(family.rawValue)"
        if let addressMin { out += " addr_min reg \(addressMin)" }
        if let addressMax { out += " addr_max reg \(addressMax)" }
        if let protoMin { out += " proto_min reg \(protoMin)" }
        if let protoMax { out += " proto_max reg \(protoMax)" }
        if !flags.isEmpty { out += " flags 0x\(String(flags.rawValue, radix: 16))" }
        return out + " ]"
    }
}
