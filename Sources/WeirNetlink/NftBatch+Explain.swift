import CNftnl
import WeirModel
import WeirNftables

extension NftBatch {
    /// The batch in words, one line per message: sequence number, message type, what it
    /// touches, and for rules each expression in libnftnl's debug notation (what
    /// `nft --debug=netlink` prints), read back from the bytes by libnftnl itself:
    ///
    ///     seq 1 BATCH_BEGIN genid 0 (not checked)
    ///     seq 2 NEWTABLE ip weir create
    ///     seq 3 DELTABLE ip weir
    ///     seq 4 NEWTABLE ip weir create excl
    ///     seq 5 NEWCHAIN ip weir FORWARD type filter hook forward prio 0 policy drop
    ///     seq 6 NEWRULE ip weir FORWARD #0 [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ] [ immediate reg 0 accept ]
    ///     seq 7 BATCH_END
    ///
    /// Sets and their elements as libnftnl prints them (`nftnl_set_snprintf`: name, table,
    /// flags in hex, size; `nftnl_set_elem_snprintf`: key words, ` - ` key end, ` : ` data
    /// words or verdict, element flags, `[end]`), after what libnftnl's set text leaves out
    /// (transaction id, key and data type and length, concatenated field lengths):
    ///
    ///     seq 5 NEWSET ip weir-nat __map0 id 1 [ __map0 weir-nat b size 1 ] key type 0x730d len 12 data type 0x1cd len 8
    ///     seq 6 NEWSETELEM ip weir-nat __map0 elements 0 id 1 [ element 7903000a 00000006 00006027  : 020011ac 00005000 0 [end] ]
    public func explain() -> String {
        var lines: [String] = []
        lines.reserveCapacity(messages.count)
        bytes.withUnsafeBytes { raw in
            for message in messages {
                var line = "seq \(message.seq) \(message.kind.rawValue)"
                let nlh = ObjectParser.header(raw, message.offset)
                switch message.kind {
                case .batchBegin:
                    if let generationOffset {
                        let genid = bytes.u32BigEndian(at: generationOffset)
                        line += " genid \(genid)" + (genid == 0 ? " (not checked)" : "")
                    }
                case .batchEnd:
                    break
                case .newTable, .deleteTable:
                    line += " \(message.family?.rawValue ?? "?") \(message.table ?? "?")"
                    if message.flags & Netlink.Flag.create != 0 { line += " create" }
                    if message.flags & Netlink.Flag.exclusive != 0 { line += " excl" }
                case .newChain:
                    line += " \(message.family?.rawValue ?? "?") \(message.table ?? "?") \(message.chain ?? "?")"
                    if case .success(let parsed) = ObjectParser.chain(nlh), let base = parsed.chain.base {
                        line += " type \(base.type.rawValue) hook \(base.hook.nftName) prio \(base.priority) policy \(base.policy == .accept ? "accept" : "drop")"
                    }
                case .newSet:
                    line += " \(message.family?.rawValue ?? "?") \(message.table ?? "?") \(message.set ?? "?")"
                    if let s = NftnlSet(), C.setParse(nlh, s.raw) >= 0 {
                        if let id = s.u32(Attr.setID) { line += " id \(id)" }
                        line += " [ \(s.debugText) ]"
                        line += " key type 0x\(String(s.u32(Attr.setKeyType) ?? 0, radix: 16)) len \(s.u32(Attr.setKeyLength) ?? 0)"
                        if let type = s.u32(Attr.setDataType) {
                            line += " data type 0x\(String(type, radix: 16))" + (s.u32(Attr.setDataLength).map { " len \($0)" } ?? "")
                        }
                        if let fields = s.data(Attr.setDescConcat), !fields.isEmpty {
                            line += " concat " + fields.map(String.init).joined(separator: ",")
                        }
                    } else {
                        line += " (libnftnl cannot parse it)"
                    }
                case .newSetElement:
                    line += " \(message.family?.rawValue ?? "?") \(message.table ?? "?") \(message.set ?? "?")"
                    if let elements = message.elements { line += " elements \(Message.describe(elements))" }
                    if let s = NftnlSet(), C.setElementsParse(nlh, s.raw) >= 0 {
                        if let id = s.u32(Attr.setID) { line += " id \(id)" }
                        for e in s.elements() { line += " [ \(e.debugText) ]" }
                    } else {
                        line += " (libnftnl cannot parse it)"
                    }
                case .newRule:
                    line += " \(message.family?.rawValue ?? "?") \(message.table ?? "?") \(message.chain ?? "?") #\(message.ruleIndex ?? 0)"
                    if let r = NftnlRule(), C.ruleParse(nlh, r.raw) >= 0 {
                        for e in r.expressions() { line += " " + e.debugText }
                        if case .success(let comment?) = ObjectParser.userdataComment(r.data(Attr.ruleUserdata)) {
                            line += " comment \"\(comment)\""
                        }
                    } else {
                        line += " (libnftnl cannot parse it)"
                    }
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
