import CNftnl
import WeirModel
import WeirNftables

/// Builds an `NftBatch` message by message. It starts with `BATCH_BEGIN` and `finish()` ends
/// it with `BATCH_END`; being non-copyable and consumed by `finish()`, a builder yields at most
/// one batch, and a batch cannot exist unfinished.
public struct NftBatchBuilder: ~Copyable {
    private let buffer = MessageBuffer()
    private var messages: [NftBatch.Message] = []
    private var program = NftRuleset()
    private var nextSeq: UInt32 = 1

    /// Byte offset of the generation id inside `BATCH_BEGIN`: header (16) + nfgenmsg (4) +
    /// attribute header (4).
    static let generationOffset = 24

    public init() {
        buffer.reserve(64)
        let nlh = C.batchBegin(buffer.tail, nextSeq)
        // NFNL_BATCH_GENID 0 means "no generation check"; apply() patches the real one in.
        C.attrPutU32(nlh, NF.batchGenerationAttribute, 0)
        append(nlh, .batchBegin)
    }

    /// Appends the messages that replace `table` atomically. On error nothing of the table is
    /// kept, and the builder stays usable.
    public mutating func replace(_ table: NftTable) throws(NftBatchError) {
        let mark = (buffer.count, messages.count, nextSeq)
        do {
            try write(table)
        } catch {
            buffer.truncate(to: mark.0)
            messages.removeLast(messages.count - mark.1)
            nextSeq = mark.2
            throw error
        }
        program.tables.append(table)
    }

    /// Ends the batch with `BATCH_END`.
    public consuming func finish() -> NftBatch {
        buffer.reserve(64)
        let nlh = C.batchEnd(buffer.tail, nextSeq)
        append(nlh, .batchEnd)
        return NftBatch(bytes: buffer.bytes, messages: messages, program: program, generationOffset: Self.generationOffset)
    }

    // MARK: writing

    private mutating func append(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ kind: NftBatch.Message.Kind, family: Family? = nil,
                                 table: String? = nil, chain: String? = nil, ruleIndex: Int? = nil, chainIndex: Int? = nil) {
        let length = Int(nlh.pointee.nlmsg_len)
        messages.append(NftBatch.Message(seq: nextSeq, kind: kind, flags: nlh.pointee.nlmsg_flags, family: family, table: table,
                                         chain: chain, ruleIndex: ruleIndex, offset: buffer.count, length: length,
                                         tableIndex: table == nil ? nil : program.tables.count, chainIndex: chainIndex))
        buffer.count += align4(length)
        nextSeq += 1
    }

    private static func checkName(_ name: String, _ what: String) throws(NftBatchError) {
        guard !name.isEmpty, !name.utf8.contains(0), name.utf8.count < NF.nameMaxLength else {
            throw NftBatchError(.unencodable, offset: nil,
                                "\(what) name '\(name)' must be 1 to \(NF.nameMaxLength - 1) bytes without NUL (NFT_NAME_MAXLEN)")
        }
    }

    private mutating func write(_ table: NftTable) throws(NftBatchError) {
        try Self.checkName(table.name, "table")
        guard table.sets.isEmpty else {
            // Weir's lowering uses no sets; refusing is better than writing a table without them.
            throw NftBatchError(.unencodable, offset: nil,
                                "table \(table.family.rawValue) \(table.name) has \(table.sets.count) set(s) (\(table.sets.map(\.name).joined(separator: ", "))); batches write tables, chains and rules, not sets")
        }
        let family = UInt16(table.family.nfproto)
        let create = Netlink.Flag.create, exclusive = Netlink.Flag.exclusive
        for (type, flags, kind) in [(NF.Message.newTable, create, NftBatch.Message.Kind.newTable),
                                    (NF.Message.deleteTable, 0, .deleteTable),
                                    (NF.Message.newTable, create | exclusive, .newTable)] {
            guard let t = NftnlTable() else { throw Self.outOfMemory }
            t.set(Attr.tableName, table.name)
            t.set(Attr.tableFamily, table.family.nfproto)
            buffer.reserve(1024)
            let nlh = C.nlmsgBuildHeader(buffer.tail, type, family, flags, nextSeq)
            C.tableBuildPayload(nlh, t.raw)
            append(nlh, kind, family: table.family, table: table.name)
        }
        var chainNames = Set<String>()
        for (index, chain) in table.chains.enumerated() {
            try Self.checkName(chain.name, "chain")
            chainNames.insert(chain.name)
            guard let c = NftnlChain() else { throw Self.outOfMemory }
            c.set(Attr.chainTable, table.name)
            c.set(Attr.chainName, chain.name)
            c.set(Attr.chainFamily, table.family.nfproto)
            if let base = chain.base {
                c.set(Attr.chainHook, base.hook.hookNumber)
                c.set(Attr.chainPriority, signed: base.priority)
                c.set(Attr.chainType, base.type.rawValue)
                c.set(Attr.chainPolicy, base.policy.verdictNumber)
            }
            buffer.reserve(2048)
            let nlh = C.nlmsgBuildHeader(buffer.tail, NF.Message.newChain, family, create | exclusive, nextSeq)
            C.chainBuildPayload(nlh, c.raw)
            append(nlh, .newChain, family: table.family, table: table.name, chain: chain.name, chainIndex: index)
        }
        for (chainIndex, chain) in table.chains.enumerated() {
            for (ruleIndex, rule) in chain.rules.enumerated() {
                do {
                    try write(rule, family: table.family, table: table.name, chain: chain.name)
                } catch {
                    throw NftBatchError(.unencodable, offset: nil,
                                        "rule #\(ruleIndex) of chain \(table.family.rawValue) \(table.name) \(chain.name): \(error.message)")
                }
                let nlh = (buffer.tail).assumingMemoryBound(to: nlmsghdr.self)
                append(nlh, .newRule, family: table.family, table: table.name, chain: chain.name, ruleIndex: ruleIndex, chainIndex: chainIndex)
            }
        }
    }

