/// `range OP reg FROM TO`: whether a register lies in an inclusive range.
public struct RangeExpression: NftExpression, Equatable {
    public static let kind = "range"
    public enum Operator: UInt32, Sendable { case eq = 0, neq = 1 }
    public var op: Operator
    public var source: NftRegister
    public var from: [UInt8]
    public var to: [UInt8]
    public init(_ op: Operator, from: [UInt8], to: [UInt8], source: NftRegister = .r1) {
        self.op = op
        self.from = from
        self.to = to
        self.source = source
    }
    public var description: String { "[ range \(op == .eq ? "eq" : "neq") reg \(source) \(from.nftWords) \(to.nftWords) ]" }
}
