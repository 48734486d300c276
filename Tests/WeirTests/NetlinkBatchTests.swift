import Foundation
import Testing
import WeirModel
import WeirNetlink
import WeirNftables

/// Programs built by hand with every expression kind, for the batch codec.
enum NetlinkSamples {
    /// A 16-byte NUL-padded interface name, as nft compares `iifname "docker0"`.
    static func ifname(_ name: String) -> [UInt8] {
        var bytes = Array(name.utf8)
        bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
        return bytes
    }

    static let reg9 = NftRegister(kernel: 9)

    /// Raw `NFTA_EXPR_DATA` of `lookup sreg 1 set "s"` with flags 2: NFTA_LOOKUP_SET (1) = "s\0", NFTA_LOOKUP_SREG (2) =
    /// be32 1, NFTA_LOOKUP_FLAGS (5) = be32 2 — a flag other than NFT_LOOKUP_F_INV, which the program form cannot hold.
    static let lookupAttributes: [UInt8] = [6, 0, 1, 0, 0x73, 0, 0, 0, 8, 0, 2, 0, 0, 0, 0, 1, 8, 0, 5, 0, 0, 0, 0, 2]
    /// Raw `NFTA_EXPR_DATA` of `masq` with NFTA_MASQ_FLAGS (1) = be32 4 (fully random): masq flags have no program form.
    static let masqFlagsAttributes: [UInt8] = [8, 0, 1, 0, 0, 0, 0, 4]

    static func opaque(_ name: String, _ attributes: [UInt8]) -> NftOpaqueExpression {
        NftOpaqueExpression(name: name, attributes: attributes, text: "", reason: "")
    }

