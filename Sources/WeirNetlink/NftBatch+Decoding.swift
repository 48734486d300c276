import CNftnl
import WeirModel
import WeirNftables

extension NftBatch {
    /// Reads a batch file: checks the netlink framing (every header's length sane and 4-byte
    /// aligned, known message types of the nf_tables subsystem, `BATCH_BEGIN` first and
    /// `BATCH_END` last, increasing sequence numbers, well-formed attributes, no trailing bytes),
    /// then the order of a Weir replace batch, and recovers the program. Any problem is an
    /// `NftBatchError` naming the byte offset; nothing is ever sent.
    public init(decoding bytes: [UInt8]) throws(NftBatchError) {
        let headers = try Self.frame(bytes)
        var decoder = Decoder(bytes: bytes)
        for header in headers { try decoder.take(header) }
        self.init(bytes: bytes, messages: decoder.messages, program: decoder.program, generationOffset: decoder.generationOffset)
    }

    /// The framing pass: pure Swift, before libnftnl parses anything.
    static func frame(_ bytes: [UInt8]) throws(NftBatchError) -> [NetlinkHeader] {
        guard !bytes.isEmpty else { throw NftBatchError(.empty, offset: 0, "the batch is empty") }
        var headers: [NetlinkHeader] = []
        var at = 0
        var ended = false
        while at < bytes.count {
            if ended {
                throw NftBatchError(.trailingBytes, offset: at, "\(bytes.count - at) byte(s) follow BATCH_END")
            }
            guard bytes.count - at >= Netlink.headerSize else {
                throw NftBatchError(.truncated, offset: at, "\(bytes.count - at) byte(s) left, too few for a netlink message header (16)")
            }
            let header = NetlinkHeader(bytes, at: at)
            let minimum = Netlink.headerSize + Netlink.nfgenmsgSize
            guard header.length >= minimum else {
                throw NftBatchError(.badLength, offset: at, "message length \(header.length) is shorter than a header with nfgenmsg (\(minimum))")
            }
            guard header.length <= bytes.count - at else {
                throw NftBatchError(.truncated, offset: at, "message length \(header.length) runs past the end: only \(bytes.count - at) byte(s) remain")
            }
            guard header.length % 4 == 0 else {
                throw NftBatchError(.badLength, offset: at, "message length \(header.length) is not a multiple of 4 (NLMSG_ALIGNTO)")
            }
            let name = Self.typeName(header.type)
            guard let kind = Self.kind(of: header.type) else {
                if header.type >= Netlink.minType, header.type >> 8 != NF.subsystem, header.type != NF.batchBegin, header.type != NF.batchEnd {
                    throw NftBatchError(.wrongSubsystem, offset: at, "message type 0x\(String(header.type, radix: 16)) belongs to nfnetlink subsystem \(header.type >> 8), not nf_tables (\(NF.subsystem))")
                }
                throw NftBatchError(.unknownType, offset: at, "message type \(name) is not BATCH_BEGIN, BATCH_END, NEWTABLE, DELTABLE, NEWCHAIN, NEWSET, NEWSETELEM or NEWRULE")
            }
            if headers.isEmpty {
                guard kind == .batchBegin else {
                    throw NftBatchError(.missingBegin, offset: at, "the batch starts with \(name), not BATCH_BEGIN")
                }
                let resID = header.nfgen(bytes).resID
                guard (resID.0 == 0 && UInt16(resID.1) == NF.subsystem) || (UInt16(resID.0) == NF.subsystem && resID.1 == 0) else {
                    throw NftBatchError(.wrongSubsystem, offset: at, "BATCH_BEGIN addresses subsystem \(UInt16(resID.0) << 8 | UInt16(resID.1)), not nf_tables (\(NF.subsystem))")
                }
            } else if kind == .batchBegin {
                throw NftBatchError(.missingBegin, offset: at, "a second BATCH_BEGIN (seq \(header.seq)) inside the batch")
            }
            if let previous = headers.last, header.seq <= previous.seq {
                throw NftBatchError(.sequence, offset: at, "sequence number \(header.seq) does not increase (the previous message has \(previous.seq))")
            }
            guard header.flags & Netlink.Flag.request != 0 else {
                throw NftBatchError(.flags, offset: at, "\(name) (seq \(header.seq)) lacks NLM_F_REQUEST")
            }
            do {
                try NetlinkAttributes.validate(bytes, (at + minimum)..<(at + header.length))
            } catch {
                throw NftBatchError(.malformedAttributes, offset: error.offset, "in \(name) (seq \(header.seq)): \(error.message)")
            }
            headers.append(header)
            ended = kind == .batchEnd
            at += header.length
        }
        guard ended else {
            throw NftBatchError(.missingEnd, offset: bytes.count, "the batch ends without BATCH_END (an unfinished batch)")
        }
        return headers
    }

