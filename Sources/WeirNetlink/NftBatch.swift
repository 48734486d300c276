import WeirDiagnostics
import WeirModel
import WeirNftables

/// One nf_tables transaction as netlink bytes: `BATCH_BEGIN`, the messages, `BATCH_END`.
///
/// A batch is always finished: the only ways to get one are `replacing(_:)` (through
/// `NftBatchBuilder.finish()`) and `init(decoding:)`, which rejects unfinished or damaged bytes.
/// Sequence numbers start at 1 and increase by one per message, so the same program always
/// gives the same bytes. `messages` maps every sequence number back to what it touches.
public struct NftBatch: Sendable, Equatable {
    /// The netlink stream, ready for one `sendmsg`.
    public let bytes: [UInt8]
    /// One entry per message, in stream order.
    public let messages: [Message]
    /// The program the batch installs (for a built batch, the value given, provenance and all,
    /// with each lookup's set id filled in).
    public let program: NftRuleset
    /// Where the 4-byte big-endian `NFNL_BATCH_GENID` value of `BATCH_BEGIN` sits, if present.
    let generationOffset: Int?

    init(bytes: [UInt8], messages: [Message], program: NftRuleset, generationOffset: Int?) {
        self.bytes = bytes
        self.messages = messages
        self.program = program
        self.generationOffset = generationOffset
    }

    /// What one message of a batch does.
    public struct Message: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable, Equatable {
            case batchBegin = "BATCH_BEGIN"
            case newTable = "NEWTABLE"
            case deleteTable = "DELTABLE"
            case newChain = "NEWCHAIN"
            case newSet = "NEWSET"
            case newSetElement = "NEWSETELEM"
            case newRule = "NEWRULE"
            case batchEnd = "BATCH_END"
        }
        public var seq: UInt32
        public var kind: Kind
        /// `nlmsg_flags`.
        public var flags: UInt16
        public var family: Family?
        public var table: String?
        public var chain: String?
        /// The rule's position in its chain (0-based), for `NEWRULE`.
        public var ruleIndex: Int?
        /// The set a `NEWSET` creates or a `NEWSETELEM` adds elements to.
        public var set: String?
        /// For `NEWSETELEM`: the positions (0-based) in the set's `elements` of the elements the
        /// message carries.
        public var elements: Range<Int>?
        /// Where the message starts in `bytes`, and its length.
        public var offset: Int
        public var length: Int
        /// Positions in `program`, for finding the rule (and its provenance).
        var tableIndex: Int?
        var chainIndex: Int?
        var setIndex: Int?

        /// `NEWRULE ip weir FORWARD rule #3`, `NEWSET ip weir-nat __map0`,
        /// `NEWSETELEM ip weir-nat __map0 elements 0…999`
        public var description: String {
            var text = kind.rawValue
            if let family { text += " \(family.rawValue)" }
            if let table { text += " \(table)" }
            if let chain { text += " \(chain)" }
            if let set { text += " \(set)" }
            if let ruleIndex { text += " rule #\(ruleIndex)" }
            if let elements { text += " elements \(Message.describe(elements))" }
            return text
        }

        /// `0…999`; `3` for one element; `none` for none.
        static func describe(_ range: Range<Int>) -> String {
            switch range.count {
            case 0: "none"
            case 1: "\(range.lowerBound)"
            default: "\(range.lowerBound)…\(range.upperBound - 1)"
            }
        }
    }

    /// The message with sequence number `seq`.
    public func message(seq: UInt32) -> Message? {
        var low = 0, high = messages.count - 1
        while low <= high {
            let mid = (low + high) / 2
            if messages[mid].seq == seq { return messages[mid] }
            if messages[mid].seq < seq { low = mid + 1 } else { high = mid - 1 }
        }
        return nil
    }

    /// The program rule a `NEWRULE` message creates.
    public func rule(for message: Message) -> NftRule? {
        guard let t = message.tableIndex, let c = message.chainIndex, let r = message.ruleIndex,
              t < program.tables.count, c < program.tables[t].chains.count, r < program.tables[t].chains[c].rules.count else { return nil }
        return program.tables[t].chains[c].rules[r]
    }

    /// The program set a `NEWSET` creates or a `NEWSETELEM` fills.
    public func set(for message: Message) -> NftSet? {
        guard message.kind == .newSet || message.kind == .newSetElement, let t = message.tableIndex, let s = message.setIndex,
              t < program.tables.count, s < program.tables[t].sets.count else { return nil }
        return program.tables[t].sets[s]
    }

    /// Where what a message writes comes from: the rule's provenance for `NEWRULE`, the set's
    /// for `NEWSET` and `NEWSETELEM`, nil for the other messages (and programs without it).
    public func provenance(for message: Message) -> SourceRange? {
        switch message.kind {
        case .newRule: rule(for: message)?.provenance
        case .newSet, .newSetElement: set(for: message)?.provenance
        default: nil
        }
    }

    /// A batch that replaces, in one transaction, each table of `program` (and nothing else):
    /// per table `NEWTABLE` (create: ensure it exists), `DELTABLE`, `NEWTABLE` (create|excl),
    /// then its chains (base chains with hook, priority, type and policy), its sets (each a
    /// `NEWSET` with transaction id = its position + 1, then its elements in `NEWSETELEM`
    /// messages of at most 1000 elements), and its rules (`NLM_F_CREATE|NLM_F_APPEND`,
    /// comments as `NFTNL_UDATA_RULE_COMMENT` user data). A lookup must name a set of its
    /// table, and carries that set's transaction id (filled in when nil, so `program` holds
    /// it too). What the kernel would refuse or the encoding cannot hold — a set or element
    /// that does not fit its set's definition, a jump to a chain the table lacks, a lookup of
    /// a missing set or with another id — is refused (`.unencodable`); see `NftBatchBuilder`.
    public static func replacing(_ program: NftRuleset) throws(NftBatchError) -> NftBatch {
        var seen = Set<String>()
        for table in program.tables where !seen.insert("\(table.family.rawValue) \(table.name)").inserted {
            throw NftBatchError(.unencodable, offset: nil, "table \(table.family.rawValue) \(table.name) appears twice in the program")
        }
        var builder = NftBatchBuilder()
        for table in program.tables { try builder.replace(table) }
        return builder.finish()
    }

    /// Equal when the bytes are.
    public static func == (lhs: NftBatch, rhs: NftBatch) -> Bool { lhs.bytes == rhs.bytes }
}
