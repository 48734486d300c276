/// `payload load LEN @ BASE + OFFSET => reg`: bytes of a header.
public struct PayloadExpression: NftExpression, Equatable {
    public static let kind = "payload"
    public enum Base: UInt32, Sendable {
        case link = 0, network = 1, transport = 2
        var name: String { ["link", "network", "transport"][Int(rawValue)] }
    }
    public var base: Base
    public var offset: UInt32
    public var length: UInt32
    public var destination: NftRegister
    public init(_ base: Base, offset: UInt32, length: UInt32, into destination: NftRegister = .r1) {
        self.base = base
        self.offset = offset
        self.length = length
        self.destination = destination
    }
    public var description: String { "[ payload load \(length)b @ \(base.name) header + \(offset) => reg \(destination) ]" }
}
