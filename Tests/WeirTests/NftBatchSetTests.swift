import Foundation
import Testing
import WeirDiagnostics
import WeirModel
import WeirNetlink
import WeirNftables

/// Programs with sets and maps, as the lowering writes them (anonymous constant sets with
/// concatenated keys, data maps for DNAT, verdict maps), plus interval sets.
enum BatchSetSamples {
    static let reg9 = NftRegister(kernel: 9)
    static let reg10 = NftRegister(kernel: 10)
    /// nft's type id of `ipv4_addr . inet_proto . inet_service`.
    static let addressProtocolPort: UInt32 = (7 << 6 | 12) << 6 | 13
    /// nft's type id of `ipv4_addr . inet_service`.
    static let addressPort: UInt32 = 7 << 6 | 13

    static func address(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    static func port(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff)] }
    /// A concatenated key: each field padded to 4 bytes.
    static func padded(_ fields: [UInt8]...) -> [UInt8] {
        fields.flatMap { $0 + [UInt8](repeating: 0, count: (4 - $0.count % 4) % 4) }
    }
    static func tuple(_ address: String, _ proto: UInt8, _ port: UInt16) -> [UInt8] {
        padded(Self.address(address), [proto], Self.port(port))
    }

    /// `ip daddr . meta l4proto . th dport { 172.17.0.2 . tcp . 80, 172.17.0.3 . udp . 5353 }`
    static var accepted: NftSet {
        NftSet(name: "__set0", flags: [.anonymous, .constant], keyType: addressProtocolPort, keyLength: 12, elements: [
            NftSetElement(key: tuple("172.17.0.2", 6, 80)), NftSetElement(key: tuple("172.17.0.3", 17, 5353)),
        ])
    }

    /// `ip daddr . meta l4proto . th dport map { 10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80, … }`
    static func dnat(count: Int = 2) -> NftSet {
        let fixed = [
            NftSetElement(key: tuple("10.0.3.121", 6, 10080), data: padded(address("172.17.0.2"), port(80))),
            NftSetElement(key: tuple("10.0.3.121", 17, 53), data: padded(address("172.17.0.3"), port(5353))),
        ]
        // More: host ports 20000… to containers 172.18.x.y:80.
        let more = (0..<max(0, count - 2)).map { (i: Int) -> NftSetElement in
            let key: [UInt8] = tuple("10.0.3.121", 6, UInt16(20000 + i))
            let target: [UInt8] = [172, 18, UInt8(i >> 8), UInt8(i & 0xff)]
            return NftSetElement(key: key, data: padded(target, port(80)))
        }
        return NftSet(name: "__map0", flags: [.anonymous, .constant, .map], keyType: addressProtocolPort, keyLength: 12,
                      dataType: addressPort, dataLength: 8, elements: Array((fixed + more).prefix(count)))
    }

    /// `ip saddr vmap { 10.0.0.1 : accept, 10.0.0.2 : jump DOCKER, 10.0.0.3 : goto DOCKER, 10.0.0.4 : drop }`
    static var verdicts: NftSet {
        NftSet(name: "__map1", flags: [.anonymous, .constant, .map], keyType: 7, keyLength: 4, dataType: 0xffff_ff00, elements: [
            NftSetElement(key: [10, 0, 0, 1], verdict: .accept), NftSetElement(key: [10, 0, 0, 2], verdict: .jump("DOCKER")),
            NftSetElement(key: [10, 0, 0, 3], verdict: .goto("DOCKER")), NftSetElement(key: [10, 0, 0, 4], verdict: .drop),
        ])
    }

    /// `ip saddr { 10.0.0.0/8, 192.168.1.1, 255.0.0.0/8 }` (rbtree: start/end pairs; the last
    /// range reaches the top and has no end element).
    static var ranges: NftSet {
        NftSet(name: "__set1", flags: [.anonymous, .constant, .interval], keyType: 7, keyLength: 4, elements: [
            NftSetElement(key: [10, 0, 0, 0], keyEnd: [10, 255, 255, 255]),
            NftSetElement(key: [192, 168, 1, 1], keyEnd: [192, 168, 1, 1]),
            NftSetElement(key: [255, 0, 0, 0], keyEnd: [255, 255, 255, 255]),
        ])
    }

    /// `ip saddr . tcp dport { 10.0.0.0/8 . 22-25, 192.168.1.1 . 80 }` (pipapo: ranges with a key end).
    static var concatenatedRanges: NftSet {
        NftSet(name: "__set2", flags: [.anonymous, .constant, .interval, .concatenated], keyType: addressPort, keyLength: 8,
               fieldLengths: [4, 2], elements: [
                   NftSetElement(key: padded([10, 0, 0, 0], port(22)), keyEnd: padded([10, 255, 255, 255], port(25))),
                   NftSetElement(key: padded([192, 168, 1, 1], port(80)), keyEnd: padded([192, 168, 1, 1], port(80))),
               ])
    }

    static func loads() -> [any NftExpression] {
        [PayloadExpression(.network, offset: 16, length: 4), MetaExpression(.l4proto, into: reg9),
         PayloadExpression(.transport, offset: 2, length: 2, into: reg10)]
    }

    /// One table using every sample set, sets in the order `accepted, dnat, verdicts, ranges,
    /// concatenatedRanges` (ids 1–5).
    static func program(dnatCount: Int = 2, provenance: SourceRange? = nil) -> NftRuleset {
        var sets = [accepted, dnat(count: dnatCount), verdicts, ranges, concatenatedRanges]
        sets[1].provenance = provenance
        let filter = NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop)
        let nat = NftBaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept)
        return NftRuleset(tables: [NftTable(family: .ipv4, name: "weir-nat", chains: [
            NftChain(name: "PREROUTING", base: nat, rules: [
                NftRule(loads() + [LookupExpression(set: "__map0", source: .r1, destination: .r1, setID: 2),
                                   NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: reg9, protoMax: nil, flags: [])],
                        provenance: provenance),
            ]),
            NftChain(name: "FORWARD", base: filter, rules: [
                NftRule(loads() + [LookupExpression(set: "__set0", setID: 1), ImmediateExpression.verdict(.accept)]),
                NftRule([PayloadExpression(.network, offset: 12, length: 4), LookupExpression(set: "__map1", destination: .verdict, setID: 3)]),
                NftRule([PayloadExpression(.network, offset: 12, length: 4), LookupExpression(set: "__set1", setID: 4),
                         ImmediateExpression.verdict(.drop)]),
                NftRule([MetaExpression(.l4proto), CmpExpression(.eq, [6]), PayloadExpression(.network, offset: 12, length: 4),
                         PayloadExpression(.transport, offset: 2, length: 2, into: reg9), LookupExpression(set: "__set2", setID: 5),
                         ImmediateExpression.verdict(.accept)]),
            ]),
            NftChain(name: "DOCKER", rules: [NftRule([CounterExpression(), ImmediateExpression.verdict(.return)])]),
        ], sets: sets)])
    }

    /// A small table with one concatenated set and one map, for the explain golden.
    static var small: NftRuleset {
        NftRuleset(tables: [NftTable(family: .ipv4, name: "weir-nat", chains: [
            NftChain(name: "PREROUTING", base: NftBaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: [
                NftRule(loads() + [LookupExpression(set: "__map0", source: .r1, destination: .r1, setID: 2),
                                   NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: reg9, protoMax: nil, flags: [])]),
            ]),
            NftChain(name: "FORWARD", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: [
                NftRule(loads() + [LookupExpression(set: "__set0", setID: 1), ImmediateExpression.verdict(.accept)]),
            ]),
        ], sets: [accepted, dnat()])])
    }
}

