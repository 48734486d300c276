/// Why a batch cannot be built from a program, or why bytes are not a Weir batch. Decoding
/// fails with this before anything could be sent; `offset` names the byte where the problem is.
public struct NftBatchError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// No bytes at all.
        case empty
        /// The bytes stop inside a message.
        case truncated
        /// A message length that is too short or not a multiple of 4.
        case badLength
        /// A netlink type that is not BATCH_BEGIN/END or a NEWTABLE/DELTABLE/NEWCHAIN/NEWSET/
        /// NEWSETELEM/NEWRULE.
        case unknownType
        /// A message of another netfilter subsystem than nf_tables.
        case wrongSubsystem
        /// The first message is not BATCH_BEGIN, or BATCH_BEGIN appears again.
        case missingBegin
        /// The bytes end without BATCH_END (an unfinished batch).
        case missingEnd
        /// Bytes after BATCH_END.
        case trailingBytes
        /// Sequence numbers that do not increase.
        case sequence
        /// Malformed attributes inside a message.
        case malformedAttributes
        /// Message flags other than the ones a Weir batch uses.
        case flags
        /// Messages out of the order of a Weir replace batch.
        case order
        /// A message whose content libnftnl cannot parse, or with values the program form lacks.
        case content
        /// A program value that cannot be encoded faithfully.
        case unencodable
    }

    public var kind: Kind
    /// The byte offset in the batch of the message (or attribute) at fault; nil when building.
    public var offset: Int?
    /// What is wrong, in words.
    public var message: String

    public init(_ kind: Kind, offset: Int?, _ message: String) {
        self.kind = kind
        self.offset = offset
        self.message = message
    }

    public var description: String {
        if let offset { return "batch byte \(offset): \(message)" }
        return message
    }
}
