import Testing
import WeirModel
import WeirNetlink
import WeirNftables

/// The `lookup` codec (encode → decode round trips through a batch, libnftnl's view of the bytes,
/// nft's flag-less form, set ids) and the batch writer's refusal of lookups it cannot resolve.
/// No root needed. (Writing the sets themselves: `NftBatchSetTests`.)
@Suite struct NftSetCodecTests {
    static let reg9 = NftRegister(kernel: 9)

    static func program(_ expressions: [any NftExpression], sets: [NftSet] = []) -> NftRuleset {
        NftRuleset(tables: [NftTable(family: .ipv4, name: "t", chains: [
            NftChain(name: "c", base: NftBaseChain(type: .filter, hook: .input, priority: 0, policy: .accept), rules: [NftRule(expressions)]),
        ], sets: sets)])
    }

    /// The sets the lookups of `lookupsRoundTripThroughABatch` name, in this order (ids 1–4).
    static let sets = [
        NftSet(name: "__set0", flags: [.anonymous, .constant], keyType: 13, keyLength: 2, elements: [NftSetElement(key: [0, 80])]),
        NftSet(name: "allowed", keyType: 13, keyLength: 2),
        NftSet(name: "__map0", flags: [.anonymous, .constant, .map], keyType: 13, keyLength: 2, dataType: 0xffff_ff00,
               elements: [NftSetElement(key: [0, 22], verdict: .accept)]),
        NftSet(name: "m", flags: .map, keyType: 13, keyLength: 2, dataType: 7, dataLength: 4),
    ]

