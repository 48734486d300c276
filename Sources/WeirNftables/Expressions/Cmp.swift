/// `cmp OP reg DATA`: compares a register with constant bytes; a false comparison ends the rule.
public struct CmpExpression: NftExpression, Equatable {
    public static let kind = "cmp"
    public enum Operator: UInt32, Sendable {
        case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5
        var name: String { ["eq", "neq", "lt", "lte", "gt", "gte"][Int(rawValue)] }
    }
    public var op: Operator
    public var source: NftRegister
    public var data: [UInt8]
    public init(_ op: Operator, _ data: [UInt8], source: NftRegister = .r1) {
        self.op = op
        self.data = data
        self.source = source
    }
    public var description: String { "[ cmp \(op.name) reg \(source) \(data.nftWords) ]" }
}