/// Writing sets and maps into batches, without root: round trips through the decoder, the
/// message layout and chunking, libnftnl's view (explain), the C calls, the checks that refuse
/// what the kernel would refuse, and the rejection of damaged set messages.
@Suite struct NftBatchSetTests {
    typealias S = BatchSetSamples

    /// A table with only `set` and a rule looking it up (a map lookup for maps).
    static func single(_ set: NftSet, chains: [NftChain] = []) -> NftRuleset {
        let lookup = LookupExpression(set: set.name, destination: set.dataType == 0xffff_ff00 ? .verdict : (set.isMap ? .r1 : nil), setID: 1)
        return NftRuleset(tables: [NftTable(family: .ipv4, name: "t", chains: [
            NftChain(name: "c", base: NftBaseChain(type: .filter, hook: .input, priority: 0, policy: .accept), rules: [
                NftRule([PayloadExpression(.network, offset: 12, length: 4), lookup, CounterExpression()]),
            ]),
        ] + chains, sets: [set])])
    }

    static let docker = NftChain(name: "DOCKER", rules: [NftRule([ImmediateExpression.verdict(.return)])])

    static let roundTripCases: [(String, NftRuleset)] = [
        ("a plain set", single(NftSet(name: "s", keyType: 7, keyLength: 4, elements: [
            NftSetElement(key: [10, 0, 0, 1]), NftSetElement(key: [10, 0, 0, 2]), NftSetElement(key: [192, 168, 0, 1]),
        ]))),
        ("an empty named set", single(NftSet(name: "empty", keyType: 7, keyLength: 4))),
        ("a concatenated set", single(S.accepted)),
        ("a data map", single(S.dnat())),
        ("a verdict map with jump and goto", single(S.verdicts, chains: [docker])),
        ("named interval sets (rbtree and pipapo)", NftRuleset(tables: [NftTable(family: .ipv4, name: "t", sets: [S.ranges, S.concatenatedRanges].map {
            var set = $0
            set.flags.remove(.anonymous)
            return set
        })])),
        ("a map of 2500 elements", single(S.dnat(count: 2500))),
        ("every sample in one table", S.program()),
        ("an ip6 table", NftRuleset(tables: [NftTable(family: .ipv6, name: "t6", sets: [
            NftSet(name: "v6", flags: .interval, keyType: 8, keyLength: 16, elements: [
                NftSetElement(key: [0xfd] + [UInt8](repeating: 0, count: 15), keyEnd: [0xfd] + [UInt8](repeating: 0xff, count: 15)),
            ]),
        ])])),
    ]