    /// Every expression kind and every variant of each (registers, operators, verdicts).
    static var kitchenSink: NftRuleset {
        let docker0 = ifname("docker0")
        let forward = NftChain(name: "FORWARD", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: [
            NftRule([MetaExpression(.iifname), CmpExpression(.eq, docker0), MetaExpression(.oifname), CmpExpression(.neq, docker0),
                     CounterExpression(), ImmediateExpression.verdict(.accept)]),
            NftRule([CtExpression(.state), BitwiseExpression(mask: [6, 0, 0, 0]), CmpExpression(.neq, [0, 0, 0, 0]),
                     ImmediateExpression.verdict(.jump("DOCKER"))], comment: "established,related"),
            NftRule([PayloadExpression(.network, offset: 16, length: 4), CmpExpression(.eq, [172, 17, 0, 2]),
                     MetaExpression(.l4proto), CmpExpression(.eq, [6]),
                     PayloadExpression(.transport, offset: 2, length: 2, into: reg9), RangeExpression(.neq, from: [0x1f, 0x40], to: [0x1f, 0x90], source: reg9),
                     PayloadExpression(.transport, offset: 0, length: 2), CmpExpression(.gte, [0, 80]), CmpExpression(.lte, [0, 90]),
                     CmpExpression(.lt, [1, 0]), CmpExpression(.gt, [0, 1]), RangeExpression(.eq, from: [0, 1], to: [0, 2]),
                     ImmediateExpression.verdict(.goto("DOCKER"))]),
            NftRule([PayloadExpression(.network, offset: 12, length: 4), BitwiseExpression(mask: [255, 240, 0, 0], xor: [0, 0, 0, 0], source: .r1, destination: .r2),
                     CmpExpression(.eq, [10, 0, 0, 0], source: .r2), PayloadExpression(.link, offset: 6, length: 6),
                     MetaExpression(.mark), MetaExpression(.length), MetaExpression(.protocol), MetaExpression(.iif), MetaExpression(.oif),
                     MetaExpression(.nfproto), CtExpression(.direction), CtExpression(.status), CtExpression(.mark, into: .r2),
                     LogExpression(prefix: "weir: ", level: 6), RejectExpression(.icmpUnreachable, code: 3)],
                    comment: "a comment with spaces and ünïcode"),
            NftRule([LogExpression(prefix: nil, level: nil), LogExpression(prefix: "only prefix", level: nil), LogExpression(prefix: nil, level: 0),
                     RejectExpression(.tcpReset)]),
            NftRule([XtablesExpression(.match, name: "addrtype", revision: 1, info: [0, 0, 4, 0, 0, 0, 0, 0]),
                     XtablesExpression(.match, name: "conntrack", revision: 3, info: [UInt8](repeating: 0, count: 168)),
                     CounterExpression(packets: 7, bytes: 4242),
                     XtablesExpression(.target, name: "LOG", revision: 0, info: [4, 0] + Array("dk: ".utf8) + [UInt8](repeating: 0, count: 26))]),
            NftRule([ImmediateExpression.verdict(.continue), ImmediateExpression.verdict(.return), ImmediateExpression.verdict(.drop)]),
            NftRule([], comment: "no expressions"),
            NftRule([LookupExpression(set: "s", setID: 1), LookupExpression(set: "m", source: reg9, destination: .r2, invert: true, setID: 2),
                     opaque("lookup", lookupAttributes), opaque("masq", masqFlagsAttributes), ImmediateExpression.verdict(.accept)]),
        ])
        let docker = NftChain(name: "DOCKER", rules: [
            NftRule([FibExpression(flags: .daddr, result: .addressType), CmpExpression(.eq, [2, 0, 0, 0]), ImmediateExpression.verdict(.return)]),
            NftRule([FibExpression(flags: [.saddr, .iif], result: .oif, into: .r2), FibExpression(flags: [.daddr, .mark, .oif], result: .oifname)]),
        ])
        let prerouting = NftChain(name: "PREROUTING", base: NftBaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: [
            NftRule([ImmediateExpression(.data([172, 17, 0, 2]), into: .r1), ImmediateExpression(.data([0, 80]), into: .r2),
                     NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: .r1, protoMin: .r2, protoMax: .r2, flags: [.mapIPs, .protoSpecified])]),
            NftRule([ImmediateExpression(.data([10, 0, 0, 1]), into: .r1),
                     NatExpression(.snat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: [])]),
        ])
        let postrouting = NftChain(name: "POSTROUTING", base: NftBaseChain(type: .nat, hook: .postrouting, priority: 100, policy: .accept), rules: [
            NftRule([MasqExpression()]),
            NftRule([ImmediateExpression(.data([0x27, 0x10]), into: .r1), ImmediateExpression(.data([0x27, 0x20]), into: .r2),
                     MasqExpression(protoMin: .r1, protoMax: .r2)]),
        ])
        // The sets the lookups above name: a plain set and a data map (lookups carry their ids).
        let sets = [
            NftSet(name: "s", keyType: 7, keyLength: 4, elements: [NftSetElement(key: [10, 0, 0, 1]), NftSetElement(key: [10, 0, 0, 2])]),
            NftSet(name: "m", flags: .map, keyType: 13, keyLength: 2, dataType: 7, dataLength: 4,
                   elements: [NftSetElement(key: [0, 80], data: [172, 17, 0, 2])]),
        ]
        let ip = NftTable(family: .ipv4, name: "weir", chains: [forward, docker, prerouting, postrouting,
                                                                NftChain(name: "INPUT", base: NftBaseChain(type: .filter, hook: .input, priority: -150, policy: .accept)),
                                                                NftChain(name: "OUTPUT", base: NftBaseChain(type: .route, hook: .output, priority: -2147483648, policy: .accept))],
                          sets: sets)
        let ip6 = NftTable(family: .ipv6, name: "weir6", chains: [
            NftChain(name: "in", base: NftBaseChain(type: .filter, hook: .input, priority: 2147483647, policy: .drop), rules: [
                NftRule([PayloadExpression(.network, offset: 8, length: 16), CmpExpression(.eq, [0xfd] + [UInt8](repeating: 0, count: 14) + [1]),
                         RejectExpression(.icmpxUnreachable, code: 1)]),
                NftRule([ImmediateExpression(.data([UInt8](repeating: 0xab, count: 16)), into: .r1),
                         NatExpression(.dnat, family: .ipv6, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: [.mapIPs])]),
            ]),
        ])
        return NftRuleset(tables: [ip, ip6])
    }

    static var tiny: NftRuleset {
        NftRuleset(tables: [NftTable(family: .ipv4, name: "t", chains: [
            NftChain(name: "c", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: [
                NftRule([MetaExpression(.iifname), CmpExpression(.eq, ifname("docker0")), ImmediateExpression.verdict(.accept)], comment: "hi"),
            ]),
        ])])
    }
}