    static func kind(of type: UInt16) -> Message.Kind? {
        switch type {
        case NF.batchBegin: .batchBegin
        case NF.batchEnd: .batchEnd
        case NF.type(NF.Message.newTable): .newTable
        case NF.type(NF.Message.deleteTable): .deleteTable
        case NF.type(NF.Message.newChain): .newChain
        case NF.type(NF.Message.newSet): .newSet
        case NF.type(NF.Message.newSetElement): .newSetElement
        case NF.type(NF.Message.newRule): .newRule
        default: nil
        }
    }

    static func typeName(_ type: UInt16) -> String {
        if let kind = kind(of: type) { return kind.rawValue }
        if type == Netlink.error { return "NLMSG_ERROR" }
        if type == Netlink.done { return "NLMSG_DONE" }
        return "0x" + String(type, radix: 16)
    }

    /// The order pass: one block per table (NEWTABLE create, DELTABLE, NEWTABLE create|excl,
    /// its chains, its sets — each NEWSET with transaction id = position + 1, followed by the
    /// NEWSETELEM messages of its elements —, its rules), each message parsed by libnftnl and
    /// every set and element checked as the builder checks them (`SetEncoding`).
    private struct Decoder {
        let bytes: [UInt8]
        var messages: [Message] = []
        var program = NftRuleset()
        var generationOffset: Int?
        /// How many of the three table messages (NEWTABLE, DELTABLE, NEWTABLE) of the current
        /// table block were seen; 3 when the block's chains and rules may follow.
        var tableStep = 3
        var seenTables = Set<String>()
        /// The keys of the set elements are being added to (the last set of the current table).
        var setKeys: [[UInt8]: Int] = [:]

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func take(_ header: NetlinkHeader) throws(NftBatchError) {
            let kind = NftBatch.kind(of: header.type)!
            let at = header.offset
            let fail = { (kind: NftBatchError.Kind, text: String) in
                NftBatchError(kind, offset: at, "\(NftBatch.typeName(header.type)) (seq \(header.seq)): \(text)")
            }
            var message = Message(seq: header.seq, kind: kind, flags: header.flags, offset: at, length: header.length)
            let flags = header.flags & ~(Netlink.Flag.request | Netlink.Flag.ack)
            let create = Netlink.Flag.create, exclusive = Netlink.Flag.exclusive, append = Netlink.Flag.append

            switch kind {
            case .batchBegin:
                let attributes = (try? NetlinkAttributes.parse(bytes, (at + 20)..<(at + header.length))) ?? []
                for attribute in attributes {
                    guard attribute.type == NF.batchGenerationAttribute, attribute.payload.count == 4 else {
                        throw fail(.content, "unexpected attribute \(attribute.type) (only NFNL_BATCH_GENID belongs here)")
                    }
                    generationOffset = attribute.payload.lowerBound
                }
            case .batchEnd:
                guard tableStep == 3 else { throw fail(.order, "the batch ends inside the replacement of a table") }
            case .newTable, .deleteTable:
                let family = try self.family(header, fail)
                let name: String
                switch bytes.withUnsafeBytes({ ObjectParser.table(ObjectParser.header($0, at)) }) {
                case .success(let table): name = table.name
                case .failure(let failure): throw fail(.content, failure.message)
                }
                let key = "\(family.rawValue) \(name)"
                let expected: (Message.Kind, UInt16)
                switch tableStep {
                case 3: expected = (.newTable, create)
                case 1: expected = (.deleteTable, 0)
                default: expected = (.newTable, create | exclusive)
                }
                if tableStep == 3 {
                    guard kind == .newTable else { throw fail(.order, "DELTABLE \(key) is not preceded by NEWTABLE (create) of the same table") }
                    guard seenTables.insert(key).inserted else { throw fail(.order, "table \(key) is replaced twice in one batch") }
                    program.tables.append(NftTable(family: family, name: name))
                    tableStep = 1
                } else {
                    let current = program.tables[program.tables.count - 1]
                    guard kind == expected.0, current.family == family, current.name == name else {
                        throw fail(.order, "expected \(expected.0.rawValue) \(current.family.rawValue) \(current.name), the next step of replacing that table")
                    }
                    tableStep += 1
                }
                guard flags == expected.1 else {
                    throw fail(.flags, "flags 0x\(String(header.flags, radix: 16)); a replace batch uses \(Self.flagNames(expected.1 | Netlink.Flag.request)) here")
                }
                message.family = family
                message.table = name
                message.tableIndex = program.tables.count - 1
            case .newChain:
                let family = try self.family(header, fail)
                let parsed: ParsedChain
                switch bytes.withUnsafeBytes({ ObjectParser.chain(ObjectParser.header($0, at)) }) {
                case .success(let chain): parsed = chain
                case .failure(let failure): throw fail(.content, failure.message)
                }
                let t = try currentTable(family, parsed.table, fail)
                guard program.tables[t].chains.allSatisfy({ $0.rules.isEmpty }) else {
                    throw fail(.order, "chain \(parsed.chain.name) comes after rules; a replace batch creates every chain first")
                }
                guard program.tables[t].sets.isEmpty else {
                    throw fail(.order, "chain \(parsed.chain.name) comes after sets; a replace batch creates every chain before the sets")
                }
                guard flags == create | exclusive else {
                    throw fail(.flags, "flags 0x\(String(header.flags, radix: 16)); a replace batch uses \(Self.flagNames(create | exclusive | Netlink.Flag.request)) here")
                }
                program.tables[t].chains.append(parsed.chain)
                message.family = family
                message.table = parsed.table
                message.chain = parsed.chain.name
                message.tableIndex = t
                message.chainIndex = program.tables[t].chains.count - 1
            case .newSet:
                let family = try self.family(header, fail)
                let parsed: ParsedSet
                switch bytes.withUnsafeBytes({ ObjectParser.set(ObjectParser.header($0, at)) }) {
                case .success(let set): parsed = set
                case .failure(let failure): throw fail(.content, failure.message)
                }
                let t = try currentTable(family, parsed.table, fail)
                let table = program.tables[t]
                let name = "\(table.family.rawValue) \(table.name) \(parsed.set.name)"
                guard table.chains.allSatisfy({ $0.rules.isEmpty }) else {
                    throw fail(.order, "set \(name) comes after rules; a replace batch creates every set before the rules")
                }
                guard flags == create | exclusive else {
                    throw fail(.flags, "flags 0x\(String(header.flags, radix: 16)); a replace batch uses \(Self.flagNames(create | exclusive | Netlink.Flag.request)) here")
                }
                guard !table.sets.contains(where: { $0.name == parsed.set.name }) else {
                    throw fail(.order, "set \(name) is created twice")
                }
                let id = UInt32(table.sets.count + 1)
                guard parsed.id == id else {
                    throw fail(.content, "set \(name) has transaction id \(parsed.id.map(String.init) ?? "none"); as the table's set #\(table.sets.count) it must have \(id)")
                }
                if let problem = SetEncoding.problem(of: parsed.set) { throw fail(.content, "set \(name): \(problem)") }
                program.tables[t].sets.append(parsed.set)
                setKeys = [:]
                message.family = family
                message.table = parsed.table
                message.set = parsed.set.name
                message.tableIndex = t
                message.setIndex = program.tables[t].sets.count - 1
            case .newSetElement:
                let family = try self.family(header, fail)
                let parsed: ParsedSetElements
                switch bytes.withUnsafeBytes({ ObjectParser.setElements(ObjectParser.header($0, at)) }) {
                case .success(let elements): parsed = elements
                case .failure(let failure): throw fail(.content, failure.message)
                }
                let t = try currentTable(family, parsed.table, fail)
                let table = program.tables[t]
                let name = "\(table.family.rawValue) \(table.name) \(parsed.set)"
                guard let s = table.sets.firstIndex(where: { $0.name == parsed.set }) else {
                    throw fail(.order, "elements of set \(name), which is not created earlier in the batch")
                }
                guard s == table.sets.count - 1, table.chains.allSatisfy({ $0.rules.isEmpty }) else {
                    throw fail(.order, "elements of set \(name) come after \(s == table.sets.count - 1 ? "rules" : "set \(table.sets[table.sets.count - 1].name)"); a replace batch writes each set's elements right after it")
                }
                guard flags == create | exclusive else {
                    throw fail(.flags, "flags 0x\(String(header.flags, radix: 16)); a replace batch uses \(Self.flagNames(create | exclusive | Netlink.Flag.request)) here")
                }
                guard parsed.setID == UInt32(s + 1) else {
                    throw fail(.content, "the elements name set id \(parsed.setID.map(String.init) ?? "none"), but set \(name) has \(s + 1)")
                }
                guard !parsed.elements.isEmpty else { throw fail(.content, "no elements for set \(name)") }
                let set = table.sets[s]
                let elements: [NftSetElement]
                switch SetEncoding.join(parsed.elements, in: set) {
                case .success(let joined): elements = joined
                case .failure(let failure): throw fail(.content, "set \(name): \(failure.message)")
                }
                let first = set.elements.count
                let chains = Set(table.chains.map(\.name))
                for (i, element) in elements.enumerated() {
                    if let problem = SetEncoding.problem(of: element, in: set, chains: chains) {
                        throw fail(.content, "element #\(first + i) of set \(name): \(problem)")
                    }
                    if let earlier = setKeys.updateValue(first + i, forKey: element.key) {
                        throw fail(.content, "element #\(first + i) of set \(name): its key \(element.key.hexBytes) is the key of element #\(earlier) too")
                    }
                }
                program.tables[t].sets[s].elements += elements
                message.family = family
                message.table = parsed.table
                message.set = parsed.set
                message.elements = first..<(first + elements.count)
                message.tableIndex = t
                message.setIndex = s
            case .newRule:
                let family = try self.family(header, fail)
                guard flags == create | append else {
                    throw fail(.flags, "flags 0x\(String(header.flags, radix: 16)) lack NLM_F_CREATE|NLM_F_APPEND; without APPEND the kernel inserts the rule at the head of its chain")
                }
                let parsed: ParsedRule
                switch bytes.withUnsafeBytes({ ObjectParser.rule(ObjectParser.header($0, at), bytes: bytes, offset: at) }) {
                case .success(let rule): parsed = rule
                case .failure(let failure): throw fail(.content, failure.message)
                }
                let t = try currentTable(family, parsed.table, fail)
                guard let c = program.tables[t].chains.firstIndex(where: { $0.name == parsed.chain }) else {
                    throw fail(.order, "the rule's chain \(parsed.chain) is not created earlier in the batch")
                }
                program.tables[t].chains[c].rules.append(parsed.rule)
                message.family = family
                message.table = parsed.table
                message.chain = parsed.chain
                message.ruleIndex = program.tables[t].chains[c].rules.count - 1
                message.tableIndex = t
                message.chainIndex = c
            }
            messages.append(message)
        }