    @Test(arguments: roundTripCases.indices)
    func setsRoundTripThroughTheDecoder(_ index: Int) throws {
        let (name, program) = Self.roundTripCases[index]
        let batch = try NftBatch.replacing(program)
        #expect(batch.program == program, "\(name)")
        let decoded = try NftBatch(decoding: batch.bytes)
        #expect(decoded.program == program, "\(name)")
        #expect(decoded.messages == batch.messages, "\(name)")
        #expect(try NftBatch.replacing(decoded.program).bytes == batch.bytes, "\(name)")
        #expect(decoded.explain() == batch.explain(), "\(name)")
        // Every set and element is where the messages say.
        for message in batch.messages where message.kind == .newSetElement {
            let set = try #require(batch.set(for: message))
            #expect(set.name == message.set)
            #expect(try #require(message.elements).upperBound <= set.elements.count)
        }
    }

    @Test func setsComeAfterTheChainsAndBeforeTheRulesEachWithItsElements() throws {
        let batch = try NftBatch.replacing(S.program())
        #expect(batch.messages.map(\.description) == [
            "BATCH_BEGIN", "NEWTABLE ip weir-nat", "DELTABLE ip weir-nat", "NEWTABLE ip weir-nat",
            "NEWCHAIN ip weir-nat PREROUTING", "NEWCHAIN ip weir-nat FORWARD", "NEWCHAIN ip weir-nat DOCKER",
            "NEWSET ip weir-nat __set0", "NEWSETELEM ip weir-nat __set0 elements 0…1",
            "NEWSET ip weir-nat __map0", "NEWSETELEM ip weir-nat __map0 elements 0…1",
            "NEWSET ip weir-nat __map1", "NEWSETELEM ip weir-nat __map1 elements 0…3",
            "NEWSET ip weir-nat __set1", "NEWSETELEM ip weir-nat __set1 elements 0…2",
            "NEWSET ip weir-nat __set2", "NEWSETELEM ip weir-nat __set2 elements 0…1",
            "NEWRULE ip weir-nat PREROUTING rule #0", "NEWRULE ip weir-nat FORWARD rule #0", "NEWRULE ip weir-nat FORWARD rule #1",
            "NEWRULE ip weir-nat FORWARD rule #2", "NEWRULE ip weir-nat FORWARD rule #3", "NEWRULE ip weir-nat DOCKER rule #0",
            "BATCH_END",
        ])
        // NLM_F_REQUEST|NLM_F_EXCL|NLM_F_CREATE on every set message.
        for message in batch.messages where message.kind == .newSet || message.kind == .newSetElement {
            #expect(message.flags == 0x0601, "\(message)")
            #expect(message.family == .ipv4)
            #expect(message.table == "weir-nat")
        }
        #expect(batch.messages.first { $0.kind == .newSet }?.elements == nil)
        #expect(batch.messages.first { $0.kind == .newSetElement }?.elements == 0..<2)
    }

    @Test func largeSetsAreSplitIntoMessagesOfAtMostAThousandElements() throws {
        let batch = try NftBatch.replacing(Self.single(S.dnat(count: 2500)))
        let elements = batch.messages.filter { $0.kind == .newSetElement }
        #expect(elements.map(\.description) == ["NEWSETELEM ip t __map0 elements 0…999", "NEWSETELEM ip t __map0 elements 1000…1999",
                                                "NEWSETELEM ip t __map0 elements 2000…2499"])
        #expect(elements.allSatisfy { $0.length < 65536 })
        // libnftnl reads each message back with its share of the elements, in order.
        let lines = batch.explain().split(separator: "\n").filter { $0.contains("NEWSETELEM") }
        #expect(lines.map { $0.components(separatedBy: "[ element ").count - 1 } == [1000, 1000, 500])
        #expect(String(lines[0].prefix(200)).hasPrefix(
            "seq 7 NEWSETELEM ip t __map0 elements 0…999 id 1 [ element 7903000a 00000006 00006027  : 020011ac 00005000 0 [end] ] [ element"))
        // Element #2000: host port 21998 (0x55ee) to 172.18.7.206.
        #expect(String(lines[2].prefix(200)).hasPrefix(
            "seq 9 NEWSETELEM ip t __map0 elements 2000…2499 id 1 [ element 7903000a 00000006 0000ee55  : ce0712ac 00005000 0 [end] ] [ element"))

        // Wide elements (64-byte keys and data) are split by bytes: each message's element
        // list stays below the 65535 bytes one attribute holds.
        let wideElements: [NftSetElement] = (0..<1200).map { (i: Int) -> NftSetElement in
            let key: [UInt8] = [UInt8(i >> 8), UInt8(i & 0xff)] + [UInt8](repeating: 7, count: 62)
            return NftSetElement(key: key, data: [UInt8](repeating: 9, count: 64))
        }
        let wide = NftSet(name: "wide", flags: .map, keyLength: 64, dataType: 1, dataLength: 64, elements: wideElements)
        let wideBatch = try NftBatch.replacing(Self.single(wide))
        let parts = wideBatch.messages.filter { $0.kind == .newSetElement }
        #expect(parts.count == 4)
        #expect(parts.allSatisfy { $0.length < 50 * 1024 })
        let wideChunks: [Range<Int>] = parts.compactMap { $0.elements }
        // 148 bytes each (nest 4, key 8 + 64, data 8 + 64): 332 fit 48 KiB.
        #expect(wideChunks == [0..<332, 332..<664, 664..<996, 996..<1200])
        #expect(try NftBatch(decoding: wideBatch.bytes).program == wideBatch.program)

        // An rbtree range is two kernel elements, never split across messages.
        let rangeElements: [NftSetElement] = (0..<1500).map { (i: Int) -> NftSetElement in
            let high = UInt8(i >> 8), low = UInt8(i & 0xff)
            return NftSetElement(key: [10, high, low, 0], keyEnd: [10, high, low, 9])
        }
        let ranges = NftSet(name: "r", flags: .interval, keyType: 7, keyLength: 4, elements: rangeElements)
        let rangeBatch = try NftBatch.replacing(Self.single(ranges))
        let chunks: [Range<Int>] = rangeBatch.messages.compactMap { $0.elements }
        #expect(chunks == [0..<500, 500..<1000, 1000..<1500])
        let decoded = try NftBatch(decoding: rangeBatch.bytes)
        #expect(decoded.program == rangeBatch.program)
        #expect(decoded.messages == rangeBatch.messages)
    }

    @Test func explainPrintsSetsAndElementsInLibnftnlsNotation() throws {
        // libnftnl 1.2.4's nftnl_set_snprintf ("NAME TABLE FLAGS-HEX size N") and
        // nftnl_set_elem_snprintf ("element KEY-WORDS  : DATA-WORDS|VERDICT FLAGS [end]", words
        // as host-order u32 hex), exactly as `nft --debug=netlink` prints nft's own
        // `dnat ip to ip daddr . meta l4proto . th dport map { 10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80, … }`
        // (`__map%d weir-nat b size 2` / `element 7903000a 00000006 00006027  : 020011ac 00005000 0 [end]`).
        let batch = try NftBatch.replacing(S.small)
        #expect(batch.explain() == """
            seq 1 BATCH_BEGIN genid 0 (not checked)
            seq 2 NEWTABLE ip weir-nat create
            seq 3 DELTABLE ip weir-nat
            seq 4 NEWTABLE ip weir-nat create excl
            seq 5 NEWCHAIN ip weir-nat PREROUTING type nat hook prerouting prio -100 policy accept
            seq 6 NEWCHAIN ip weir-nat FORWARD type filter hook forward prio 0 policy drop
            seq 7 NEWSET ip weir-nat __set0 id 1 [ __set0 weir-nat 3 size 2 ] key type 0x730d len 12
            seq 8 NEWSETELEM ip weir-nat __set0 elements 0…1 id 1 [ element 020011ac 00000006 00005000  : 0 [end] ] [ element 030011ac 00000011 0000e914  : 0 [end] ]
            seq 9 NEWSET ip weir-nat __map0 id 2 [ __map0 weir-nat b size 2 ] key type 0x730d len 12 data type 0x1cd len 8
            seq 10 NEWSETELEM ip weir-nat __map0 elements 0…1 id 2 [ element 7903000a 00000006 00006027  : 020011ac 00005000 0 [end] ] [ element 7903000a 00000011 00003500  : 030011ac 0000e914 0 [end] ]
            seq 11 NEWRULE ip weir-nat PREROUTING #0 [ payload load 4b @ network header + 16 => reg 1 ] [ meta load l4proto => reg 9 ] [ payload load 2b @ transport header + 2 => reg 10 ] [ lookup reg 1 set __map0 dreg 1 0x0 ] [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
            seq 12 NEWRULE ip weir-nat FORWARD #0 [ payload load 4b @ network header + 16 => reg 1 ] [ meta load l4proto => reg 9 ] [ payload load 2b @ transport header + 2 => reg 10 ] [ lookup reg 1 set __set0 0x0 ] [ immediate reg 0 accept ]
            seq 13 BATCH_END

            """)
        // Verdict maps, rbtree pairs (end elements flagged 1; the range reaching the top has
        // none) and pipapo ranges (` - ` key end, field lengths).
        let lines = try NftBatch.replacing(S.program()).explain().split(separator: "\n").map(String.init)
        #expect(lines.contains("seq 12 NEWSET ip weir-nat __map1 id 3 [ __map1 weir-nat b size 4 ] key type 0x7 len 4 data type 0xffffff00"))
        #expect(lines.contains("seq 13 NEWSETELEM ip weir-nat __map1 elements 0…3 id 3 [ element 0100000a  : accept 0 [end] ] [ element 0200000a  : jump -> DOCKER 0 [end] ] [ element 0300000a  : goto -> DOCKER 0 [end] ] [ element 0400000a  : drop 0 [end] ]"))
        #expect(lines.contains("seq 14 NEWSET ip weir-nat __set1 id 4 [ __set1 weir-nat 7 size 5 ] key type 0x7 len 4"))
        #expect(lines.contains("seq 15 NEWSETELEM ip weir-nat __set1 elements 0…2 id 4 [ element 0000000a  : 0 [end] ] [ element 0000000b  : 1 [end] ] [ element 0101a8c0  : 0 [end] ] [ element 0201a8c0  : 1 [end] ] [ element 000000ff  : 0 [end] ]"))
        #expect(lines.contains("seq 16 NEWSET ip weir-nat __set2 id 5 [ __set2 weir-nat 87 size 2 ] key type 0x1cd len 8 concat 4,2"))
        #expect(lines.contains("seq 17 NEWSETELEM ip weir-nat __set2 elements 0…1 id 5 [ element 0000000a 00001600  - ffffff0a 00001900  : 0 [end] ] [ element 0101a8c0 00005000  - 0101a8c0 00005000  : 0 [end] ]"))
    }

    @Test func theCallRecorderSeesTheSetFunnels() throws {
        let recorder = CallRecorder()
        let batch = try recorder.record { try NftBatch.replacing(S.small) }
        let calls = recorder.calls
        // From the last chain to the first rule: the two sets and their elements.
        let from = try #require(calls.lastIndex(of: "nftnl_chain_free")) + 1
        let to = try #require(calls.firstIndex(of: "nftnl_rule_alloc"))
        let element = { (sets: Int) in ["nftnl_set_elem_alloc"] + Array(repeating: "nftnl_set_elem_set", count: sets) + ["nftnl_set_elem_nlmsg_build", "nftnl_set_elem_free"] }
        let newSet = { (map: Bool) in
            ["nftnl_set_alloc", "nftnl_set_set_str", "nftnl_set_set_str", "nftnl_set_set_u32", "nftnl_set_set_u32", "nftnl_set_set_u32",
             "nftnl_set_set_u32"] + (map ? ["nftnl_set_set_u32", "nftnl_set_set_u32"] : [])
                + ["nftnl_set_set_u32", "nftnl_set_set_u32", "nftnl_nlmsg_build_hdr", "nftnl_set_nlmsg_build_payload", "nftnl_set_free"]
        }
        let elements = { (perElement: [String]) in
            ["nftnl_set_alloc", "nftnl_set_set_str", "nftnl_set_set_str", "nftnl_set_set_u32", "nftnl_nlmsg_build_hdr",
             "nftnl_set_elems_nlmsg_build_payload", "mnl_attr_nest_start"] + perElement + perElement + ["mnl_attr_nest_end", "nftnl_set_free"]
        }
        #expect(Array(calls[from..<to]) == newSet(false) + elements(element(1)) + newSet(true) + elements(element(2)))
        for kind in ["set", "set_elem", "rule", "expr", "chain", "table"] {
            #expect(calls.filter { $0 == "nftnl_\(kind)_alloc" }.count == calls.filter { $0 == "nftnl_\(kind)_free" }.count, "\(kind)")
        }

        // Decoding parses each set message with libnftnl (and frees what it allocates).
        let decoding = CallRecorder()
        _ = try decoding.record { try NftBatch(decoding: batch.bytes) }
        #expect(decoding.calls.filter { $0 == "nftnl_set_nlmsg_parse" }.count == 2)
        #expect(decoding.calls.filter { $0 == "nftnl_set_elems_nlmsg_parse" }.count == 2)
        #expect(decoding.calls.filter { $0 == "nftnl_set_alloc" }.count == decoding.calls.filter { $0 == "nftnl_set_free" }.count)
        // Explaining prints them with libnftnl.
        let explaining = CallRecorder()
        _ = explaining.record { batch.explain() }
        #expect(explaining.calls.filter { $0 == "nftnl_set_snprintf" }.count == 2)
        #expect(explaining.calls.filter { $0 == "nftnl_set_elem_snprintf" }.count == 4)
    }

    @Test func provenanceOfSetMessagesIsTheSets() throws {
        let file = SourceFile(path: "policy.weir", text: "container c1 {\n    publish 10080:80/tcp\n}\n")
        let range = SourceRange(file: file, start: 19, end: 39)
        let batch = try NftBatch.replacing(S.program(provenance: range))
        for message in batch.messages {
            switch (message.kind, message.set) {
            case (.newSet, "__map0"?), (.newSetElement, "__map0"?):
                #expect(batch.provenance(for: message) == range)
                #expect(batch.set(for: message)?.name == "__map0")
            case (.newRule, _):
                #expect(batch.provenance(for: message) == batch.rule(for: message)?.provenance)
                #expect(batch.set(for: message) == nil)
            default:
                #expect(batch.provenance(for: message) == nil, "\(message)")
            }
        }
        #expect(batch.messages.filter { batch.provenance(for: $0) == range }.count == 3)  // NEWSET, NEWSETELEM, the dnat rule
    }

    // MARK: refused programs

    static func refusal(_ program: NftRuleset, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        // The builder refuses the table and stays usable: what it made before is kept, nothing
        // of the refused table.
        var builder = NftBatchBuilder()
        #expect(throws: Never.self, sourceLocation: sourceLocation) { try builder.replace(S.small.tables[0]) }
        let error = #expect(throws: NftBatchError.self, sourceLocation: sourceLocation) {
            try builder.replace(program.tables[0])
        }
        #expect(error?.kind == .unencodable, sourceLocation: sourceLocation)
        #expect(error?.offset == nil, sourceLocation: sourceLocation)
        #expect(error?.message == message, sourceLocation: sourceLocation)
        let batch = builder.finish()
        #expect(batch == (try? NftBatch.replacing(S.small)), sourceLocation: sourceLocation)
        #expect(batch.program == S.small, sourceLocation: sourceLocation)
    }

    static func withSet(_ edit: (inout NftSet) -> Void, _ index: Int = 1) -> NftRuleset {
        var program = S.program()
        edit(&program.tables[0].sets[index])
        return program
    }

    @Test func elementsThatDoNotFitTheirSetAreRefused() {
        Self.refusal(Self.withSet { $0.elements[1].key.removeLast() },
                     "element #1 of set ip weir-nat __map0: the key has 11 bytes; the set's key length is 12")
        Self.refusal(Self.withSet { $0.elements[0].data = [172, 17, 0, 2, 0, 80] },
                     "element #0 of set ip weir-nat __map0: the data has 6 bytes; the map's data length is 8")
        Self.refusal(Self.withSet { $0.elements[1].data = nil },
                     "element #1 of set ip weir-nat __map0: no data; every element of the map carries 8 bytes")
        Self.refusal(Self.withSet({ $0.elements[2].verdict = .jump("NO-SUCH-CHAIN") }, 2),
                     "element #2 of set ip weir-nat __map1: its verdict is jump NO-SUCH-CHAIN, a chain the table does not have")
        Self.refusal(Self.withSet({ $0.elements[1].verdict = .goto("nope") }, 2),
                     "element #1 of set ip weir-nat __map1: its verdict is goto nope, a chain the table does not have")
        Self.refusal(Self.withSet({ $0.elements[3].verdict = nil }, 2),
                     "element #3 of set ip weir-nat __map1: no verdict; every element of a verdict map carries one")
        Self.refusal(Self.withSet({ $0.elements[0].data = [1, 2, 3, 4] }, 0),
                     "element #0 of set ip weir-nat __set0: data or a verdict in a set that is not a map")
        Self.refusal(Self.withSet({ $0.elements[1] = $0.elements[0] }, 0),
                     "element #1 of set ip weir-nat __set0: its key 0xac1100020600000000500000 is the key of element #0 too")
        Self.refusal(Self.withSet({ $0.elements[1].keyEnd = nil }, 3),
                     "element #1 of set ip weir-nat __set1: an element of an interval set needs keyEnd (a single key k is the range k…k)")
        Self.refusal(Self.withSet({ $0.elements[0].keyEnd = [9, 0, 0, 0] }, 3),
                     "element #0 of set ip weir-nat __set1: keyEnd 0x09000000 is below the key 0x0a000000")
        Self.refusal(Self.withSet({ $0.elements[0].flags = .intervalEnd }, 3),
                     "element #0 of set ip weir-nat __set1: element flags 0x1 (interval end): give each range as key…keyEnd; the batch writes the kernel's pairs itself")
        Self.refusal(Self.withSet({ $0.elements[0].keyEnd = $0.elements[0].key }, 0),
                     "element #0 of set ip weir-nat __set0: keyEnd (a range) in a set without the interval flag")
    }

    @Test func setsThatCannotBeWrittenAreRefused() {
        Self.refusal(Self.withSet { $0.flags.insert(.timeout) },
                     "set ip weir-nat __map0: set flags 0x10 (timeout) are not supported; batches write anonymous, constant, interval, map and concatenated sets")
        Self.refusal(Self.withSet { $0.flags.remove(.map) }, "set ip weir-nat __map0: a data type without the map flag")
        Self.refusal(Self.withSet { $0.dataLength = nil }, "set ip weir-nat __map0: a map's data length must be 1…64 bytes, not missing")
        Self.refusal(Self.withSet { $0.keyLength = 65 }, "set ip weir-nat __map0: key length 65 is outside 1…64 (NFT_DATA_VALUE_MAXLEN)")
        Self.refusal(Self.withSet({ $0.fieldLengths = [4] }, 4),
                     "set ip weir-nat __set2: a concatenated key has 2 to 15 fields, not 1")
        Self.refusal(Self.withSet({ $0.fieldLengths = [4, 1, 2] }, 4),
                     "set ip weir-nat __set2: field lengths 4, 1, 2 take 12 bytes padded to 4 each, but the key length is 8")
        Self.refusal(Self.withSet({ $0.flags.remove(.concatenated) }, 4),
                     "set ip weir-nat __set2: field lengths need the concatenated flag (NFT_SET_CONCAT)")
        Self.refusal(Self.withSet({ $0.fieldLengths = [] }, 4),
                     "set ip weir-nat __set2: the concatenated flag (NFT_SET_CONCAT) needs the field lengths of the key's fields")
        Self.refusal(Self.withSet({ $0.name = "__set0" }, 4), "table ip weir-nat has two sets named __set0")
        Self.refusal(Self.withSet({ $0.name = "" }, 4), "set name '' must be 1 to 255 bytes without NUL (NFT_NAME_MAXLEN)")
        var unbound = S.program()
        unbound.tables[0].chains[1].rules.remove(at: 0)
        Self.refusal(unbound, "set ip weir-nat __set0: anonymous, but no lookup of the table uses it (the kernel refuses unbound anonymous sets)")
    }

    @Test func lookupsMustNameASetOfTheTableWithItsID() {
        var missing = S.program()
        missing.tables[0].sets.remove(at: 4)
        Self.refusal(missing, "rule #3 of chain ip weir-nat FORWARD: expression #4 (lookup): set '__set2' is not a set of table ip weir-nat")
        var wrongID = S.program()
        wrongID.tables[0].chains[0].rules[0].expressions[3] = LookupExpression(set: "__map0", source: .r1, destination: .r1, setID: 1)
        Self.refusal(wrongID, "rule #0 of chain ip weir-nat PREROUTING: expression #3 (lookup): set id 1, but set '__map0' is the table's set #1, whose transaction id is 2")
    }

    // MARK: damaged set messages

    /// The messages of `batch` in `order` (indices into `messages`), sequence numbers renumbered
    /// 1, 2, …; and where the message at position `at` of the new order starts.
    static func reordered(_ batch: NftBatch, _ order: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for (position, index) in order.enumerated() {
            let message = batch.messages[index]
            var bytes = Array(batch.bytes[message.offset..<(message.offset + message.length)])
            Damage.setU32(&bytes, 8, UInt32(position + 1))
            out += bytes
        }
        return out
    }
    static func offset(_ batch: NftBatch, _ order: [Int], at position: Int) -> Int {
        order.prefix(position).reduce(0) { $0 + batch.messages[$1].length }
    }
    /// `batch`'s bytes with the first `find` inside message `index` replaced.
    static func patched(_ batch: NftBatch, _ index: Int, _ find: [UInt8], _ replacement: [UInt8]) -> [UInt8] {
        let message = batch.messages[index]
        var bytes = batch.bytes
        let range = message.offset..<(message.offset + message.length)
        guard let at = range.first(where: { bytes[$0..<min($0 + find.count, range.upperBound)].elementsEqual(find) }) else {
            preconditionFailure("\(find) is not in \(message)")
        }
        bytes.replaceSubrange(at..<(at + find.count), with: replacement)
        return bytes
    }

    /// The small batch's messages: 0 BEGIN, 1–3 the table, 4 PREROUTING, 5 FORWARD, 6 NEWSET
    /// __set0, 7 its elements, 8 NEWSET __map0, 9 its elements, 10–11 the rules, 12 END.
    static let small = try! NftBatch.replacing(S.small)
    static let vmap = try! NftBatch.replacing(single(S.verdicts, chains: [docker]))
    static let plain = try! NftBatch.replacing(single(NftSet(name: "s", keyType: 7, keyLength: 4, elements: [
        NftSetElement(key: [10, 0, 0, 1]), NftSetElement(key: [10, 0, 0, 2]),
    ])))
    static let all = try! NftBatch.replacing(S.program())

    static let damagedCases: [(name: String, bytes: [UInt8], kind: NftBatchError.Kind, offset: Int, message: String)] = {
        let swap = [0, 1, 2, 3, 4, 5, 7, 6, 8, 9, 10, 11, 12]
        let crossed = [0, 1, 2, 3, 4, 5, 6, 8, 7, 9, 10, 11, 12]
        let late = [0, 1, 2, 3, 4, 5, 10, 6, 7, 8, 9, 11, 12]
        let chainLate = [0, 1, 2, 3, 4, 6, 7, 8, 9, 5, 10, 11, 12]
        let m = small.messages
        return [
            ("elements before their set", reordered(small, swap), .order, offset(small, swap, at: 6),
             "NEWSETELEM (seq 7): elements of set ip weir-nat __set0, which is not created earlier in the batch"),
            ("elements after the next set", reordered(small, crossed), .order, offset(small, crossed, at: 8),
             "NEWSETELEM (seq 9): elements of set ip weir-nat __set0 come after set __map0; a replace batch writes each set's elements right after it"),
            ("a set after a rule", reordered(small, late), .order, offset(small, late, at: 7),
             "NEWSET (seq 8): set ip weir-nat __set0 comes after rules; a replace batch creates every set before the rules"),
            ("a chain after the sets", reordered(small, chainLate), .order, offset(small, chainLate, at: 9),
             "NEWCHAIN (seq 10): chain FORWARD comes after sets; a replace batch creates every chain before the sets"),
            ("a set of a table the batch does not create", patched(small, 6, Array("weir-nat".utf8), Array("weir-nax".utf8)), .order, m[6].offset,
             "NEWSET (seq 7): it touches table ip weir-nax, which is not the table this part of the batch replaces"),
            ("elements of a set of another table", patched(small, 7, Array("weir-nat".utf8), Array("weir-nax".utf8)), .order, m[7].offset,
             "NEWSETELEM (seq 8): it touches table ip weir-nax, which is not the table this part of the batch replaces"),
            ("elements of a set the batch does not create", patched(small, 9, Array("__map0".utf8), Array("__map9".utf8)), .order, m[9].offset,
             "NEWSETELEM (seq 10): elements of set ip weir-nat __map9, which is not created earlier in the batch"),
            ("a set with another transaction id", patched(small, 6, [8, 0, 10, 0, 0, 0, 0, 1], [8, 0, 10, 0, 0, 0, 0, 7]), .content, m[6].offset,
             "NEWSET (seq 7): set ip weir-nat __set0 has transaction id 7; as the table's set #0 it must have 1"),
            ("elements naming another set id", patched(small, 7, [8, 0, 4, 0, 0, 0, 0, 1], [8, 0, 4, 0, 0, 0, 0, 3]), .content, m[7].offset,
             "NEWSETELEM (seq 8): the elements name set id 3, but set ip weir-nat __set0 has 1"),
            ("a key length the elements do not have", patched(small, 8, [8, 0, 5, 0, 0, 0, 0, 12], [8, 0, 5, 0, 0, 0, 0, 8]), .content, m[9].offset,
             "NEWSETELEM (seq 10): element #0 of set ip weir-nat __map0: the key has 12 bytes; the set's key length is 8"),
            ("a data length the elements do not have", patched(small, 8, [8, 0, 7, 0, 0, 0, 0, 8], [8, 0, 7, 0, 0, 0, 0, 4]), .content, m[9].offset,
             "NEWSETELEM (seq 10): element #0 of set ip weir-nat __map0: the data has 8 bytes; the map's data length is 4"),
            ("set flags without NLM_F_EXCL", { var b = small.bytes; b[m[6].offset + 7] &= ~0x02; return b }(), .flags, m[6].offset,
             "NEWSET (seq 7): flags 0x401; a replace batch uses NLM_F_REQUEST|NLM_F_EXCL|NLM_F_CREATE here"),
            ("a verdict jumping to a chain the table lacks", patched(vmap, 7, Array("DOCKER\0".utf8), Array("DOCKEX\0".utf8)), .content,
             vmap.messages[7].offset,
             "NEWSETELEM (seq 8): element #1 of set ip t __map1: its verdict is jump DOCKEX, a chain the table does not have"),
            ("a key given twice", patched(plain, 6, [10, 0, 0, 2], [10, 0, 0, 1]), .content, plain.messages[6].offset,
             "NEWSETELEM (seq 7): element #1 of set ip t s: its key 0x0a000001 is the key of element #0 too"),
            ("a catch-all element", patched(all, 14, [8, 0, 3, 0, 0, 0, 0, 1], [8, 0, 3, 0, 0, 0, 0, 2]), .content, all.messages[14].offset,
             "NEWSETELEM (seq 15): element #1 of set ip weir-nat __set1: element flags 0x2 are not supported (catch-all elements are not written)"),
            ("a key end in an rbtree interval set", patched(all, 13, [8, 0, 3, 0, 0, 0, 0, 7], [8, 0, 3, 0, 0, 0, 0, 0x87]), .content, all.messages[13].offset,
             "NEWSET (seq 14): set ip weir-nat __set1: the concatenated flag (NFT_SET_CONCAT) needs the field lengths of the key's fields"),
        ]
    }()

    @Test(arguments: damagedCases.indices)
    func damagedSetMessagesAreRejected(_ index: Int) {
        let damaged = Self.damagedCases[index]
        let error = #expect(throws: NftBatchError.self, "\(damaged.name)") { try NftBatch(decoding: damaged.bytes) }
        #expect(error?.kind == damaged.kind, "\(damaged.name)")
        #expect(error?.offset == damaged.offset, "\(damaged.name)")
        #expect(error?.message == damaged.message, "\(damaged.name)")
    }
}
