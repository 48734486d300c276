import WeirDiagnostics
import WeirModel

/// An nf_tables ruleset as the kernel holds it: tables of chains of rules (and sets), each rule a
/// program of expressions on registers. Both the batch writer and the kernel readback speak
/// this form; `NftLowering` builds it from the model and `NftLifting` turns it back.
public struct NftRuleset: Sendable, Equatable {
    public var tables: [NftTable]
    public init(tables: [NftTable] = []) { self.tables = tables }
}

public struct NftTable: Sendable, Equatable {
    public var family: Family
    public var name: String
    public var chains: [NftChain]
    /// The table's sets (named and anonymous), with their elements; rules refer to them by
    /// name from `LookupExpression`s. Weir's own lowering writes none.
    public var sets: [NftSet]
    public init(family: Family, name: String, chains: [NftChain] = [], sets: [NftSet] = []) {
        self.family = family
        self.name = name
        self.chains = chains
        self.sets = sets
    }
}

/// The kind of a base chain (`type filter|nat|route`).
public enum NftChainType: String, Sendable, Equatable {
    case filter, nat, route
}

/// What makes a chain a base chain: its hook, priority, type and policy.
public struct NftBaseChain: Sendable, Equatable {
    public var type: NftChainType
    public var hook: Hook
    public var priority: Int32
    public var policy: ChainPolicy
    public init(type: NftChainType, hook: Hook, priority: Int32, policy: ChainPolicy) {
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
    }
}

public struct NftChain: Sendable, Equatable {
    public var name: String
    /// Nil for a regular chain (entered by jump or goto).
    public var base: NftBaseChain?
    public var rules: [NftRule]
    public init(name: String, base: NftBaseChain? = nil, rules: [NftRule] = []) {
        self.name = name
        self.base = base
        self.rules = rules
    }
}

/// One rule: expressions run in order; a comparison that fails ends the rule.
/// `provenance` is not part of the rule's meaning and equality ignores it.
public struct NftRule: Sendable, Equatable {
    public var expressions: [any NftExpression]
    /// The rule comment (kept in the rule's user data, not as an expression).
    public var comment: String?
    public var provenance: SourceRange?

    public init(_ expressions: [any NftExpression], comment: String? = nil, provenance: SourceRange? = nil) {
        self.expressions = expressions
        self.comment = comment
        self.provenance = provenance
    }

    public static func == (lhs: NftRule, rhs: NftRule) -> Bool {
        lhs.comment == rhs.comment && lhs.expressions.count == rhs.expressions.count
            && zip(lhs.expressions, rhs.expressions).allSatisfy { $0.isEqual(to: $1) }
    }
}

/// One nf_tables expression. Each kind is a small type in its own file; the netlink layer
/// encodes each with its own extension.
public protocol NftExpression: Sendable, CustomStringConvertible {
    /// The kernel's name for the expression kind (`meta`, `cmp`, …).
    static var kind: String { get }
    /// Equality across the existential.
    func isEqual(to other: any NftExpression) -> Bool
}

extension NftExpression where Self: Equatable {
    public func isEqual(to other: any NftExpression) -> Bool {
        (other as? Self) == self
    }
}

/// A register. The kernel has the verdict register 0 and data registers addressed as 16-byte
/// `NFT_REG_1…4` (1…4) or 4-byte `NFT_REG32_00…15` (8…23); `reg 1` is `reg32 8`.
public struct NftRegister: Sendable, Hashable, CustomStringConvertible {
    /// The 4-byte index (8…23), or 0 for the verdict register.
    public let index32: UInt32

    /// Normalises either numbering.
    public init(kernel value: UInt32) {
        index32 = (1...4).contains(value) ? 8 + (value - 1) * 4 : value
    }

    public static let verdict = NftRegister(kernel: 0)
    public static let r1 = NftRegister(kernel: 1)
    public static let r2 = NftRegister(kernel: 2)

    /// The number to send: `NFT_REG_n` when 16-byte aligned, else `NFT_REG32_xx`.
    public var kernelValue: UInt32 {
        guard index32 >= 8 else { return index32 }  // the verdict register, or an invalid number kept as is
        return (index32 - 8) % 4 == 0 ? (index32 - 8) / 4 + 1 : index32
    }

    /// libnftnl's debug spelling (`reg 1`).
    public var description: String { String(kernelValue) }
}

extension Array where Element == UInt8 {
    /// libnftnl's debug spelling of data: 32-bit little-endian words in hex.
    var nftWords: String {
        stride(from: 0, to: count, by: 4).map { start in
            var word: UInt32 = 0
            for i in (start..<Swift.min(start + 4, count)).reversed() { word = word << 8 | UInt32(self[i]) }
            return "0x" + String(repeating: "0", count: 8 - String(word, radix: 16).count) + String(word, radix: 16)
        }.joined(separator: " ")
    }
}
