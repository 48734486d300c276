import Testing
import WeirDiagnostics
import WeirModel
import WeirNftables

/// Hand-built programs with sets in the shapes nft writes and the kernel reports back (netlink
/// note §2.3; the kernel test `ShowSetsKernelTests` checks the same shapes for real).
enum SetSamples {
    /// An interface name as a set key: 16 NUL-padded bytes.
    static func ifname(_ name: String) -> [UInt8] { Array(name.utf8) + [UInt8](repeating: 0, count: 16 - name.utf8.count) }
    static func port(_ p: UInt16) -> [UInt8] { [UInt8(p >> 8), UInt8(p & 0xff)] }
    static func v4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    static func prefix(_ text: String) -> Prefix { Prefix(text)! }

    static let tcp: [any NftExpression] = [MetaExpression(.l4proto), CmpExpression(.eq, [6])]
    static let dport = PayloadExpression(.transport, offset: 2, length: 2)
    static let saddr = PayloadExpression(.network, offset: 12, length: 4)
    static func lookup(_ set: String, invert: Bool = false) -> LookupExpression { LookupExpression(set: set, invert: invert) }
    static func verdict(_ v: ImmediateExpression.Verdict) -> ImmediateExpression { .verdict(v) }

    /// Interval elements as the kernel dumps them: `[start, end)` pairs as a start element and an
    /// end element, in descending order, closed below by an end element at 0 when nothing starts there.
    static func kernelPairs(_ ranges: [(start: [UInt8], end: [UInt8]?)]) -> [NftSetElement] {
        var out: [NftSetElement] = []
        for range in ranges {
            if let end = range.end { out.append(NftSetElement(key: end, flags: .intervalEnd)) }
            out.append(NftSetElement(key: range.start))
        }
        let width = ranges[0].start.count
        if !ranges.contains(where: { $0.start.allSatisfy { $0 == 0 } }) {
            out.append(NftSetElement(key: [UInt8](repeating: 0, count: width), flags: .intervalEnd))
        }
        return out.sorted { a, b in a.key != b.key ? b.key.lexicographicallyPrecedes(a.key) : a.flags.contains(.intervalEnd) && !b.flags.contains(.intervalEnd) }
    }

    static let anonymous: NftSet.Flags = [.anonymous, .constant]
    static let anonymousInterval: NftSet.Flags = [.anonymous, .constant, .interval]

    /// `table ip other` with base chain `input` holding `rules`, and `sets`.
    static func program(_ rules: [NftRule], sets: [NftSet], family: Family = .ipv4) -> NftRuleset {
        NftRuleset(tables: [NftTable(family: family, name: "other", chains: [
            NftChain(name: "input", base: NftBaseChain(type: .filter, hook: .input, priority: 10, policy: .accept), rules: rules),
        ], sets: sets)])
    }

    /// The model of `program`: table `other`, chain `input`.
    static func model(_ rules: [Rule], family: Family = .ipv4) -> Ruleset {
        Ruleset(tables: [Table(family: family, name: "other", chains: [
            Chain(name: "input", kind: .base(hook: .input, priority: 10, policy: .accept), rules: rules),
        ])])
    }
}

/// `NftLifting` of set lookups: expansion per element (and products), and explicit errors for
/// what expansion cannot express exactly.
@Suite struct NftSetLiftingTests {
    typealias S = SetSamples

    static func lift(_ program: NftRuleset) -> (Ruleset, [String]) {
        let (ruleset, diagnostics) = NftLifting.lift(program)
        return (ruleset, diagnostics.map(\.description))
    }

