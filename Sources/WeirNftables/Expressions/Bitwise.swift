/// `bitwise reg = (reg & MASK) ^ XOR`.
public struct BitwiseExpression: NftExpression, Equatable {
    public static let kind = "bitwise"
    public var source: NftRegister
    public var destination: NftRegister
    public var mask: [UInt8]
    public var xor: [UInt8]
    public init(mask: [UInt8], xor: [UInt8]? = nil, source: NftRegister = .r1, destination: NftRegister = .r1) {
        self.mask = mask
        self.xor = xor ?? [UInt8](repeating: 0, count: mask.count)
        self.source = source
        self.destination = destination
    }
    public var length: UInt32 { UInt32(mask.count) }
    public var description: String { "[ bitwise reg \(destination) = ( reg \(source) & \(mask.nftWords) ) ^ \(xor.nftWords) ]" }
}