        func family(_ header: NetlinkHeader, _ fail: (NftBatchError.Kind, String) -> NftBatchError) throws(NftBatchError) -> Family {
            let raw = UInt32(header.nfgen(bytes).family)
            guard let family = Family(nfproto: raw) else { throw fail(.content, "family \(familyName(raw)) is not ip or ip6") }
            return family
        }

        /// The table block the message belongs to; it must be the one being replaced.
        func currentTable(_ family: Family, _ name: String, _ fail: (NftBatchError.Kind, String) -> NftBatchError) throws(NftBatchError) -> Int {
            guard tableStep == 3, let last = program.tables.indices.last,
                  program.tables[last].family == family, program.tables[last].name == name else {
                throw fail(.order, "it touches table \(family.rawValue) \(name), which is not the table this part of the batch replaces")
            }
            return last
        }

        static func flagNames(_ flags: UInt16) -> String {
            var names: [String] = []
            for (bit, name) in [(Netlink.Flag.request, "NLM_F_REQUEST"), (Netlink.Flag.exclusive, "NLM_F_EXCL"),
                                (Netlink.Flag.create, "NLM_F_CREATE"), (Netlink.Flag.append, "NLM_F_APPEND")] where flags & bit != 0 {
                names.append(name)
            }
            return names.joined(separator: "|")
        }
    }
}
