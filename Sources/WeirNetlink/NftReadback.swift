import CNftnl
import WeirModel
import WeirNftables

/// Reads the ruleset of a socket's namespace back from the kernel, as bytecode (never as `nft`
/// text, which prints x_tables extensions as if they were native).
public enum NftReadback {
    /// A consistent dump: everything read under one generation id.
    public struct Snapshot: Sendable, Equatable {
        /// The generation id the dump was read under.
        public var generation: UInt32
        /// The `ip` and `ip6` tables, in the kernel's order, with their chains, rules and sets
        /// (anonymous ones included; elements normalised, see `NftSet.normalized()`).
        public var ruleset: NftRuleset
        /// Tables of other families (`inet filter`, `bridge nat`, …), which the program form
        /// cannot hold; listed, not read.
        public var otherTables: [String]
        /// How many dumps it took (a dump is repeated when the ruleset changed during it).
        public var attempts: Int
    }

    /// The `ip`/`ip6` tables of the namespace (see `snapshot` for the rest).
    public static func dump(_ socket: NetlinkSocket) throws(NetlinkError) -> NftRuleset {
        try snapshot(socket).ruleset
    }

    /// GETGEN; GETTABLE, GETCHAIN, GETSET and GETRULE dumps over all families (`NFPROTO_UNSPEC`),
    /// and a GETSETELEM dump per `ip`/`ip6` set (in the set's family, naming its table and set);
    /// GETGEN again. When the generation moved (or a dump message carries another generation, or the
    /// kernel flags a dump as interrupted), the whole dump is repeated, up to `maxAttempts` times.
    public static func snapshot(_ socket: NetlinkSocket, maxAttempts: Int = 5) throws(NetlinkError) -> Snapshot {
        for attempt in 1...max(1, maxAttempts) {
            let before = try socket.generation()
            if let snapshot = try read(socket, generation: before, attempt: attempt), try socket.generation() == before {
                return snapshot
            }
        }
        throw NetlinkError(.unstable, "the ruleset changed during each of \(maxAttempts) dumps")
    }

    /// One attempt; nil when it saw signs of a concurrent change.
    private static func read(_ socket: NetlinkSocket, generation: UInt32, attempt: Int) throws(NetlinkError) -> Snapshot? {
        guard let tableMessages = try dumpAll(socket, NF.Message.getTable, generation),
              let chainMessages = try dumpAll(socket, NF.Message.getChain, generation),
              let setMessages = try dumpAll(socket, NF.Message.getSet, generation),
              let ruleMessages = try dumpAll(socket, NF.Message.getRule, generation) else { return nil }

        var ruleset = NftRuleset()
        var others: [String] = []
        var tableIndex: [String: Int] = [:]
        for message in tableMessages {
            switch message.withHeader({ ObjectParser.table($0) }) {
            case .success(let table):
                guard let family = Family(nfproto: table.family) else {
                    others.append("\(familyName(table.family)) \(table.name)")
                    continue
                }
                tableIndex[key(table.family, table.name)] = ruleset.tables.count
                ruleset.tables.append(NftTable(family: family, name: table.name))
            case .failure(let failure):
                throw NetlinkError(.decoding, "table dump: \(failure.message)")
            }
        }
        var chainIndex: [String: (table: Int, chain: Int)] = [:]
        for message in chainMessages {
            let family = UInt32(message.bytes[Netlink.headerSize])
            guard Family(nfproto: family) != nil else { continue }
            switch message.withHeader({ ObjectParser.chain($0) }) {
            case .success(let parsed):
                guard let t = tableIndex[key(parsed.family, parsed.table)] else { return nil }
                chainIndex[key(parsed.family, parsed.table, parsed.chain.name)] = (t, ruleset.tables[t].chains.count)
                ruleset.tables[t].chains.append(parsed.chain)
            case .failure(let failure):
                throw NetlinkError(.decoding, "chain dump, \(familyName(family)) table: \(failure.message)")
            }
        }
        for message in setMessages {
            let family = UInt32(message.bytes[Netlink.headerSize])
            guard Family(nfproto: family) != nil else { continue }
            var parsed: ParsedSet
            switch message.withHeader({ ObjectParser.set($0) }) {
            case .success(let set): parsed = set
            case .failure(let failure): throw NetlinkError(.decoding, "set dump, \(familyName(family)) table: \(failure.message)")
            }
            guard let t = tableIndex[key(parsed.family, parsed.table)],
                  let elements = try setElements(socket, parsed, generation) else { return nil }
            parsed.set.elements = elements
            // Kept as the kernel reported them when they do not pair up; lifting then says why.
            ruleset.tables[t].sets.append((try? parsed.set.normalized()) ?? parsed.set)
        }
        for message in ruleMessages {
            let family = UInt32(message.bytes[Netlink.headerSize])
            guard Family(nfproto: family) != nil else { continue }
            let parsed: ParsedRule
            switch message.withHeader({ ObjectParser.rule($0, bytes: message.bytes, offset: 0) }) {
            case .success(let rule):
                parsed = rule
            case .failure(let failure):
                guard let fallback = ObjectParser.opaqueRule(message.bytes, reason: failure.message) else {
                    throw NetlinkError(.decoding, "rule dump: \(failure.message)")
                }
                parsed = fallback
            }
            guard let (t, c) = chainIndex[key(parsed.family, parsed.table, parsed.chain)] else { return nil }
            ruleset.tables[t].chains[c].rules.append(parsed.rule)
        }
        return Snapshot(generation: generation, ruleset: ruleset, otherTables: others, attempts: attempt)
    }