/// A damaged copy of a valid batch, and what decoding must say about it.
struct DamagedBatch: Sendable, CustomStringConvertible {
    var name: String
    var kind: NftBatchError.Kind
    /// The offset the error must name (nil: not checked), computed from the intact batch.
    var offset: @Sendable (NftBatch) -> Int?
    var message: String
    var damage: @Sendable (NftBatch) -> [UInt8]
    var description: String { name }
}

/// Byte surgery on batches.
enum Damage {
    static func setU16(_ bytes: inout [UInt8], _ at: Int, _ value: UInt16) {
        bytes[at] = UInt8(value & 0xff)
        bytes[at + 1] = UInt8(value >> 8)
    }
    static func setU32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8(value >> (8 * UInt32(i)) & 0xff) }
    }
    /// The tiny batch's messages: 0 BEGIN, 1 NEWTABLE, 2 DELTABLE, 3 NEWTABLE excl, 4 NEWCHAIN, 5 NEWRULE, 6 END.
    static func edit(_ batch: NftBatch, _ body: (inout [UInt8], [NftBatch.Message]) -> Void) -> [UInt8] {
        var bytes = batch.bytes
        body(&bytes, batch.messages)
        return bytes
    }
    static func without(_ batch: NftBatch, _ indices: Int...) -> [UInt8] {
        var out: [UInt8] = []
        for (i, m) in batch.messages.enumerated() where !indices.contains(i) { out += batch.bytes[m.offset..<(m.offset + m.length)] }
        return out
    }

    static let cases: [DamagedBatch] = [
        DamagedBatch(name: "empty", kind: .empty, offset: { _ in 0 }, message: "the batch is empty", damage: { _ in [] }),
        DamagedBatch(name: "cut inside the last message", kind: .truncated, offset: { $0.messages[6].offset },
                     message: "15 byte(s) left, too few for a netlink message header (16)",
                     damage: { Array($0.bytes.dropLast(5)) }),
        DamagedBatch(name: "a message longer than what is left", kind: .truncated, offset: { $0.messages[5].offset },
                     message: "message length 192 runs past the end: only 40 byte(s) remain",
                     damage: { Array($0.bytes.prefix($0.messages[5].offset + 40)) }),
        DamagedBatch(name: "cut inside a header", kind: .truncated, offset: { $0.messages[1].offset },
                     message: "10 byte(s) left, too few for a netlink message header (16)",
                     damage: { Array($0.bytes.prefix($0.messages[1].offset + 10)) }),
        DamagedBatch(name: "no BATCH_END", kind: .missingEnd, offset: { $0.messages[6].offset },
                     message: "the batch ends without BATCH_END (an unfinished batch)",
                     damage: { Array($0.bytes.prefix($0.messages[6].offset)) }),
        DamagedBatch(name: "trailing garbage", kind: .trailingBytes, offset: { $0.bytes.count },
                     message: "4 byte(s) follow BATCH_END", damage: { $0.bytes + [0xde, 0xad, 0xbe, 0xef] }),
        DamagedBatch(name: "a second BATCH_END", kind: .trailingBytes, offset: { $0.bytes.count },
                     message: "20 byte(s) follow BATCH_END", damage: { $0.bytes + $0.bytes.suffix(20) }),
        DamagedBatch(name: "no BATCH_BEGIN", kind: .missingBegin, offset: { _ in 0 },
                     message: "the batch starts with NEWTABLE, not BATCH_BEGIN", damage: { Damage.without($0, 0) }),
        DamagedBatch(name: "length not a multiple of 4", kind: .badLength, offset: { $0.messages[1].offset },
                     message: "message length 27 is not a multiple of 4 (NLMSG_ALIGNTO)",
                     damage: { Damage.edit($0) { b, m in Damage.setU32(&b, m[1].offset, UInt32(m[1].length - 1)) } }),
        DamagedBatch(name: "length shorter than the headers", kind: .badLength, offset: { $0.messages[2].offset },
                     message: "message length 8 is shorter than a header with nfgenmsg (20)",
                     damage: { Damage.edit($0) { b, m in Damage.setU32(&b, m[2].offset, 8) } }),
        DamagedBatch(name: "length far past the end", kind: .truncated, offset: { $0.messages[3].offset }, message: "",
                     damage: { Damage.edit($0) { b, m in Damage.setU32(&b, m[3].offset, 0xffff_0000) } }),
        DamagedBatch(name: "unknown nf_tables message", kind: .unknownType, offset: { $0.messages[4].offset },
                     message: "message type 0xa01 is not BATCH_BEGIN, BATCH_END, NEWTABLE, DELTABLE, NEWCHAIN, NEWSET, NEWSETELEM or NEWRULE",
                     damage: { Damage.edit($0) { b, m in Damage.setU16(&b, m[4].offset + 4, 0x0a01) } }),
        DamagedBatch(name: "another subsystem", kind: .wrongSubsystem, offset: { $0.messages[4].offset },
                     message: "message type 0xb03 belongs to nfnetlink subsystem 11, not nf_tables (10)",
                     damage: { Damage.edit($0) { b, m in Damage.setU16(&b, m[4].offset + 4, 0x0b03) } }),
        DamagedBatch(name: "BATCH_BEGIN for another subsystem", kind: .wrongSubsystem, offset: { _ in 0 },
                     message: "BATCH_BEGIN addresses subsystem 11, not nf_tables (10)",
                     damage: { Damage.edit($0) { b, _ in b[19] = 11 } }),
        DamagedBatch(name: "a second BATCH_BEGIN", kind: .missingBegin, offset: { $0.messages[2].offset },
                     message: "a second BATCH_BEGIN (seq 3) inside the batch",
                     damage: { Damage.edit($0) { b, m in Damage.setU16(&b, m[2].offset + 4, 0x10) } }),
        DamagedBatch(name: "sequence numbers not increasing", kind: .sequence, offset: { $0.messages[3].offset },
                     message: "sequence number 3 does not increase (the previous message has 3)",
                     damage: { Damage.edit($0) { b, m in Damage.setU32(&b, m[3].offset + 8, 3) } }),
        DamagedBatch(name: "not a request", kind: .flags, offset: { $0.messages[4].offset },
                     message: "NEWCHAIN (seq 5) lacks NLM_F_REQUEST",
                     damage: { Damage.edit($0) { b, m in b[m[4].offset + 6] &= ~1 } }),
        DamagedBatch(name: "attribute running past its message", kind: .malformedAttributes, offset: { $0.messages[5].offset + 20 },
                     message: "in NEWRULE (seq 6): attribute of 200 bytes runs 28 byte(s) past the end of its container",
                     damage: { Damage.edit($0) { b, m in Damage.setU16(&b, m[5].offset + 20, 200) } }),
        DamagedBatch(name: "DELTABLE before NEWTABLE", kind: .order, offset: { $0.messages[1].offset },
                     message: "DELTABLE (seq 2): DELTABLE ip t is not preceded by NEWTABLE (create) of the same table",
                     damage: { Damage.edit($0) { b, m in Damage.setU16(&b, m[1].offset + 4, 0x0a02) } }),
        DamagedBatch(name: "a rule without NLM_F_APPEND", kind: .flags, offset: { $0.messages[5].offset },
                     message: "NEWRULE (seq 6): flags 0x401 lack NLM_F_CREATE|NLM_F_APPEND; without APPEND the kernel inserts the rule at the head of its chain",
                     damage: { Damage.edit($0) { b, m in b[m[5].offset + 7] &= ~0x08 } }),
        DamagedBatch(name: "a rule for a chain the batch does not create", kind: .order, offset: { $0.messages[5].offset - $0.messages[4].length },
                     message: "NEWRULE (seq 6): the rule's chain c is not created earlier in the batch", damage: { Damage.without($0, 4) }),
        DamagedBatch(name: "a chain of the inet family", kind: .content, offset: { $0.messages[4].offset },
                     message: "NEWCHAIN (seq 5): family inet is not ip or ip6",
                     damage: { Damage.edit($0) { b, m in b[m[4].offset + 16] = 1 } }),
        DamagedBatch(name: "ends inside a table replacement", kind: .order, offset: { $0.messages[3].offset },
                     message: "BATCH_END (seq 7): the batch ends inside the replacement of a table", damage: { Damage.without($0, 3, 4, 5) }),
        DamagedBatch(name: "excl create without the ensure step", kind: .flags, offset: { $0.messages[1].offset },
                     message: "NEWTABLE (seq 2): flags 0x601; a replace batch uses NLM_F_REQUEST|NLM_F_CREATE here",
                     damage: { Damage.edit($0) { b, m in b[m[1].offset + 7] |= 0x02 } }),
    ]
}