    @Test func aPortSetExpandsIntoOneRulePerElementInKeyOrder() {
        // Hash sets come back in hash order; the expansion is in key order.
        let ports = NftSet(name: "__set0", flags: S.anonymous, keyType: 13, keyLength: 2,
                           elements: [NftSetElement(key: S.port(443)), NftSetElement(key: S.port(80))])
        let program = S.program([
            NftRule([MetaExpression(.iifname), CmpExpression(.eq, S.ifname("lo")), S.verdict(.accept)]),
            NftRule(S.tcp + [S.dport, CounterExpression(), S.lookup("__set0"), S.verdict(.accept)], comment: "web"),
            NftRule([S.verdict(.drop)]),
        ], sets: [ports])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        #expect(ruleset == S.model([
            Rule([.inInterface(InterfaceName("lo"))], .accept),
            Rule([.protocol(.tcp), .port(.destination, PortRange(80)), .comment("web")], .accept),
            Rule([.protocol(.tcp), .port(.destination, PortRange(443)), .comment("web")], .accept),
            Rule([], .drop),
        ]))
    }

    @Test func portIntervalsAreRanges() {
        // tcp dport { 0-10, 3000-3100, 5000, 65000-65535 }: the last range has no end element.
        let set = NftSet(name: "__set0", flags: S.anonymousInterval, keyType: 13, keyLength: 2, elements: S.kernelPairs([
            (S.port(0), S.port(11)), (S.port(3000), S.port(3101)), (S.port(5000), S.port(5001)), (S.port(65000), nil),
        ]))
        let (ruleset, diagnostics) = Self.lift(S.program([NftRule(S.tcp + [S.dport, S.lookup("__set0"), S.verdict(.drop)])], sets: [set]))
        #expect(diagnostics == [])
        #expect(ruleset == S.model([PortRange(0, 10), PortRange(3000, 3100), PortRange(5000), PortRange(65000, 65535)].map {
            Rule([.protocol(.tcp), .port(.destination, $0)], .drop)
        }))
    }

    @Test func addressIntervalsArePrefixes() {
        // ip saddr { 10.0.0.0/8, 10.20.0.1-10.20.0.5, 192.168.1.1, 255.255.255.0/24 }, as the kernel dumps it.
        let elements = S.kernelPairs([
            (S.v4("10.0.0.0"), S.v4("11.0.0.0")), (S.v4("12.20.0.1"), S.v4("12.20.0.6")),
            (S.v4("192.168.1.1"), S.v4("192.168.1.2")), (S.v4("255.255.255.0"), nil),
        ])
        let addresses = NftSet(name: "__set1", flags: S.anonymousInterval, keyType: 7, keyLength: 4, elements: elements)
        let (ruleset, diagnostics) = Self.lift(S.program([NftRule([S.saddr, S.lookup("__set1"), S.verdict(.drop)])], sets: [addresses]))
        #expect(diagnostics == [])
        // A range that is not one prefix becomes the fewest prefixes covering it exactly.
        #expect(ruleset == S.model(["10.0.0.0/8", "12.20.0.1/32", "12.20.0.2/31", "12.20.0.4/31", "192.168.1.1/32", "255.255.255.0/24"].map {
            Rule([.address(.source, S.prefix($0))], .drop)
        }))
    }

    @Test func ipv6AddressSets() {
        let fd00: [UInt8] = [0xfd] + [UInt8](repeating: 0, count: 15)
        let fe00: [UInt8] = [0xfe] + [UInt8](repeating: 0, count: 15)
        let one = [UInt8](repeating: 0, count: 15) + [1], two = [UInt8](repeating: 0, count: 15) + [2]
        let set = NftSet(name: "__set0", flags: S.anonymousInterval, keyType: 8, keyLength: 16,
                         elements: S.kernelPairs([(fd00, fe00), (one, two)]))
        let all = NftSet(name: "__set1", flags: S.anonymousInterval, keyType: 8, keyLength: 16,
                         elements: [NftSetElement(key: [UInt8](repeating: 0, count: 16))])
        let program = S.program([
            NftRule([PayloadExpression(.network, offset: 8, length: 16), S.lookup("__set0"), S.verdict(.drop)]),
            NftRule([PayloadExpression(.network, offset: 24, length: 16), S.lookup("__set1"), S.verdict(.accept)]),
        ], sets: [set, all], family: .ipv6)
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        // ::/0 matches every packet: no address match at all.
        #expect(ruleset == S.model([
            Rule([.address(.source, S.prefix("::1/128"))], .drop),
            Rule([.address(.source, S.prefix("fd00::/8"))], .drop),
            Rule([], .accept),
        ], family: .ipv6))
    }

    @Test func interfaceSetsAreNamesAndWildcards() {
        let names = NftSet(name: "__set2", flags: S.anonymous, keyType: 41, keyLength: 16,
                           elements: [NftSetElement(key: S.ifname("wg0")), NftSetElement(key: S.ifname("eth0"))])
        // oifname { "br-*", "eth1" }: the wildcard is br-\0… to br.\0… (exclusive), the name its key to key + 1.
        var eth1End = S.ifname("eth1")
        eth1End[15] = 1
        let wild = NftSet(name: "__set3", flags: S.anonymousInterval, keyType: 41, keyLength: 16, elements: S.kernelPairs([
            (S.ifname("br-"), S.ifname("br.")), (S.ifname("eth1"), eth1End),
        ]))
        let program = S.program([
            NftRule([MetaExpression(.iifname), S.lookup("__set2"), S.verdict(.accept)]),
            NftRule([MetaExpression(.oifname), S.lookup("__set3"), S.verdict(.drop)]),
        ], sets: [names, wild])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        #expect(ruleset == S.model([
            Rule([.inInterface(InterfaceName("eth0"))], .accept),
            Rule([.inInterface(InterfaceName("wg0"))], .accept),
            Rule([.outInterface(InterfaceName("br-", wildcard: true))], .drop),
            Rule([.outInterface(InterfaceName("eth1"))], .drop),
        ]))
    }

    @Test func protocolSetsEnablePortsPerProtocol() {
        // meta l4proto { tcp, udp } th dport 53 accept
        let protocols = NftSet(name: "__set0", flags: S.anonymous, keyType: 12, keyLength: 1,
                               elements: [NftSetElement(key: [17]), NftSetElement(key: [6])])
        let program = S.program([
            NftRule([MetaExpression(.l4proto), S.lookup("__set0"), S.dport, CmpExpression(.eq, S.port(53)), S.verdict(.accept)]),
        ], sets: [protocols])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        #expect(ruleset == S.model([
            Rule([.protocol(.tcp), .port(.destination, PortRange(53))], .accept),
            Rule([.protocol(.udp), .port(.destination, PortRange(53))], .accept),
        ]))
    }

    @Test func severalLookupsExpandToTheProduct() throws {
        // iifname { "eth0", "wg0" } tcp dport @web accept — an anonymous and a named set.
        let names = NftSet(name: "__set0", flags: S.anonymous, keyType: 41, keyLength: 16,
                           elements: [NftSetElement(key: S.ifname("eth0")), NftSetElement(key: S.ifname("wg0"))])
        let web = NftSet(name: "web", keyType: 13, keyLength: 2, elements: [NftSetElement(key: S.port(80)), NftSetElement(key: S.port(443))])
        let program = S.program([
            NftRule([MetaExpression(.iifname), S.lookup("__set0")] + S.tcp + [S.dport, S.lookup("web"), S.verdict(.jump("WEB"))]),
        ], sets: [web, names])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        #expect(ruleset.tables[0].chains[0].rules == [
            Rule([.inInterface(InterfaceName("eth0")), .protocol(.tcp), .port(.destination, PortRange(80))], .jump("WEB")),
            Rule([.inInterface(InterfaceName("eth0")), .protocol(.tcp), .port(.destination, PortRange(443))], .jump("WEB")),
            Rule([.inInterface(InterfaceName("wg0")), .protocol(.tcp), .port(.destination, PortRange(80))], .jump("WEB")),
            Rule([.inInterface(InterfaceName("wg0")), .protocol(.tcp), .port(.destination, PortRange(443))], .jump("WEB")),
        ])
        // The single-rule API gives the same expansion.
        let rule = program.tables[0].chains[0].rules[0]
        #expect(try NftLifting.lift(rule, family: .ipv4, sets: [web, names]).get() == ruleset.tables[0].chains[0].rules)
    }

    @Test func anInvertedLookupIsALocatedError() {
        let file = SourceFile(path: "rules.nft", text: "ip saddr != @allowed drop\n")
        let allowed = NftSet(name: "allowed", flags: .interval, keyType: 7, keyLength: 4,
                             elements: S.kernelPairs([(S.v4("10.1.0.0"), S.v4("10.2.0.0"))]))
        let program = S.program([
            NftRule([S.verdict(.accept)]),
            NftRule([S.saddr, S.lookup("allowed", invert: true), S.verdict(.drop)], provenance: SourceRange(file: file, start: 0, end: 25)),
            NftRule([S.saddr, S.lookup("allowed"), S.verdict(.accept)]),
        ], sets: [allowed])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [
            "rules.nft:1:1: error: table ip other, chain input, rule 2: expression 2 [ lookup reg 1 set allowed 0x1 ]: an inverted lookup (!= @allowed) matches packets outside every element; the model cannot say that in one rule, and expanding applies only to positive lookups",
        ])
        // The rule is left out; the others lift.
        #expect(ruleset == S.model([Rule([], .accept), Rule([.address(.source, S.prefix("10.1.0.0/16"))], .accept)]))
    }

    @Test func mapsExpandIntoOneRulePerElement() {
        // tcp dport vmap { 22 : accept, 23 : drop }: each element's verdict is its rule's target.
        let vmap = NftSet(name: "__map0", flags: [.anonymous, .constant, .map], keyType: 13, keyLength: 2, dataType: 0xffffff00, dataLength: 16,
                          elements: [NftSetElement(key: S.port(23), verdict: .drop), NftSetElement(key: S.port(22), verdict: .accept)])
        // A lookup without dreg into a map tests membership only.
        let map = NftSet(name: "ports", flags: .map, keyType: 13, keyLength: 2, dataType: 7, dataLength: 4,
                         elements: [NftSetElement(key: S.port(22), data: S.v4("10.0.0.1"))])
        // dnat ip to meta l4proto . th dport map { tcp . 80 : 10.0.0.2 . 8080, udp . 53 : 10.0.0.3 . 5353 }:
        // the data (address, then the port padded to 4 bytes) goes to reg 1 and reg32 9.
        let dnat = NftSet(name: "__map1", flags: [.anonymous, .constant, .map], keyType: 12 << 6 | 13, keyLength: 8,
                          dataType: 7 << 6 | 13, dataLength: 8, elements: [
                              NftSetElement(key: [17, 0, 0, 0] + S.port(53) + [0, 0], data: S.v4("10.0.0.3") + S.port(5353) + [0, 0]),
                              NftSetElement(key: [6, 0, 0, 0] + S.port(80) + [0, 0], data: S.v4("10.0.0.2") + S.port(8080) + [0, 0]),
                          ])
        let reg9 = NftRegister(kernel: 9)
        let program = NftRuleset(tables: [NftTable(family: .ipv4, name: "weir-nat", chains: [
            NftChain(name: "PREROUTING", base: NftBaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: [
                NftRule(S.tcp + [S.dport, LookupExpression(set: "__map0", destination: .verdict)]),
                NftRule(S.tcp + [S.dport, S.lookup("ports"), S.verdict(.accept)]),
                NftRule([MetaExpression(.iifname), CmpExpression(.neq, S.ifname("docker0")), MetaExpression(.l4proto),
                         PayloadExpression(.transport, offset: 2, length: 2, into: reg9),
                         LookupExpression(set: "__map1", destination: .r1),
                         NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: .r1, protoMin: reg9, protoMax: reg9, flags: [.mapIPs, .protoSpecified])]),
            ]),
        ], sets: [vmap, map, dnat])])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        func tcp(_ port: UInt16) -> [Match] { [.protocol(.tcp), .port(.destination, PortRange(port))] }
        let notDocker = Match.inInterface(InterfaceName("docker0"), negated: true)
        // Elements come out in ascending key order: 22 before 23, tcp (6) before udp (17).
        #expect(ruleset.tables.first?.chains.first?.rules == [
            Rule(tcp(22), .accept), Rule(tcp(23), .drop),
            Rule(tcp(22), .accept),
            Rule([notDocker] + tcp(80), .dnat(NATDestination(address: IPAddress("10.0.0.2")!, ports: PortRange(8080)))),
            Rule([notDocker, .protocol(.udp), .port(.destination, PortRange(53))], .dnat(NATDestination(address: IPAddress("10.0.0.3")!, ports: PortRange(5353)))),
        ])
    }

    @Test func mapMisuseIsAnError() {
        let ports = NftSet(name: "ports", keyType: 13, keyLength: 2, elements: [NftSetElement(key: S.port(22))])
        let vmap = NftSet(name: "vmap", flags: .map, keyType: 13, keyLength: 2, dataType: 0xffffff00, dataLength: 16,
                          elements: [NftSetElement(key: S.port(22), verdict: .accept)])
        let data = NftSet(name: "data", flags: .map, keyType: 13, keyLength: 2, dataType: 7, dataLength: 4,
                          elements: [NftSetElement(key: S.port(22), data: S.v4("10.0.0.1"))])
        let catchall = NftSet(name: "fallback", flags: .map, keyType: 13, keyLength: 2, dataType: 0xffffff00, dataLength: 16,
                              elements: [NftSetElement(key: S.port(22), verdict: .accept), NftSetElement(key: [], flags: .catchall, verdict: .drop)])
        let program = S.program([
            NftRule(S.tcp + [S.dport, LookupExpression(set: "ports", destination: .verdict)]),
            NftRule(S.tcp + [S.dport, LookupExpression(set: "vmap", destination: .r1), S.verdict(.accept)]),
            NftRule(S.tcp + [S.dport, LookupExpression(set: "data", destination: .verdict)]),
            NftRule(S.tcp + [S.dport, LookupExpression(set: "fallback", destination: .verdict)]),
        ], sets: [ports, vmap, data, catchall])
        let (ruleset, diagnostics) = Self.lift(program)
        let place = "error: table ip other, chain input, rule"
        #expect(diagnostics == [
            "\(place) 1: expression 4 [ lookup reg 1 set ports dreg 0 0x0 ]: a lookup into 'ports' loads data into register 0, but the set is not a map",
            "\(place) 2: expression 4 [ lookup reg 1 set vmap dreg 1 0x0 ]: verdict map 'vmap' loads into data register 1",
            "\(place) 3: expression 4 [ lookup reg 1 set data dreg 0 0x0 ]: map 'data' of data loads into the verdict register",
            "\(place) 4: expression 4 [ lookup reg 1 set fallback dreg 0 0x0 ]: set 'fallback' has a catch-all element, which matches only when no other element does; the model has no rule for that",
        ])
        #expect(ruleset == S.model([]))
    }

    @Test func concatenatedKeysExpandFieldByField() {
        // ip saddr . tcp dport { 1.2.3.4 . 22, 1.2.3.5 . 80 }: 8-byte keys from reg 1 and reg32 9.
        let pairs = NftSet(name: "__set0", flags: S.anonymous, keyType: 7 << 6 | 13, keyLength: 8, elements: [
            NftSetElement(key: S.v4("1.2.3.5") + S.port(80) + [0, 0]),
            NftSetElement(key: S.v4("1.2.3.4") + S.port(22) + [0, 0]),
            // Non-zero padding: no packet's key has it, so the element matches nothing.
            NftSetElement(key: S.v4("1.2.3.6") + S.port(22) + [0, 1]),
        ])
        // A concatenation with ranges (as pipapo reports them): each field's range.
        let ranged = NftSet(name: "__set1", flags: [.anonymous, .constant, .interval, .concatenated], keyType: 7 << 6 | 13, keyLength: 8,
                            fieldLengths: [4, 2], elements: [
                                NftSetElement(key: S.v4("10.0.0.0") + S.port(1000) + [0, 0], keyEnd: S.v4("10.0.0.255") + S.port(1001) + [0, 0]),
                            ])
        let load: [any NftExpression] = [PayloadExpression(.network, offset: 12, length: 4),
                                         PayloadExpression(.transport, offset: 2, length: 2, into: NftRegister(kernel: 9))]
        let program = S.program([
            NftRule(S.tcp + load + [S.lookup("__set0"), S.verdict(.accept)]),
            NftRule(S.tcp + load + [S.lookup("__set1"), S.verdict(.drop)]),
        ], sets: [pairs, ranged])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == [])
        func rule(_ source: String, _ ports: PortRange, _ target: Target) -> Rule {
            Rule([.address(.source, S.prefix(source)), .protocol(.tcp), .port(.destination, ports)], target)
        }
        #expect(ruleset == S.model([
            rule("1.2.3.4/32", PortRange(22), .accept), rule("1.2.3.5/32", PortRange(80), .accept),
            rule("10.0.0.0/24", PortRange(1000, 1001), .drop),
        ]))
    }

    @Test func otherSetProblemsAreLocatedErrors() {
        let ports = NftSet(name: "ports", keyType: 13, keyLength: 2, elements: [NftSetElement(key: S.port(22))])
        let overlapping = NftSet(name: "overlap", flags: .interval, keyType: 7, keyLength: 4, elements: [
            NftSetElement(key: S.v4("10.0.0.0"), keyEnd: S.v4("10.255.255.255")), NftSetElement(key: S.v4("10.1.0.0"), keyEnd: S.v4("10.1.255.255")),
        ])
        let broken = NftSet(name: "broken", flags: .interval, keyType: 7, keyLength: 4,
                            elements: [NftSetElement(key: S.v4("10.0.0.0")), NftSetElement(key: S.v4("11.0.0.0"))] + [NftSetElement(key: S.v4("12.0.0.0"), flags: .intervalEnd)])
        let dynamic = NftSet(name: "seen", flags: .eval, keyType: 7, keyLength: 4)
        let program = S.program([
            NftRule([S.saddr, S.lookup("nosuchset"), S.verdict(.accept)]),
            NftRule([S.saddr, S.lookup("ports"), S.verdict(.accept)]),
            NftRule([S.saddr, S.lookup("overlap"), S.verdict(.accept)]),
            NftRule([S.saddr, S.lookup("broken"), S.verdict(.accept)]),
            NftRule([S.saddr, S.lookup("seen"), S.verdict(.accept)]),
            NftRule([S.dport, S.lookup("ports"), S.verdict(.accept)]),
            NftRule([S.saddr, S.verdict(.accept), S.lookup("ports")]),
        ], sets: [ports, overlapping, broken, dynamic])
        let (ruleset, diagnostics) = Self.lift(program)
        let place = "error: table ip other, chain input, rule"
        #expect(diagnostics == [
            "\(place) 1: expression 2 [ lookup reg 1 set nosuchset 0x0 ]: set 'nosuchset' is not in the table",
            "\(place) 2: expression 2 [ lookup reg 1 set ports 0x0 ]: set 'ports' has 2-byte keys, but register 1 holds the 4-byte payload 4b @ network header + 12",
            "\(place) 3: expression 2 [ lookup reg 1 set overlap 0x0 ]: elements 0x0000000a and 0x0000010a of set 'overlap' overlap; expanding is exact only for disjoint elements",
            "\(place) 4: expression 2 [ lookup reg 1 set broken 0x0 ]: set 'broken' is malformed: interval start 0x0000000a has no end before the next start 0x0000000b",
            "\(place) 5: expression 2 [ lookup reg 1 set seen 0x0 ]: set 'seen' has flags 0x20: its elements are added from the packet path, so they are not a fixed part of the ruleset",
            "\(place) 6: expression 2 [ lookup reg 1 set ports 0x0 ]: element 0x00001600: a transport port load without a tcp, udp or sctp protocol match before it",
            "\(place) 7: expression 3 [ lookup reg 1 set ports 0x0 ]: comes after the rule's action; the model has one action, last",
        ])
        #expect(ruleset == S.model([]))
        // Without the table's sets, the single-rule API says the set is missing.
        guard case .failure(let failure) = NftLifting.lift(program.tables[0].chains[0].rules[1], family: .ipv4) else {
            Issue.record("lifted a lookup without sets")
            return
        }
        #expect(failure.message == "expression 2 [ lookup reg 1 set ports 0x0 ]: set 'ports' is not in the table")
    }

    @Test func anEmptySetLiftsToNoRuleWithAWarning() {
        let empty = NftSet(name: "empty", keyType: 7, keyLength: 4)
        let program = S.program([
            NftRule([S.saddr, S.lookup("empty"), S.verdict(.accept)]),
            NftRule([S.verdict(.drop)]),
        ], sets: [empty])
        let (ruleset, diagnostics) = Self.lift(program)
        #expect(diagnostics == ["warning: table ip other, chain input, rule 1: looks up the empty set 'empty', so it matches no packet; it lifts to no rule"])
        #expect(ruleset == S.model([Rule([], .drop)]))
        // The rest of such a rule is still checked.
        let bad = S.program([NftRule([S.saddr, S.lookup("empty"), S.lookup("missing"), S.verdict(.accept)])], sets: [empty])
        #expect(Self.lift(bad).1 == ["error: table ip other, chain input, rule 1: expression 3 [ lookup reg 1 set missing 0x0 ]: set 'missing' is not in the table"])
    }

    @Test func theExpansionIsBounded() {
        let many = NftSet(name: "many", keyType: 13, keyLength: 2, elements: (1...1100).map { NftSetElement(key: S.port(UInt16($0))) })
        let program = S.program([
            NftRule(S.tcp + [S.dport, S.lookup("many"), PayloadExpression(.transport, offset: 0, length: 2), S.lookup("many"), S.verdict(.accept)]),
        ], sets: [many])
        #expect(Self.lift(program).1 == [
            "error: table ip other, chain input, rule 1: expression 6 [ lookup reg 1 set many 0x0 ]: the rule's set lookups expand to more than 1048576 rules",
        ])
    }

    @Test func intervalPairsNormaliseToRanges() throws {
        func set(_ elements: [NftSetElement]) -> NftSet { NftSet(name: "s", flags: .interval, keyLength: 2, elements: elements) }
        // The kernel's dump of tcp dport { 1-2, 3-4 } if nft did not merge them: the end of the
        // first and the start of the second share a key.
        let adjacent = set([NftSetElement(key: S.port(5), flags: .intervalEnd), NftSetElement(key: S.port(3)),
                            NftSetElement(key: S.port(3), flags: .intervalEnd), NftSetElement(key: S.port(1)),
                            NftSetElement(key: S.port(0), flags: .intervalEnd)])
        let ranges = [NftSetElement(key: S.port(1), keyEnd: S.port(2)), NftSetElement(key: S.port(3), keyEnd: S.port(4))]
        #expect(try adjacent.normalized().elements == ranges)
        // Idempotent, and ranges with a key end (as pipapo reports them) stay.
        #expect(try adjacent.normalized().normalized() == adjacent.normalized())
        #expect(try set(ranges.reversed()).normalized().elements == ranges)
        // A start without an end reaches the top.
        #expect(try set([NftSetElement(key: S.port(65000))]).normalized().elements == [NftSetElement(key: S.port(65000), keyEnd: [0xff, 0xff])])
        // Plain sets are only sorted.
        let plain = NftSet(name: "p", keyLength: 2, elements: [NftSetElement(key: S.port(443)), NftSetElement(key: S.port(80))])
        #expect(try plain.normalized().elements == [NftSetElement(key: S.port(80)), NftSetElement(key: S.port(443))])
        // Two starts in a row do not pair up.
        #expect(throws: NftSet.Malformed("interval start 0x00000100 has no end before the next start 0x00000500")) {
            try set([NftSetElement(key: S.port(1)), NftSetElement(key: S.port(5)), NftSetElement(key: S.port(9), flags: .intervalEnd)]).normalized()
        }
    }

    @Test func lookupsPrintAsLibnftnlDoes() {
        #expect(LookupExpression(set: "__set0").description == "[ lookup reg 1 set __set0 0x0 ]")
        #expect(LookupExpression(set: "allowed", invert: true).description == "[ lookup reg 1 set allowed 0x1 ]")
        #expect(LookupExpression(set: "__map0", destination: .verdict).description == "[ lookup reg 1 set __map0 dreg 0 0x0 ]")
        #expect(LookupExpression(set: "m", source: NftRegister(kernel: 9), destination: .r2, setID: 3).description == "[ lookup reg 9 set m dreg 2 0x0 ]")
    }
}
