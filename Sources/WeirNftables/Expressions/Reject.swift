/// `reject type T code C`: drop and answer with an ICMP error or a TCP reset.
public struct RejectExpression: NftExpression, Equatable {
    public static let kind = "reject"
    /// `NFT_REJECT_*`.
    public enum RejectType: UInt32, Sendable { case icmpUnreachable = 0, tcpReset = 1, icmpxUnreachable = 2 }
    public var type: RejectType
    public var code: UInt8
    public init(_ type: RejectType, code: UInt8 = 0) {
        self.type = type
        self.code = code
    }
    public var description: String { "[ reject type \(type.rawValue) code \(code) ]" }
}