/// The batch codec without root: encode → decode round trips, deterministic bytes, the message
/// index, libnftnl's view of the bytes, the C call sequence, and rejection of damaged files.
@Suite struct NetlinkBatchTests {
    @Test func everyExpressionKindRoundTrips() throws {
        let program = NetlinkSamples.kitchenSink
        let batch = try NftBatch.replacing(program)
        let decoded = try NftBatch(decoding: batch.bytes)
        #expect(decoded.program == program)
        #expect(decoded.messages == batch.messages)
        #expect(decoded.bytes == batch.bytes)
        #expect(try NftBatch.replacing(decoded.program).bytes == batch.bytes)
        // Every kind of the program form occurs (and the opaque kind).
        let kinds = Set(program.tables.flatMap { $0.chains.flatMap { $0.rules.flatMap { $0.expressions.map { type(of: $0).kind } } } })
        #expect(kinds == ["meta", "payload", "cmp", "bitwise", "range", "ct", "fib", "immediate", "nat", "masq", "reject", "log",
                          "counter", "xt", "lookup", "opaque"])
        // Expressions libnftnl parses but the program form cannot hold stay opaque, with libnftnl's text.
        let opaque = decoded.program.tables[0].chains[0].rules[8].expressions.compactMap { $0 as? NftOpaqueExpression }
        #expect(opaque.map(\.text) == ["[ lookup reg 1 set s 0x2 ]", "[ masq flags 0x4 ]"])
        #expect(opaque.map(\.reason) == ["lookup with flags 0x2 has no program form", "masq with flags 0x4 has no program form"])
    }

    @Test func bytesAreDeterministicAndMatchTheGolden() throws {
        let first = try NftBatch.replacing(NetlinkSamples.tiny)
        #expect(try NftBatch.replacing(NetlinkSamples.tiny).bytes == first.bytes)
        #expect(try NftBatch.replacing(NetlinkSamples.kitchenSink).bytes == (try NftBatch.replacing(NetlinkSamples.kitchenSink)).bytes)
        #expect(first.messages.map(\.seq) == Array(1...7))
        let hex = first.bytes.map { String(format: "%02x", $0) }.joined()
        #expect(hex == """
            1c0000001000010001000000000000000000000a08000100000000001c000000000a010402000000000000000200000006000100740000001c00000002\
            0a010003000000000000000200000006000100740000001c000000000a010604000000000000000200000006000100740000004c000000030a01060500\
            0000000000000200000006000100740000000600030063000000140004800800010000000002080002000000000008000500000000000b00070066696c\
            7465720000c0000000060a010c060000000000000002000000060001007400000006000200630000009000048024000180090001006d6574610000000014\
            000280080002000000000608000100000000013800018008000100636d70002c000280080001000000000108000200000000001800038014000100646f63\
            6b657230000000000000000000300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c000280080001000000000109\
            0007000003686900000000140000001100010007000000000000000000000a
            """)
        #expect(first.explain() == """
            seq 1 BATCH_BEGIN genid 0 (not checked)
            seq 2 NEWTABLE ip t create
            seq 3 DELTABLE ip t
            seq 4 NEWTABLE ip t create excl
            seq 5 NEWCHAIN ip t c type filter hook forward prio 0 policy drop
            seq 6 NEWRULE ip t c #0 [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ] [ immediate reg 0 accept ] comment "hi"
            seq 7 BATCH_END

            """)
    }

    /// libnftnl reads every rule message back to the same debug text the program's expressions
    /// print (`description`): Weir's notation is libnftnl's.
    @Test func explainIsLibnftnlsViewOfTheProgram() throws {
        let batch = try NftBatch.replacing(NetlinkSamples.kitchenSink)
        let lines = batch.explain().split(separator: "\n").map(String.init)
        #expect(lines.count == batch.messages.count)
        for (line, message) in zip(lines, batch.messages) where message.kind == .newRule {
            let rule = try #require(batch.rule(for: message))
            let decoded = try NftBatch(decoding: batch.bytes).rule(for: message)!
            var expected = "seq \(message.seq) NEWRULE \(message.family!.rawValue) \(message.table!) \(message.chain!) #\(message.ruleIndex!)"
            for (original, back) in zip(rule.expressions, decoded.expressions) {
                // Opaque expressions built by hand carry no text; their decoded twins carry libnftnl's.
                let text = original is NftOpaqueExpression ? back.description : original.description
                expected += " " + text
            }
            if let comment = rule.comment { expected += " comment \"\(comment)\"" }
            #expect(line == expected)
        }
    }

    @Test func theMessageIndexMapsSequenceNumbersBack() throws {
        let batch = try NftBatch.replacing(NetlinkSamples.kitchenSink)
        #expect(batch.messages.first?.kind == .batchBegin)
        #expect(batch.messages.last?.kind == .batchEnd)
        #expect(batch.messages.map(\.seq) == Array(1...UInt32(batch.messages.count)))
        #expect(batch.messages.map(\.kind.rawValue).prefix(6) == ["BATCH_BEGIN", "NEWTABLE", "DELTABLE", "NEWTABLE", "NEWCHAIN", "NEWCHAIN"])
        // 1 BATCH_BEGIN, 2–4 the table, 5–10 its chains, 11–14 its two sets and their elements.
        #expect(batch.messages[10...13].map(\.description) == ["NEWSET ip weir s", "NEWSETELEM ip weir s elements 0…1",
                                                              "NEWSET ip weir m", "NEWSETELEM ip weir m elements 0"])
        let rule = try #require(batch.message(seq: 17))
        #expect(rule.description == "NEWRULE ip weir FORWARD rule #2")
        #expect(rule.flags == 0x0c01)
        #expect(batch.rule(for: rule) == NetlinkSamples.kitchenSink.tables[0].chains[0].rules[2])
        let chain = try #require(batch.message(seq: 33))
        #expect(chain.description == "NEWCHAIN ip6 weir6 in")
        #expect(batch.message(seq: 0) == nil)
        #expect(batch.message(seq: 1000) == nil)
        // Offsets and lengths tile the bytes.
        var at = 0
        for message in batch.messages {
            #expect(message.offset == at)
            at += message.length
        }
        #expect(at == batch.bytes.count)
    }

    @Test func theGenerationIsPatchedIntoACopy() throws {
        let batch = try NftBatch.replacing(NetlinkSamples.tiny)
        let guarded = batch.bytes(guardedBy: 0x0102_0304)
        #expect(Array(guarded[24..<28]) == [1, 2, 3, 4])
        #expect(guarded.count == batch.bytes.count)
        #expect(Array(batch.bytes[24..<28]) == [0, 0, 0, 0])
        #expect(try NftBatch(decoding: guarded).explain().hasPrefix("seq 1 BATCH_BEGIN genid 16909060\n"))

        // A batch file whose BATCH_BEGIN has no NFNL_BATCH_GENID gets a new BATCH_BEGIN.
        var bare = batch.bytes
        bare.removeSubrange(20..<28)
        Damage.setU32(&bare, 0, 20)
        let decoded = try NftBatch(decoding: bare)
        #expect(decoded.program == NetlinkSamples.tiny)
        #expect(decoded.explain().hasPrefix("seq 1 BATCH_BEGIN\n"))
        #expect(decoded.bytes(guardedBy: 0x0102_0304) == guarded)
    }

    @Test func theCallRecorderSeesEveryCCall() throws {
        let recorder = CallRecorder()
        _ = try NftBatch.replacing(NetlinkSamples.tiny)
        #expect(recorder.calls.isEmpty, "recording is off until a recorder is installed")
        _ = try recorder.record { try NftBatch.replacing(NetlinkSamples.tiny) }
        let table = ["nftnl_table_alloc", "nftnl_table_set_str", "nftnl_table_set_u32", "nftnl_nlmsg_build_hdr",
                     "nftnl_table_nlmsg_build_payload", "nftnl_table_free"]
        let expression = { (sets: [String]) in
            ["mnl_attr_nest_start", "nftnl_expr_alloc"] + sets + ["nftnl_expr_build_payload", "nftnl_expr_free", "mnl_attr_nest_end"]
        }
        let expected = ["nftnl_batch_begin", "mnl_attr_put_u32"] + table + table + table
            + ["nftnl_chain_alloc", "nftnl_chain_set_str", "nftnl_chain_set_str", "nftnl_chain_set_u32", "nftnl_chain_set_u32",
               "nftnl_chain_set_s32", "nftnl_chain_set_str", "nftnl_chain_set_u32", "nftnl_nlmsg_build_hdr",
               "nftnl_chain_nlmsg_build_payload", "nftnl_chain_free"]
            + ["nftnl_rule_alloc", "nftnl_rule_set_str", "nftnl_rule_set_str", "nftnl_rule_set_u32", "nftnl_nlmsg_build_hdr",
               "nftnl_rule_nlmsg_build_payload", "mnl_attr_nest_start"]
            + expression(["nftnl_expr_set_u32", "nftnl_expr_set_u32"])
            + expression(["nftnl_expr_set_u32", "nftnl_expr_set_u32", "nftnl_expr_set"])
            + expression(["nftnl_expr_set_u32", "nftnl_expr_set_u32"])
            + ["mnl_attr_nest_end", "nftnl_udata_buf_alloc", "nftnl_udata_put_strz", "nftnl_udata_buf_data", "nftnl_udata_buf_len",
               "mnl_attr_put", "nftnl_udata_buf_free", "nftnl_rule_free", "nftnl_batch_end"]
        #expect(recorder.calls == expected)
        // Every allocation is freed.
        for kind in ["table", "chain", "rule", "expr", "udata_buf"] {
            let allocs = recorder.calls.filter { $0 == "nftnl_\(kind)_alloc" }.count
            #expect(allocs == recorder.calls.filter { $0 == "nftnl_\(kind)_free" }.count, "\(kind)")
        }
    }

    @Test func decodingParsesWithLibnftnlAndFreesEverything() throws {
        let batch = try NftBatch.replacing(NetlinkSamples.kitchenSink)
        let recorder = CallRecorder()
        _ = try recorder.record { try NftBatch(decoding: batch.bytes) }
        let calls = recorder.calls
        #expect(calls.filter { $0 == "nftnl_rule_nlmsg_parse" }.count == batch.messages.filter { $0.kind == .newRule }.count)
        #expect(calls.filter { $0 == "nftnl_chain_nlmsg_parse" }.count == batch.messages.filter { $0.kind == .newChain }.count)
        #expect(calls.filter { $0 == "nftnl_rule_alloc" }.count == calls.filter { $0 == "nftnl_rule_free" }.count)
        #expect(!calls.contains { $0.hasPrefix("mnl_socket") || $0 == "recv" || $0 == "setns" })
    }

    @Test(arguments: Damage.cases)
    func damagedBatchesAreRejectedBeforeAnythingIsSent(_ damaged: DamagedBatch) throws {
        let intact = try NftBatch.replacing(NetlinkSamples.tiny)
        let bytes = damaged.damage(intact)
        let recorder = CallRecorder()
        let error = recorder.record { #expect(throws: NftBatchError.self) { try NftBatch(decoding: bytes) } }
        guard let error else { return }
        #expect(error.kind == damaged.kind)
        if let offset = damaged.offset(intact) { #expect(error.offset == offset) }
        if !damaged.message.isEmpty { #expect(error.message == damaged.message, "\(error)") }
        #expect(error.description.hasPrefix("batch byte \(error.offset ?? -1): "))
        #expect(!recorder.calls.contains { $0.hasPrefix("mnl_socket") })
        if [.empty, .truncated, .badLength, .missingEnd, .trailingBytes, .missingBegin, .sequence, .unknownType].contains(error.kind) {
            #expect(recorder.calls.isEmpty, "framing is checked in Swift before libnftnl parses anything")
        }
    }

    @Test func programsThatCannotBeEncodedFaithfullyAreRefused() throws {
        func refused(_ program: NftRuleset, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let error = #expect(throws: NftBatchError.self, sourceLocation: sourceLocation) { try NftBatch.replacing(program) }
            #expect(error?.kind == .unencodable, sourceLocation: sourceLocation)
            #expect(error?.offset == nil, sourceLocation: sourceLocation)
            #expect(error?.message == message, sourceLocation: sourceLocation)
        }
        func chain(_ rules: [NftRule], name: String = "c") -> NftRuleset {
            NftRuleset(tables: [NftTable(family: .ipv4, name: "t", chains: [NftChain(name: name, rules: rules)])])
        }
        refused(NftRuleset(tables: [NftTable(family: .ipv4, name: "t"), NftTable(family: .ipv4, name: "t")]),
                "table ip t appears twice in the program")
        refused(NftRuleset(tables: [NftTable(family: .ipv4, name: "a\u{0}b")]), "table name 'a\u{0}b' must be 1 to 255 bytes without NUL (NFT_NAME_MAXLEN)")
        refused(NftRuleset(tables: [NftTable(family: .ipv4, name: String(repeating: "x", count: 256))]),
                "table name '\(String(repeating: "x", count: 256))' must be 1 to 255 bytes without NUL (NFT_NAME_MAXLEN)")
        refused(chain([], name: ""), "chain name '' must be 1 to 255 bytes without NUL (NFT_NAME_MAXLEN)")
        refused(chain([NftRule([], comment: String(repeating: "c", count: 254))]),
                "rule #0 of chain ip t c: the comment is 254 bytes long; at most 253 fit")
        refused(chain([NftRule([CmpExpression(.eq, [UInt8](repeating: 1, count: 65))])]),
                "rule #0 of chain ip t c: expression #0 (cmp): cmp data has 65 bytes; a data value holds at most 64 (NFT_DATA_VALUE_MAXLEN)")
        refused(chain([NftRule([CounterExpression(), XtablesExpression(.match, name: String(repeating: "m", count: 29), revision: 0, info: [])])]),
                "rule #0 of chain ip t c: expression #1 (match): the x_tables extension name '\(String(repeating: "m", count: 29))' is 29 bytes long; at most 28 fit")
        refused(chain([NftRule([ImmediateExpression.verdict(.jump("x\u{0}"))])]),
                "rule #0 of chain ip t c: expression #0 (immediate): the chain name 'x\u{0}' contains a NUL byte")
        refused(chain([NftRule([BitwiseExpression(mask: [1, 2], xor: [1])])]),
                "rule #0 of chain ip t c: expression #0 (bitwise): bitwise mask (2 bytes) and xor (1 bytes) differ in length")
        refused(chain([NftRule([Unsupported()])]), "rule #0 of chain ip t c: expression #0: kind 'unsupported' has no netlink encoding")
    }

    @Test func aFailedTableLeavesTheBuilderAsItWas() throws {
        var builder = NftBatchBuilder()
        try builder.replace(NetlinkSamples.tiny.tables[0])
        let bad = NftTable(family: .ipv4, name: "bad", chains: [NftChain(name: "c", rules: [NftRule([Unsupported()])])])
        #expect(throws: NftBatchError.self) { try builder.replace(bad) }
        let batch = builder.finish()
        #expect(batch == (try NftBatch.replacing(NetlinkSamples.tiny)))
        #expect(batch.program == NetlinkSamples.tiny)
    }
}

/// An expression kind WeirNetlink has no encoder for.
struct Unsupported: NftExpression, Equatable {
    static let kind = "unsupported"
    var description: String { "[ unsupported ]" }
}