    /// The elements of one set (a GETSETELEM dump); nil when the dump saw a concurrent change.
    private static func setElements(_ socket: NetlinkSocket, _ parsed: ParsedSet, _ generation: UInt32) throws(NetlinkError) -> [NftSetElement]? {
        guard let request = NftnlSet() else { throw NetlinkError(.decoding, "libnftnl could not allocate a set") }
        request.set(Attr.setTable, parsed.table)
        request.set(Attr.setName, parsed.set.name)
        let what = "set \(familyName(parsed.family)) \(parsed.table) \(parsed.set.name)"
        guard let messages = try dumpAll(socket, NF.Message.getSetElement, generation, family: UInt16(parsed.family),
                                         payload: { C.setElementsBuildPayload($0, request.raw) }) else { return nil }
        var elements: [NftSetElement] = []
        for message in messages {
            switch message.withHeader({ ObjectParser.setElements($0) }) {
            case .success(let part):
                guard part.table == parsed.table, part.set == parsed.set.name else {
                    throw NetlinkError(.protocolViolation, "the element dump of \(what) answered with set \(part.table) \(part.set)")
                }
                elements += part.elements
            case .failure(let failure):
                throw NetlinkError(.decoding, "element dump of \(what): \(failure.message)")
            }
        }
        return elements
    }

    private static func key(_ family: UInt32, _ names: String...) -> String {
        "\(family)\u{0}" + names.joined(separator: "\u{0}")
    }

    /// The data messages of one `NLM_F_DUMP` request, up to `NLMSG_DONE`; nil when the dump
    /// was interrupted or ran under another generation.
    /// `family` is the request's (all families by default); `payload` adds attributes.
    static func dumpAll(_ socket: NetlinkSocket, _ type: UInt16, _ generation: UInt32, family: UInt16 = NF.familyUnspecified,
                        payload: ((UnsafeMutablePointer<nlmsghdr>) -> Void)? = nil) throws(NetlinkError) -> [ReceivedMessage]? {
        let seq = socket.makeSeq()
        try socket.sendRequest { buffer in
            let nlh = C.nlmsgBuildHeader(buffer, type, family, Netlink.Flag.dump, seq)
            payload?(nlh)
            return nlh
        }
        var out: [ReceivedMessage] = []
        var consistent = true
        while true {
            guard let messages = try socket.receive(nonBlocking: false) else { continue }
            for message in messages where message.header.seq == seq {
                switch message.header.type {
                case Netlink.done:
                    let status = message.bytes.count >= 20 ? Int32(bitPattern: message.bytes.u32(at: 16)) : 0
                    if status < 0 && -status != EINTR {
                        throw NetlinkError(.kernel, errno: -status, "the \(BatchNames.request(type)) dump failed")
                    }
                    return consistent && status == 0 ? out : nil
                case Netlink.error:
                    let code = message.errorCode
                    if code == 0 { continue }
                    if -code == EINTR { consistent = false; continue }
                    throw NetlinkError(.kernel, errno: -code, "the \(BatchNames.request(type)) dump failed")
                default:
                    if message.header.flags & Netlink.Flag.dumpInterrupted != 0 { consistent = false }
                    // nfgenmsg.res_id carries the generation's low 16 bits (big-endian).
                    if message.bytes.count >= 20 {
                        let resID = UInt16(message.bytes[18]) << 8 | UInt16(message.bytes[19])
                        if resID != UInt16(truncatingIfNeeded: generation) { consistent = false }
                    }
                    out.append(message)
                }
            }
        }
    }
}

enum BatchNames {
    static func request(_ type: UInt16) -> String {
        switch type {
        case NF.Message.getTable: "GETTABLE"
        case NF.Message.getChain: "GETCHAIN"
        case NF.Message.getRule: "GETRULE"
        case NF.Message.getSet: "GETSET"
        case NF.Message.getSetElement: "GETSETELEM"
        case NF.Message.getGeneration: "GETGEN"
        default: "message \(type)"
        }
    }
}

extension ObjectParser {
    /// A rule message libnftnl cannot parse (an expression newer than libnftnl 1.2.4), read with
    /// WeirNetlink's own attribute walk: every expression kept opaque.
    static func opaqueRule(_ bytes: [UInt8], reason: String) -> ParsedRule? {
        let header = NetlinkHeader(bytes, at: 0)
        guard header.length <= bytes.count,
              let top = try? NetlinkAttributes.parse(bytes, 20..<header.length),
              let table = top.first(where: { $0.type == NF.RuleAttribute.table })?.string(in: bytes),
              let chain = top.first(where: { $0.type == NF.RuleAttribute.chain })?.string(in: bytes),
              let expressions = try? NetlinkAttributes.ruleExpressions(bytes, message: header) else { return nil }
        let handle = top.first(where: { $0.type == NF.RuleAttribute.handle && $0.payload.count == 8 }).map { attribute in
            (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[attribute.payload.lowerBound + $1]) }
        }
        let userdata = top.first(where: { $0.type == NF.RuleAttribute.userdata }).map { Array(bytes[$0.payload]) }
        let comment: String?
        switch userdataComment(userdata) {
        case .success(let text): comment = text
        case .failure: comment = nil
        }
        let opaque: [any NftExpression] = expressions.map {
            NftOpaqueExpression(name: $0.name, attributes: $0.data, text: "[ \($0.name) ]", reason: reason)
        }
        return ParsedRule(family: UInt32(bytes[Netlink.headerSize]), table: table, chain: chain, handle: handle,
                          rule: NftRule(opaque, comment: comment))
    }
}
