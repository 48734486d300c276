import CNftnl
import WeirModel
import WeirNftables

/// A chain as a NEWCHAIN message (batch or dump) describes it.
struct ParsedChain {
    var family: UInt32
    var table: String
    var chain: NftChain
}

/// A rule as a NEWRULE message (batch or dump) describes it.
struct ParsedRule {
    var family: UInt32
    var table: String
    var chain: String
    var handle: UInt64?
    var rule: NftRule
}

/// A set as a NEWSET message describes it (without elements).
struct ParsedSet {
    var family: UInt32
    var table: String
    var set: NftSet
    /// `NFTA_SET_ID` (batches only; the kernel does not report it).
    var id: UInt32?
}

/// The elements one NEWSETELEM message carries.
struct ParsedSetElements {
    var table: String
    var set: String
    var elements: [NftSetElement]
    /// `NFTA_SET_ELEM_LIST_SET_ID` (batches only).
    var setID: UInt32?
}

/// Reads nf_tables object messages with libnftnl's `nftnl_*_nlmsg_parse` and the expression
/// decoders. Failures are messages in words (the callers add where).
enum ObjectParser {
    static func header(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UnsafePointer<nlmsghdr> {
        UnsafePointer((bytes.baseAddress! + offset).assumingMemoryBound(to: nlmsghdr.self))
    }

    static func table(_ nlh: UnsafePointer<nlmsghdr>) -> Result<(family: UInt32, name: String), ParseFailure> {
        guard let t = NftnlTable() else { return .failure(ParseFailure("libnftnl could not allocate a table")) }
        guard C.tableParse(nlh, t.raw) >= 0 else { return .failure(ParseFailure("libnftnl cannot parse this table message")) }
        guard let name = t.string(Attr.tableName), let family = t.u32(Attr.tableFamily) else {
            return .failure(ParseFailure("the table message has no name or family"))
        }
        return .success((family, name))
    }

    static func chain(_ nlh: UnsafePointer<nlmsghdr>) -> Result<ParsedChain, ParseFailure> {
        guard let c = NftnlChain() else { return .failure(ParseFailure("libnftnl could not allocate a chain")) }
        guard C.chainParse(nlh, c.raw) >= 0 else { return .failure(ParseFailure("libnftnl cannot parse this chain message")) }
        guard let name = c.string(Attr.chainName), let table = c.string(Attr.chainTable), let family = c.u32(Attr.chainFamily) else {
            return .failure(ParseFailure("the chain message lacks a name, table or family"))
        }
        var base: NftBaseChain?
        if let hookNumber = c.u32(Attr.chainHook) {
            guard let hook = Hook(hookNumber: hookNumber) else {
                return .failure(ParseFailure("chain \(name) hooks into \(hookNumber), which is not an ip/ip6 hook"))
            }
            guard let priority = c.s32(Attr.chainPriority) else { return .failure(ParseFailure("base chain \(name) has no priority")) }
            guard let typeName = c.string(Attr.chainType), let type = NftChainType(rawValue: typeName) else {
                return .failure(ParseFailure("base chain \(name) has type '\(c.string(Attr.chainType) ?? "")', not filter, nat or route"))
            }
            guard let policyNumber = c.u32(Attr.chainPolicy), let policy = ChainPolicy(verdictNumber: policyNumber) else {
                return .failure(ParseFailure("base chain \(name) has no accept or drop policy"))
            }
            base = NftBaseChain(type: type, hook: hook, priority: priority, policy: policy)
        }
        return .success(ParsedChain(family: family, table: table, chain: NftChain(name: name, base: base)))
    }

    /// `bytes` and `offset` locate the same message as `nlh`, for the raw expression bytes.
    static func rule(_ nlh: UnsafePointer<nlmsghdr>, bytes: [UInt8], offset: Int) -> Result<ParsedRule, ParseFailure> {
        guard let r = NftnlRule() else { return .failure(ParseFailure("libnftnl could not allocate a rule")) }
        guard C.ruleParse(nlh, r.raw) >= 0 else { return .failure(ParseFailure("libnftnl cannot parse this rule message")) }
        guard let table = r.string(Attr.ruleTable), let chain = r.string(Attr.ruleChain) else {
            return .failure(ParseFailure("the rule message names no table or chain"))
        }
        let family = UInt32(bytes[offset + Netlink.headerSize])
        let raw: [(offset: Int, name: String, data: [UInt8])]
        do {
            raw = try NetlinkAttributes.ruleExpressions(bytes, message: NetlinkHeader(bytes, at: offset))
        } catch {
            return .failure(ParseFailure("malformed expression list at byte \(error.offset): \(error.message)"))
        }
        let parsed = r.expressions()
        guard parsed.count == raw.count else {
            return .failure(ParseFailure("libnftnl read \(parsed.count) expressions where the message has \(raw.count)"))
        }
        var expressions: [any NftExpression] = []
        expressions.reserveCapacity(parsed.count)
        for (e, bytes) in zip(parsed, raw) {
            expressions.append(ExpressionCodec.decode(e, name: bytes.name, data: bytes.data))
        }
        let comment: String?
        switch userdataComment(r.data(Attr.ruleUserdata)) {
        case .success(let text): comment = text
        case .failure(let failure): return .failure(failure)
        }
        return .success(ParsedRule(family: family, table: table, chain: chain, handle: r.u64(Attr.ruleHandle),
                                   rule: NftRule(expressions, comment: comment)))
    }

    /// The `NFTNL_UDATA_RULE_COMMENT` record of rule user data (type, length, value records;
    /// parsed here with bounds checks, which libnftnl's iteration does not do).
    static func userdataComment(_ data: [UInt8]?) -> Result<String?, ParseFailure> {
        guard let data else { return .success(nil) }
        var at = 0
        var comment: String?
        while at < data.count {
            guard at + 2 <= data.count, at + 2 + Int(data[at + 1]) <= data.count else {
                return .failure(ParseFailure("the rule's user data is malformed at its byte \(at)"))
            }
            let type = data[at], length = Int(data[at + 1])
            if type == NF.udataRuleComment {
                let value = data[(at + 2)..<(at + 2 + length)]
                comment = String(decoding: value.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            at += 2 + length
        }
        return .success(comment)
    }

    /// A NEWSET message (a GETSET dump reply): the set without its elements.
    static func set(_ nlh: UnsafePointer<nlmsghdr>) -> Result<ParsedSet, ParseFailure> {
        guard let s = NftnlSet() else { return .failure(ParseFailure("libnftnl could not allocate a set")) }
        guard C.setParse(nlh, s.raw) >= 0 else { return .failure(ParseFailure("libnftnl cannot parse this set message")) }
        guard let name = s.string(Attr.setName), let table = s.string(Attr.setTable), let family = s.u32(Attr.setFamily) else {
            return .failure(ParseFailure("the set message lacks a name, table or family"))
        }
        guard let keyLength = s.u32(Attr.setKeyLength) else { return .failure(ParseFailure("set \(name) has no key length")) }
        let set = NftSet(name: name, flags: NftSet.Flags(rawValue: s.u32(Attr.setFlags) ?? 0), keyType: s.u32(Attr.setKeyType) ?? 0,
                         keyLength: keyLength, dataType: s.u32(Attr.setDataType), dataLength: s.u32(Attr.setDataLength),
                         fieldLengths: (s.data(Attr.setDescConcat) ?? []).map { UInt32($0) })
        return .success(ParsedSet(family: family, table: table, set: set, id: s.u32(Attr.setID)))
    }

    /// A NEWSETELEM message (a GETSETELEM dump reply): which set, and the elements it carries
    /// (as the kernel stores them: interval sets in start/end pairs).
    static func setElements(_ nlh: UnsafePointer<nlmsghdr>) -> Result<ParsedSetElements, ParseFailure> {
        guard let s = NftnlSet() else { return .failure(ParseFailure("libnftnl could not allocate a set")) }
        guard C.setElementsParse(nlh, s.raw) >= 0 else { return .failure(ParseFailure("libnftnl cannot parse this set element message")) }
        guard let name = s.string(Attr.setName), let table = s.string(Attr.setTable) else {
            return .failure(ParseFailure("the set element message names no set or table"))
        }
        var elements: [NftSetElement] = []
        for e in s.elements() {
            let flags = NftSetElement.Flags(rawValue: e.u32(Attr.setElementFlags) ?? 0)
            guard let key = e.data(Attr.setElementKey) ?? (flags.contains(.catchall) ? [] : nil) else {
                return .failure(ParseFailure("an element of set \(name) has no key"))
            }
            var element = NftSetElement(key: key, keyEnd: e.data(Attr.setElementKeyEnd), flags: flags, data: e.data(Attr.setElementData))
            if let raw = e.u32(Attr.setElementVerdict) {
                element.verdict = verdict(code: Int32(bitPattern: raw), chain: e.string(Attr.setElementChain))
            }
            elements.append(element)
        }
        return .success(ParsedSetElements(table: table, set: name, elements: elements, setID: s.u32(Attr.setID)))
    }

    /// The program form of a verdict code (nil for one it has no case for: `queue`, `break`).
    static func verdict(code: Int32, chain: String?) -> ImmediateExpression.Verdict? {
        switch code {
        case ImmediateExpression.Verdict.accept.code: .accept
        case ImmediateExpression.Verdict.drop.code: .drop
        case ImmediateExpression.Verdict.continue.code: .continue
        case ImmediateExpression.Verdict.return.code: .return
        case ImmediateExpression.Verdict.jump("").code: chain.map { .jump($0) }
        case ImmediateExpression.Verdict.goto("").code: chain.map { .goto($0) }
        default: nil
        }
    }

    static func generation(_ nlh: UnsafePointer<nlmsghdr>) -> UInt32? {
        guard let g = NftnlGen(), C.genParse(nlh, g.raw) >= 0 else { return nil }
        return C.genGetU32(g.raw, Attr.generationID)
    }
}

struct ParseFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
