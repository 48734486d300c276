import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirModel
import WeirNetlink
import WeirNftables

/// Sets and maps as the lowering writes them (the unit tests' samples, repeated here: the kernel
/// tests are their own module).
enum KernelSetSamples {
    static let reg9 = NftRegister(kernel: 9)
    static let reg10 = NftRegister(kernel: 10)
    static let addressProtocolPort: UInt32 = (7 << 6 | 12) << 6 | 13
    static let addressPort: UInt32 = 7 << 6 | 13

    static func address(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    static func port(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff)] }
    static func padded(_ fields: [UInt8]...) -> [UInt8] {
        fields.flatMap { $0 + [UInt8](repeating: 0, count: (4 - $0.count % 4) % 4) }
    }
    static func tuple(_ address: String, _ proto: UInt8, _ port: UInt16) -> [UInt8] {
        padded(Self.address(address), [proto], Self.port(port))
    }

    static var accepted: NftSet {
        NftSet(name: "__set0", flags: [.anonymous, .constant], keyType: addressProtocolPort, keyLength: 12, elements: [
            NftSetElement(key: tuple("172.17.0.2", 6, 80)), NftSetElement(key: tuple("172.17.0.3", 17, 5353)),
        ])
    }

    static func dnat(count: Int = 2) -> NftSet {
        var elements = [
            NftSetElement(key: tuple("10.0.3.121", 6, 10080), data: padded(address("172.17.0.2"), port(80))),
            NftSetElement(key: tuple("10.0.3.121", 17, 53), data: padded(address("172.17.0.3"), port(5353))),
        ]
        for i in 0..<max(0, count - 2) {
            let key: [UInt8] = padded([10, 0, UInt8(i >> 16), UInt8(i >> 8 & 0xff)], [6], port(UInt16(1024 + i & 0xff)))
            let target: [UInt8] = [172, 18, UInt8(i >> 8 & 0xff), UInt8(i & 0xff)]
            elements.append(NftSetElement(key: key, data: padded(target, port(80))))
        }
        return NftSet(name: "__map0", flags: [.anonymous, .constant, .map], keyType: addressProtocolPort, keyLength: 12,
                      dataType: addressPort, dataLength: 8, elements: Array(elements.prefix(count)))
    }

    static func verdicts(dataLength: UInt32? = nil) -> NftSet {
        NftSet(name: "__map1", flags: [.anonymous, .constant, .map], keyType: 7, keyLength: 4, dataType: 0xffff_ff00, dataLength: dataLength,
               elements: [
                   NftSetElement(key: [10, 0, 0, 1], verdict: .accept), NftSetElement(key: [10, 0, 0, 2], verdict: .jump("DOCKER")),
                   NftSetElement(key: [10, 0, 0, 3], verdict: .goto("DOCKER")), NftSetElement(key: [10, 0, 0, 4], verdict: .drop),
               ])
    }

    static var ranges: NftSet {
        NftSet(name: "__set1", flags: [.anonymous, .constant, .interval], keyType: 7, keyLength: 4, elements: [
            NftSetElement(key: [10, 0, 0, 0], keyEnd: [10, 255, 255, 255]),
            NftSetElement(key: [192, 168, 1, 1], keyEnd: [192, 168, 1, 1]),
            NftSetElement(key: [255, 0, 0, 0], keyEnd: [255, 255, 255, 255]),
        ])
    }

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

    static func program(dnatCount: Int = 2, vmap: NftSet = verdicts(), provenance: SourceRange? = nil) -> NftRuleset {
        var sets = [accepted, dnat(count: dnatCount), vmap, ranges, concatenatedRanges]
        sets[2].provenance = provenance
        let filter = NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop)
        let nat = NftBaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept)
        return NftRuleset(tables: [NftTable(family: .ipv4, name: "weir-nat", chains: [
            NftChain(name: "PREROUTING", base: nat, rules: [
                NftRule(loads() + [LookupExpression(set: "__map0", source: .r1, destination: .r1, setID: 2),
                                   NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: reg9, protoMax: nil, flags: [])]),
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
}

/// Batches with sets and maps against the kernel (Linux 6.18), each test in a fresh namespace:
/// they apply in one transaction, read back as sent, list in nft as nft's own load of the same
/// text does, and a refused element changes nothing and is named.
@Suite(.serialized, .enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct BatchSetsKernelTests {
    typealias K = KernelSetSamples

    /// What nft -f loads for `K.program()` (the same sets, elements and rules).
    static let nftText = """
        table ip weir-nat {
            chain PREROUTING {
                type nat hook prerouting priority -100; policy accept;
                dnat ip to ip daddr . meta l4proto . th dport map { 10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80, 10.0.3.121 . udp . 53 : 172.17.0.3 . 5353 }
            }
            chain FORWARD {
                type filter hook forward priority 0; policy drop;
                ip daddr . meta l4proto . th dport { 172.17.0.2 . tcp . 80, 172.17.0.3 . udp . 5353 } accept
                ip saddr vmap { 10.0.0.1 : accept, 10.0.0.2 : jump DOCKER, 10.0.0.3 : goto DOCKER, 10.0.0.4 : drop }
                ip saddr { 10.0.0.0/8, 192.168.1.1, 255.0.0.0/8 } drop
                ip saddr . tcp dport { 10.0.0.0/8 . 22-25, 192.168.1.1 . 80 } accept
            }
            chain DOCKER {
                counter return
            }
        }

        """

    /// A listing with the items inside every `{ … }` sorted: hash sets list in the kernel's
    /// (seeded, per set) hash order.
    static func canonical(_ listing: String) -> [String] {
        listing.split(separator: "\n").map { line in
            guard let open = line.range(of: "{ "), let close = line.range(of: " }", options: .backwards), open.upperBound <= close.lowerBound else {
                return String(line)
            }
            let items = line[open.upperBound..<close.lowerBound].components(separatedBy: ", ").sorted()
            return String(line[..<open.upperBound]) + items.joined(separator: ", ") + String(line[close.lowerBound...])
        }
    }

    @Test func setsMapsAndVerdictMapsApplyAndReadBackAsSent() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let program = K.program()
        let batch = try NftBatch.replacing(program)

        // A check validates the sets and commits nothing.
        let check = try NftTransaction.apply(batch, on: socket, checkOnly: true)
        #expect(!check.committed)
        #expect(try lab.listRuleset() == "")

        let report = try NftTransaction.apply(batch, on: socket)
        #expect(report.committed)
        #expect(report.messageCount == 24)

        // Read back: the sets in the order sent, with flags, types, lengths and elements as sent
        // (hash elements in key order, ranges as ranges); lookups name their sets (without ids).
        let snapshot = try NftReadback.snapshot(socket)
        let table = try #require(snapshot.ruleset.tables.first { $0.name == "weir-nat" })
        #expect(table.sets.map(\.name) == ["__set0", "__map0", "__map1", "__set1", "__set2"])
        let expected = NftReadback.kernelForm(of: program)
        #expect(snapshot.ruleset == expected)
        #expect(NftReadback.kernelForm(of: snapshot.ruleset) == snapshot.ruleset)
        for (back, sent) in zip(table.sets, program.tables[0].sets) {
            #expect(Set(back.elements.map(\.key)) == Set(sent.elements.map(\.key)), "\(sent.name)")
            #expect(back.flags == sent.flags && back.keyType == sent.keyType && back.keyLength == sent.keyLength
                    && back.dataType == sent.dataType && back.fieldLengths == sent.fieldLengths, "\(sent.name)")
        }
        #expect(table.sets[1].elements.map(\.data) == [[172, 17, 0, 2, 0, 80, 0, 0], [172, 17, 0, 3, 20, 233, 0, 0]])
        #expect(table.sets[2].dataLength == 16)   // sizeof(struct nft_verdict), whatever was sent
        #expect(table.sets[2].elements.map(\.verdict) == [.accept, .jump("DOCKER"), .goto("DOCKER"), .drop])
        let lookups = table.chains.flatMap { $0.rules.flatMap { $0.expressions.compactMap { $0 as? LookupExpression } } }
        #expect(lookups.map(\.set) == ["__map0", "__set0", "__map1", "__set1", "__set2"])
        #expect(lookups.allSatisfy { $0.setID == nil })

        // nft lists every element (nft 1.0.6's spelling), exactly as it lists its own load of
        // the same text (up to the order of hash set elements).
        let listing = try lab.listRuleset()
        for text in ["dnat ip to ip daddr . meta l4proto . th dport map { ",
                     "10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80", "10.0.3.121 . udp . 53 : 172.17.0.3 . 5353",
                     "ip daddr . meta l4proto . th dport { ", "172.17.0.2 . tcp . 80", "172.17.0.3 . udp . 5353",
                     "ip saddr vmap { ", "10.0.0.1 : accept", "10.0.0.2 : jump DOCKER", "10.0.0.3 : goto DOCKER", "10.0.0.4 : drop",
                     "ip saddr { 10.0.0.0/8, 192.168.1.1, 255.0.0.0/8 } drop",
                     "ip saddr . tcp dport { 10.0.0.0/8 . 22-25, 192.168.1.1 . 80 } accept"] {
            #expect(listing.contains(text), "nft list ruleset lacks: \(text)\n\(listing)")
        }
        let tools = try #require(KernelRequirement.check())
        let loaded = try NetworkNamespace(ip: tools.ip)
        defer { loaded.delete() }
        let load = try loaded.run(lab.nft, ["-f", "-"], stdin: Self.nftText)
        #expect(load.succeeded, "\(load)")
        let fromText = try loaded.run(lab.nft, ["list", "ruleset"]).stdout
        #expect(Self.canonical(listing) == Self.canonical(fromText))
        #expect(listing.contains("10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80"))

        // A second apply replaces the table, sets included.
        let again = try NftTransaction.apply(batch, on: socket)
        #expect(again.committed)
        #expect(Self.canonical(try lab.listRuleset()) == Self.canonical(listing))
        #expect(try NftReadback.dump(socket) == expected)

        // The batch file decodes to the same batch, which applies as well.
        let decoded = try NftBatch(decoding: batch.bytes)
        #expect(decoded.program == batch.program)
        #expect(try NftTransaction.apply(decoded, on: socket).committed)
        #expect(try NftReadback.dump(socket) == expected)
    }

    @Test func aTwentyThousandElementMapAppliesInOneTransaction() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let program = K.program(dnatCount: 20_000)
        let t0 = Date()
        let batch = try NftBatch.replacing(program)
        let t1 = Date()
        let elementMessages = batch.messages.filter { $0.kind == .newSetElement && $0.set == "__map0" }
        #expect(elementMessages.count == 20)
        #expect(elementMessages.last?.description == "NEWSETELEM ip weir-nat __map0 elements 19000…19999")
        let report = try NftTransaction.apply(batch, on: socket)
        let t2 = Date()
        #expect(report.committed)
        #expect(report.messageCount == batch.messages.count)
        #expect(report.generationAfter == report.generation + 1)   // one transaction

        let back = try NftReadback.dump(socket)
        let map = try #require(back.tables.first?.sets.first { $0.name == "__map0" })
        #expect(map.elements.count == 20_000)
        #expect(map == (try program.tables[0].sets[1].normalized()))
        #expect(back == NftReadback.kernelForm(of: program))
        let listing = try lab.listRuleset()
        #expect(listing.contains("10.0.3.121 . tcp . 10080 : 172.17.0.2 . 80"))
        #expect(listing.contains("10.0.0.0 . tcp . 1029 : 172.18.0.5 . 80"))      // i = 5
        #expect(listing.contains("10.0.0.78 . tcp . 1053 : 172.18.78.29 . 80"))   // i = 19997, the last
        print(String(format: "20k-element map: %d messages, %d bytes; build %.0f ms, apply %.0f ms (kernel %.0f ms)",
                     batch.messages.count, batch.bytes.count, t1.timeIntervalSince(t0) * 1000, t2.timeIntervalSince(t1) * 1000,
                     report.kernelSeconds * 1000))
    }

    @Test func aRefusedElementChangesNothingAndIsNamedWithItsSetsPolicyLine() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        _ = try NftTransaction.apply(try NftBatch.replacing(K.program()), on: socket)
        _ = try lab.nft("add", "table", "ip", "other")
        let before = try lab.listRuleset()
        let generation = try socket.generation()

        // A verdict map element jumping to a base chain: the batch checks that the chain exists,
        // the kernel refuses jumps to base chains (EOPNOTSUPP on the NEWSETELEM).
        let policy = SourceFile(path: "policy.weir", text: "user {\n    vmap saddr { 10.0.0.1 : accept }\n}\n")
        let range = SourceRange(file: policy, start: 11, end: 44)
        var vmap = K.verdicts()
        vmap.elements[2].verdict = .jump("FORWARD")
        let bad = try NftBatch.replacing(K.program(vmap: vmap, provenance: range))
        let error = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(bad, on: socket) }
        guard case .rejected(let errors)? = error, let first = errors.first else {
            Issue.record("expected a rejection, got \(String(describing: error))")
            return
        }
        #expect(errors.count == 1)
        #expect(first.errno == EOPNOTSUPP)
        #expect(first.message?.kind == .newSetElement)
        #expect(first.message?.set == "__map1")
        #expect(first.message?.elements == 0..<4)
        #expect(first.elementIndex == 2)
        #expect(first.provenance == range)
        #expect(first.description == "NEWSETELEM ip weir-nat __map1 elements 0…3, element #2: Operation not supported (EOPNOTSUPP) [from policy.weir:2:5]")
        #expect(try lab.listRuleset() == before)
        #expect(try socket.generation() == generation)

        // Through the deployer: a diagnostic at the set's policy line.
        guard case .failure(let failure) = Deployer.apply(bad, namespace: lab.namespace.name) else {
            Issue.record("the deployer applied a refused batch")
            return
        }
        let diagnostic = try #require(failure.diagnostics.first)
        #expect(diagnostic.range == range)
        #expect(diagnostic.message == "kernel rejected set __map1 in ip weir-nat (element #2): Operation not supported (EOPNOTSUPP)")

        // Overlapping ranges (EEXIST), in an rbtree set whose ranges are two kernel elements
        // each: the error still names the set's element.
        var overlapping = K.program()
        overlapping.tables[0].sets[3].elements.insert(NftSetElement(key: [10, 1, 0, 0], keyEnd: [10, 1, 255, 255]), at: 1)
        let overlap = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(try NftBatch.replacing(overlapping), on: socket) }
        if case .rejected(let errors)? = overlap {
            #expect(errors.first?.errno == EEXIST)
            #expect(errors.first?.message?.description == "NEWSETELEM ip weir-nat __set1 elements 0…3")
            #expect(errors.first?.elementIndex == 1)
        } else {
            Issue.record("expected EEXIST, got \(String(describing: overlap))")
        }
        #expect(try lab.listRuleset() == before)

        // Bytes the kernel would refuse (a data length the elements do not have, a jump to a
        // missing chain) never get that far: decoding the batch file refuses them, nothing is sent.
        let good = try NftBatch.replacing(K.program())
        let setMessage = try #require(good.messages.first { $0.kind == .newSet && $0.set == "__map0" })
        var forced = good.bytes
        let range8 = setMessage.offset..<(setMessage.offset + setMessage.length)
        let at = try #require(range8.first { Array(forced[$0..<($0 + 8)]) == [8, 0, 7, 0, 0, 0, 0, 8] })   // NFTA_SET_DATA_LEN 8
        forced[at + 7] = 6
        let refused = #expect(throws: NftBatchError.self) { try NftBatch(decoding: forced) }
        #expect(refused?.message.hasSuffix("element #0 of set ip weir-nat __map0: the data has 8 bytes; the map's data length is 6") == true)
        #expect(try lab.listRuleset() == before)
        #expect(try socket.generation() == generation)
    }
}