    @Test func lookupsRoundTripThroughABatch() throws {
        let program = Self.program([
            PayloadExpression(.transport, offset: 2, length: 2), LookupExpression(set: "__set0", setID: 1),
            LookupExpression(set: "allowed", invert: true, setID: 2), LookupExpression(set: "__map0", destination: .verdict, setID: 3),
            LookupExpression(set: "m", source: Self.reg9, destination: .r2, setID: 4), ImmediateExpression.verdict(.accept),
        ], sets: Self.sets)
        let batch = try NftBatch.replacing(program)
        #expect(batch.program == program)
        let decoded = try NftBatch(decoding: batch.bytes)
        #expect(decoded.program == program)
        #expect(decoded.messages == batch.messages)
        #expect(try NftBatch.replacing(decoded.program).bytes == batch.bytes)
        // libnftnl reads the bytes back to the text the expressions print.
        let rule = try #require(batch.explain().split(separator: "\n").first { $0.contains("NEWRULE") })
        #expect(rule == "seq 12 NEWRULE ip t c #0 [ payload load 2b @ transport header + 2 => reg 1 ] [ lookup reg 1 set __set0 0x0 ] "
            + "[ lookup reg 1 set allowed 0x1 ] [ lookup reg 1 set __map0 dreg 0 0x0 ] [ lookup reg 9 set m dreg 2 0x0 ] [ immediate reg 0 accept ]")
        let expected = program.tables[0].chains[0].rules[0].expressions.map(\.description).joined(separator: " ")
        #expect(rule.hasSuffix(expected))
    }

    /// Raw `NFTA_EXPR_DATA` attributes: type, then the payload (padded to 4 bytes).
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let length = 4 + payload.count
        return [UInt8(length & 0xff), UInt8(length >> 8), UInt8(type & 0xff), UInt8(type >> 8)] + payload
            + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    @Test func nftsLookupWithoutFlagsDecodesAsAPositiveLookup() throws {
        // What nft sends for `tcp dport { 80, 443 }`: NFTA_LOOKUP_SET (1) "__set%d", NFTA_LOOKUP_SREG
        // (2) be32 1, NFTA_LOOKUP_SET_ID (4) be32 5, and no NFTA_LOOKUP_FLAGS (5).
        let nft = Self.attribute(1, Array("__set%d".utf8) + [0]) + Self.attribute(2, [0, 0, 0, 1]) + Self.attribute(4, [0, 0, 0, 5])
        // Without a set name (only an id) the program form cannot hold it: opaque.
        let idOnly = Self.attribute(2, [0, 0, 0, 1]) + Self.attribute(4, [0, 0, 0, 5])
        let raw = Self.program([
            NftOpaqueExpression(name: "lookup", attributes: nft, text: "", reason: ""),
            NftOpaqueExpression(name: "lookup", attributes: idOnly, text: "", reason: ""),
            ImmediateExpression.verdict(.accept),
        ])
        let decoded = try NftBatch(decoding: try NftBatch.replacing(raw).bytes).program.tables[0].chains[0].rules[0].expressions
        #expect(decoded[0] as? LookupExpression == LookupExpression(set: "__set%d", setID: 5))
        let opaque = try #require(decoded[1] as? NftOpaqueExpression)
        #expect(opaque.reason == "lookup without a set name")
        #expect(opaque.attributes == idOnly)
    }

    @Test func lookupsThatCannotBeWrittenAreRefused() {
        func refused(_ lookup: LookupExpression, _ message: String) {
            #expect(throws: NftBatchError(.unencodable, offset: nil, "rule #0 of chain ip t c: expression #0 (lookup): \(message)")) {
                try NftBatch.replacing(Self.program([lookup, ImmediateExpression.verdict(.accept)]))
            }
        }
        refused(LookupExpression(set: ""), "a lookup without a set name")
        refused(LookupExpression(set: "a\u{0}b"), "the set name 'a\u{0}b' contains a NUL byte")
        refused(LookupExpression(set: String(repeating: "s", count: 256)), "the set name '\(String(repeating: "s", count: 256))' is 256 bytes long; at most 255 fit")
    }

    /// A lookup without a set id gets its set's transaction id (position + 1), in the bytes and
    /// in the batch's program, which is what decoding gives back.
    @Test func aMissingSetIDIsFilledIn() throws {
        let program = Self.program([PayloadExpression(.transport, offset: 2, length: 2), LookupExpression(set: "__map0", destination: .verdict),
                                    LookupExpression(set: "__set0"), ImmediateExpression.verdict(.accept)], sets: Self.sets)
        let batch = try NftBatch.replacing(program)
        let lookups = batch.program.tables[0].chains[0].rules[0].expressions.compactMap { $0 as? LookupExpression }
        #expect(lookups.map(\.setID) == [3, 1])
        #expect(batch.program != program)
        var filled = program
        filled.tables[0].chains[0].rules[0].expressions[1] = LookupExpression(set: "__map0", destination: .verdict, setID: 3)
        filled.tables[0].chains[0].rules[0].expressions[2] = LookupExpression(set: "__set0", setID: 1)
        #expect(batch.program == filled)
        #expect(try NftBatch(decoding: batch.bytes).program == filled)
        #expect(try NftBatch.replacing(filled).bytes == batch.bytes)
    }

    @Test func lookupsOfSetsTheTableLacksOrWithAnotherIDAreRefused() {
        func refused(_ lookup: LookupExpression, sets: [NftSet] = NftSetCodecTests.sets, _ message: String) {
            #expect(throws: NftBatchError(.unencodable, offset: nil, "rule #0 of chain ip t c: expression #1 (lookup): \(message)")) {
                try NftBatch.replacing(Self.program([PayloadExpression(.transport, offset: 2, length: 2), lookup,
                                                     ImmediateExpression.verdict(.accept)], sets: sets))
            }
        }
        refused(LookupExpression(set: "nope"), "set 'nope' is not a set of table ip t")
        refused(LookupExpression(set: "__set0"), sets: [], "set '__set0' is not a set of table ip t")
        refused(LookupExpression(set: "__set0", setID: 2), "set id 2, but set '__set0' is the table's set #0, whose transaction id is 1")
        refused(LookupExpression(set: "m", setID: 1), "set id 1, but set 'm' is the table's set #3, whose transaction id is 4")
    }
}
