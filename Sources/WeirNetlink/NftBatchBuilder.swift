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
    ///
    /// The table's sets come after its chains and before its rules: per set a `NEWSET`
    /// (create|excl) with transaction id `NFTA_SET_ID` = its position in `table.sets` + 1
    /// (per table), then `NEWSETELEM` messages (create|excl, naming the set and its id) of at
    /// most `SetEncoding.maxElementsPerMessage` kernel elements and 48 KiB each. Every lookup
    /// must name a set of the table and carry its id (`setID` nil is filled in, in the bytes and
    /// in the batch's `program`). Refused with `.unencodable`, naming table, set and element:
    /// sets and elements that do not fit their definition (see `SetEncoding`), two sets of one
    /// name, a key given twice, a verdict map element jumping to a chain the table lacks, a
    /// lookup of a missing set or with another id, an anonymous set no lookup uses.
    public mutating func replace(_ table: NftTable) throws(NftBatchError) {
        let mark = (buffer.count, messages.count, nextSeq)
        let written: NftTable
        do {
            written = try write(table)
        } catch {
            buffer.truncate(to: mark.0)
            messages.removeLast(messages.count - mark.1)
            nextSeq = mark.2
            throw error
        }
        program.tables.append(written)
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
                                 table: String? = nil, chain: String? = nil, ruleIndex: Int? = nil, chainIndex: Int? = nil,
                                 set: String? = nil, setIndex: Int? = nil, elements: Range<Int>? = nil) {
        let length = Int(nlh.pointee.nlmsg_len)
        messages.append(NftBatch.Message(seq: nextSeq, kind: kind, flags: nlh.pointee.nlmsg_flags, family: family, table: table,
                                         chain: chain, ruleIndex: ruleIndex, set: set, elements: elements, offset: buffer.count,
                                         length: length, tableIndex: table == nil ? nil : program.tables.count,
                                         chainIndex: chainIndex, setIndex: setIndex))
        buffer.count += align4(length)
        nextSeq += 1
    }

    private static func checkName(_ name: String, _ what: String) throws(NftBatchError) {
        guard !name.isEmpty, !name.utf8.contains(0), name.utf8.count < NF.nameMaxLength else {
            throw NftBatchError(.unencodable, offset: nil,
                                "\(what) name '\(name)' must be 1 to \(NF.nameMaxLength - 1) bytes without NUL (NFT_NAME_MAXLEN)")
        }
    }

    /// Writes the table's messages; returns the table as written (lookups' set ids filled in).
    private mutating func write(_ table: NftTable) throws(NftBatchError) -> NftTable {
        try Self.checkName(table.name, "table")
        let table = try Self.checkedSets(table)
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
        for (index, set) in table.sets.enumerated() {
            try write(set, index: index, of: table)
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
        return table
    }

    // MARK: sets

    /// Checks the table's sets and their elements, and every lookup of its rules against
    /// them; returns the table with each lookup's set id filled in.
    private static func checkedSets(_ table: NftTable) throws(NftBatchError) -> NftTable {
        let name = "\(table.family.rawValue) \(table.name)"
        var index: [String: Int] = [:]
        let chains = Set(table.chains.map(\.name))
        for (s, set) in table.sets.enumerated() {
            try checkName(set.name, "set")
            guard index.updateValue(s, forKey: set.name) == nil else {
                throw NftBatchError(.unencodable, offset: nil, "table \(name) has two sets named \(set.name)")
            }
            if let problem = SetEncoding.problem(of: set) {
                throw NftBatchError(.unencodable, offset: nil, "set \(name) \(set.name): \(problem)")
            }
            var keys: [[UInt8]: Int] = [:]
            keys.reserveCapacity(set.elements.count)
            for (e, element) in set.elements.enumerated() {
                if let problem = SetEncoding.problem(of: element, in: set, chains: chains) {
                    throw NftBatchError(.unencodable, offset: nil, "element #\(e) of set \(name) \(set.name): \(problem)")
                }
                if let first = keys.updateValue(e, forKey: element.key) {
                    throw NftBatchError(.unencodable, offset: nil,
                                        "element #\(e) of set \(name) \(set.name): its key \(element.key.hexBytes) is the key of element #\(first) too")
                }
            }
        }
        var out = table
        var used = Set<String>()
        for (c, chain) in table.chains.enumerated() {
            for (r, rule) in chain.rules.enumerated() {
                for (x, expression) in rule.expressions.enumerated() {
                    // A name that cannot be written at all is the encoder's to report.
                    guard var lookup = expression as? LookupExpression, !lookup.set.isEmpty, !lookup.set.utf8.contains(0),
                          lookup.set.utf8.count < NF.nameMaxLength else { continue }
                    let place = "rule #\(r) of chain \(name) \(chain.name): expression #\(x) (lookup)"
                    guard let s = index[lookup.set] else {
                        throw NftBatchError(.unencodable, offset: nil, "\(place): set '\(lookup.set)' is not a set of table \(name)")
                    }
                    let id = UInt32(s + 1)
                    used.insert(lookup.set)
                    if let given = lookup.setID {
                        guard given == id else {
                            throw NftBatchError(.unencodable, offset: nil,
                                                "\(place): set id \(given), but set '\(lookup.set)' is the table's set #\(s), whose transaction id is \(id)")
                        }
                        continue
                    }
                    lookup.setID = id
                    out.chains[c].rules[r].expressions[x] = lookup
                }
            }
        }
        // The kernel refuses an anonymous set no rule binds (EINVAL at commit, reported on the
        // table's NEWTABLE): say which set instead.
        if let unbound = table.sets.first(where: { $0.flags.contains(.anonymous) && !used.contains($0.name) }) {
            throw NftBatchError(.unencodable, offset: nil,
                                "set \(name) \(unbound.name): anonymous, but no lookup of the table uses it (the kernel refuses unbound anonymous sets)")
        }
        return out
    }

    /// `NEWSET`, then the elements in `NEWSETELEM` messages. The set was checked.
    private mutating func write(_ set: NftSet, index: Int, of table: NftTable) throws(NftBatchError) {
        let wireTotal = set.elements.reduce(0) { $0 + SetEncoding.wireCount($1, in: set) }

        try writeSet(set, index: index, of: table, size: wireTotal)
        var start = 0
        while start < set.elements.count {
            // The next chunk: whole program elements (a pair never splits), bounded in kernel
            // elements and bytes.
            var end = start, count = 0, bytes = 0
            while end < set.elements.count {
                let wire = SetEncoding.wire(set.elements[end], in: set)
                let size = wire.reduce(0) { $0 + SetEncoding.wireSize($1) }
                if end > start && (count + wire.count > SetEncoding.maxElementsPerMessage || bytes + size > SetEncoding.maxElementBytesPerMessage) {
                    break
                }
                count += wire.count
                bytes += size
                end += 1
            }
            try writeElements(set, start..<end, bytes: bytes, index: index, of: table)
            start = end
        }
    }

    /// The `NEWSET` message (`size`: the kernel elements it will hold).
    private mutating func writeSet(_ set: NftSet, index: Int, of table: NftTable, size wireTotal: Int) throws(NftBatchError) {
        let family = UInt16(table.family.nfproto)
        let id = UInt32(index + 1)
        let flags = Netlink.Flag.create | Netlink.Flag.exclusive
        guard let s = NftnlSet() else { throw Self.outOfMemory }
        s.set(Attr.setTable, table.name)
        s.set(Attr.setName, set.name)
        s.set(Attr.setFamily, table.family.nfproto)
        s.set(Attr.setFlags, set.flags.rawValue)
        s.set(Attr.setKeyType, set.keyType)
        s.set(Attr.setKeyLength, set.keyLength)
        if let dataType = set.dataType { s.set(Attr.setDataType, dataType) }
        if let dataLength = set.dataLength { s.set(Attr.setDataLength, dataLength) }
        s.set(Attr.setID, id)
        // The size bounds the element count; only a constant set's count is known for good (nft
        // does the same for anonymous sets).
        if set.flags.contains(.constant) && wireTotal > 0 { s.set(Attr.setDescSize, UInt32(wireTotal)) }
        if !set.fieldLengths.isEmpty, !s.set(Attr.setDescConcat, set.fieldLengths.map { UInt8($0) }) {
            throw NftBatchError(.unencodable, offset: nil, "set \(table.family.rawValue) \(table.name) \(set.name): libnftnl refused its field lengths")
        }
        buffer.reserve(1024 + table.name.utf8.count + set.name.utf8.count)
        let nlh = C.nlmsgBuildHeader(buffer.tail, NF.Message.newSet, family, flags, nextSeq)
        C.setBuildPayload(nlh, s.raw)
        append(nlh, .newSet, family: table.family, table: table.name, set: set.name, setIndex: index)
    }

    private mutating func writeElements(_ set: NftSet, _ range: Range<Int>, bytes: Int, index: Int, of table: NftTable) throws(NftBatchError) {
        guard let s = NftnlSet() else { throw Self.outOfMemory }
        s.set(Attr.setTable, table.name)
        s.set(Attr.setName, set.name)
        s.set(Attr.setID, UInt32(index + 1))
        let bound = 1024 + table.name.utf8.count + set.name.utf8.count + bytes
        buffer.reserve(bound)
        let nlh = C.nlmsgBuildHeader(buffer.tail, NF.Message.newSetElement, UInt16(table.family.nfproto),
                                     Netlink.Flag.create | Netlink.Flag.exclusive, nextSeq)
        // Without elements in the libnftnl set, this writes the set's name, id and table.
        C.setElementsBuildPayload(nlh, s.raw)
        let list = C.attrNestStart(nlh, NF.setElementListElements)
        for element in set.elements[range] {
            for wire in SetEncoding.wire(element, in: set) where !SetEncoding.write(wire, into: nlh) {
                throw Self.outOfMemory
            }
        }
        C.attrNestEnd(nlh, list)
        let listLength = Int(nlh.pointee.nlmsg_len) - (UnsafeMutableRawPointer(list) - UnsafeMutableRawPointer(nlh))
        guard listLength <= 0xFFFF, Int(nlh.pointee.nlmsg_len) <= bound else {
            // Cannot happen: chunks are bounded well below both.
            throw NftBatchError(.unencodable, offset: nil, "set \(table.family.rawValue) \(table.name) \(set.name): elements \(NftBatch.Message.describe(range)) took \(listLength) bytes, more than an attribute holds")
        }
        append(nlh, .newSetElement, family: table.family, table: table.name, set: set.name, setIndex: index, elements: range)
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
