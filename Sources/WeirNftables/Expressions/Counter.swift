/// `counter`: counts packets and bytes. It does not change a rule's meaning.
public struct CounterExpression: NftExpression, Equatable {
    public static let kind = "counter"
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
    public var description: String { "[ counter pkts \(packets) bytes \(bytes) ]" }
}
