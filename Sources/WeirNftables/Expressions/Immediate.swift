/// `immediate reg DATA` or a verdict (`accept`, `drop`, `jump -> CHAIN`, …) into register 0.
public struct ImmediateExpression: NftExpression, Equatable {
    public static let kind = "immediate"
    public enum Verdict: Sendable, Equatable {
        case accept, drop, `continue`, `return`
        case jump(String)
        case goto(String)

        /// The kernel's verdict code.
        public var code: Int32 {
            switch self {
            case .drop: 0
            case .accept: 1
            case .continue: -1
            case .jump: -3
            case .goto: -4
            case .return: -5
            }
        }
        public var chain: String? {
            switch self { case .jump(let c), .goto(let c): c; default: nil }
        }
    }
    public enum Value: Sendable, Equatable {
        case data([UInt8])
        case verdict(Verdict)
    }
    public var destination: NftRegister
    public var value: Value
    public init(_ value: Value, into destination: NftRegister) {
        self.value = value
        self.destination = destination
    }
    public static func verdict(_ verdict: Verdict) -> ImmediateExpression { ImmediateExpression(.verdict(verdict), into: .verdict) }

    public var description: String {
        switch value {
        case .data(let bytes): "[ immediate reg \(destination) \(bytes.nftWords) ]"
        case .verdict(let v):
            switch v {
            case .accept: "[ immediate reg 0 accept ]"
            case .drop: "[ immediate reg 0 drop ]"
            case .continue: "[ immediate reg 0 continue ]"
            case .return: "[ immediate reg 0 return ]"
            case .jump(let c): "[ immediate reg 0 jump -> \(c) ]"
            case .goto(let c): "[ immediate reg 0 goto -> \(c) ]"
            }
        }
    }
}