    private static var outOfMemory: NftBatchError { NftBatchError(.unencodable, offset: nil, "libnftnl could not allocate an object") }

    /// An upper bound of the bytes one expression takes in a message.
    private static func sizeBound(_ expression: any NftExpression) -> Int {
        switch expression {
        case let xt as XtablesExpression: 512 + xt.info.count
        case let opaque as NftOpaqueExpression: 512 + opaque.attributes.count + opaque.name.utf8.count
        default: 1024
        }
    }

    /// Writes one NEWRULE message at the buffer's tail (without committing it). The expression
    /// list is built here, one `nftnl_expr_build_payload` per expression, like nft does, so
    /// opaque expressions can be written from their bytes.
    private mutating func write(_ rule: NftRule, family: Family, table: String, chain: String) throws(ExpressionEncodingError) {
        if let comment = rule.comment {
            try ExpressionCodec.checkString(comment, "the comment", maxBytes: NF.userdataMaxLength - 3)
        }
        var bound = 1024 + table.utf8.count + chain.utf8.count + (rule.comment?.utf8.count ?? 0)
        for expression in rule.expressions { bound += Self.sizeBound(expression) }
        buffer.reserve(bound)
        guard let r = NftnlRule() else { throw ExpressionEncodingError(message: "libnftnl could not allocate a rule") }
        r.set(Attr.ruleTable, table)
        r.set(Attr.ruleChain, chain)
        r.set(Attr.ruleFamily, family.nfproto)
        let nlh = C.nlmsgBuildHeader(buffer.tail, NF.Message.newRule, UInt16(family.nfproto),
                                     Netlink.Flag.create | Netlink.Flag.append, nextSeq)
        C.ruleBuildPayload(nlh, r.raw)
        if !rule.expressions.isEmpty {
            let list = C.attrNestStart(nlh, NF.RuleAttribute.expressions)
            for (index, expression) in rule.expressions.enumerated() {
                let element = C.attrNestStart(nlh, NF.listElement)
                if let opaque = expression as? NftOpaqueExpression {
                    try ExpressionCodec.checkString(opaque.name, "the expression name '\(opaque.name)'", maxBytes: 255)
                    C.attrPutStrz(nlh, NF.expressionName, opaque.name)
                    opaque.attributes.withUnsafeBytes { C.attrPut(nlh, NF.expressionData | Netlink.nestedFlag, $0) }
                } else if let known = expression as? any NetlinkExpression {
                    guard let e = NftnlExpr(known.nftnlName) else {
                        throw ExpressionEncodingError(message: "libnftnl has no expression named '\(known.nftnlName)'")
                    }
                    do {
                        try known.encode(into: e.ref)
                    } catch {
                        throw ExpressionEncodingError(message: "expression #\(index) (\(known.nftnlName)): \(error.message)")
                    }
                    C.exprBuildPayload(nlh, e.ref.raw)
                } else {
                    throw ExpressionEncodingError(message: "expression #\(index): kind '\(type(of: expression).kind)' has no netlink encoding")
                }
                C.attrNestEnd(nlh, element)
            }
            C.attrNestEnd(nlh, list)
            let listLength = Int(nlh.pointee.nlmsg_len) - (UnsafeMutableRawPointer(list) - UnsafeMutableRawPointer(nlh))
            guard listLength <= 0xFFFF else {
                throw ExpressionEncodingError(message: "its expressions take \(listLength) bytes; a netlink attribute holds at most 65535")
            }
        }
        if let comment = rule.comment {
            guard let udata = NftnlUdataBuffer(size: NF.userdataMaxLength),
                  C.udataPutStrz(udata.raw, NF.udataRuleComment, comment) else {
                throw ExpressionEncodingError(message: "the comment does not fit the rule's user data (\(NF.userdataMaxLength) bytes)")
            }
            udata.bytes.withUnsafeBytes { C.attrPut(nlh, NF.RuleAttribute.userdata, $0) }
        }
        guard Int(nlh.pointee.nlmsg_len) <= bound else {
            // Cannot happen with the checks above (every expression is bounded); refuse anyway.
            throw ExpressionEncodingError(message: "its message of \(nlh.pointee.nlmsg_len) bytes overran the \(bound) bytes reserved")
        }
    }
}

/// A zero-filled growable byte buffer that libnftnl writes messages into. It only grows
/// between messages (a message is built in place, so its pointers must stay valid).
final class MessageBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int = 1 << 16) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    }

    deinit { base.deallocate() }

    var tail: UnsafeMutableRawPointer { base + count }

    /// Makes room for at least `free` more bytes.
    func reserve(_ free: Int) {
        guard capacity - count < free else { return }
        var newCapacity = capacity
        while newCapacity - count < free { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        (newBase + count).initializeMemory(as: UInt8.self, repeating: 0, count: newCapacity - count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Drops everything after `length` (zeroing it, so later bytes stay deterministic).
    func truncate(to length: Int) {
        (base + length).initializeMemory(as: UInt8.self, repeating: 0, count: capacity - length)
        count = length
    }

    var bytes: [UInt8] { [UInt8](UnsafeRawBufferPointer(start: base, count: count)) }
}
