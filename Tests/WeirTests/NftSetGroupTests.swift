import Testing
import WeirModel
import WeirNftables
import WeirTestFixtures

/// `NftSetGroup`: which runs of rules the nftables backend writes as one set lookup or DNAT
/// map, the program it writes for them, and that lifting the program gives back the rules (in
/// the group's key order, which `NftLowering.normalForm` also uses).
@Suite struct NftSetGroupTests {
    typealias N = NftFixtures
    static let docker0 = N.iface("docker0")

    /// Docker's per-port DNAT rule: `! -i docker0 -p PROTO --dport HOST -j DNAT --to-destination ADDRESS:PORT`.
    static func dnat(_ host: UInt16, _ address: String, _ port: UInt16, _ proto: TransportProtocol = .tcp) -> Rule {
        Rule([.inInterface(docker0, negated: true), .protocol(proto), .port(.destination, PortRange(host))],
             .dnat(NATDestination(address: IPAddress(address)!, ports: PortRange(port))))
    }

    /// Docker's per-port filter rule: `-d ADDRESS/32 ! -i docker0 -o docker0 -p PROTO --dport PORT -j ACCEPT`.
    static func accept(_ address: String, _ port: UInt16, _ proto: TransportProtocol = .tcp) -> Rule {
        Rule([.address(.destination, N.p(address + "/32")), .inInterface(docker0, negated: true), .outInterface(docker0),
              .protocol(proto), .port(.destination, PortRange(port))], .accept)
    }

    static func segmentSizes(_ rules: [Rule]) -> [Int] {
        NftSetGroup.segments(rules, family: .ipv4).map { segment in
            switch segment {
            case .rule: 1
            case .group(let group): -group.members.count  // negative: a group
            }
        }
    }

    @Test func runsOfAtLeastFourRulesWithOneShapeAndDistinctKeysAreGroups() {
        let four = [Self.accept("172.17.0.2", 80), Self.accept("172.17.0.2", 443), Self.accept("172.17.0.3", 80), Self.accept("172.17.0.2", 53, .udp)]
        #expect(Self.segmentSizes(four) == [-4])
        // Three are too few.
        #expect(Self.segmentSizes(Array(four.prefix(3))) == [1, 1, 1])
        // A non-candidate ends the run; so does a repeated key (the second copy is shadowed by the
        // first, so it must stay after it).
        let other = Rule([.inInterface(Self.docker0)], .accept)
        #expect(Self.segmentSizes(four + [other] + four) == [-4, 1, -4])
        #expect(Self.segmentSizes(four + [four[1], four[0], four[2], four[3]]) == [-4, -4])
        // Different shared matches, targets, or key fields: different runs.
        let drop = four.map { Rule($0.matches, .drop) }
        #expect(Self.segmentSizes(four + drop) == [-4, -4])
        let noAddress = [Rule([.protocol(.tcp), .port(.destination, PortRange(1))], .accept), Rule([.protocol(.tcp), .port(.destination, PortRange(2))], .accept),
                         Rule([.protocol(.tcp), .port(.destination, PortRange(3))], .accept), Rule([.protocol(.tcp), .port(.destination, PortRange(4))], .accept)]
        #expect(Self.segmentSizes(four + noAddress) == [-4, -4])
        // Not candidates: a port range, a negated key match, a source port, a prefix.
        let notCandidates = [
            Rule([.protocol(.tcp), .port(.destination, PortRange(1, 2))], .accept),
            Rule([.protocol(.tcp), .port(.destination, PortRange(1), negated: true)], .accept),
            Rule([.protocol(.tcp), .port(.source, PortRange(1)), .port(.destination, PortRange(1))], .accept),
            Rule([.address(.source, N.p("10.0.0.0/8"))], .accept),
        ]
        #expect(Self.segmentSizes(notCandidates) == [1, 1, 1, 1])
    }

    @Test func interleavedBridgesMakeOneGroupEach() throws {
        // Docker appends each container's ports in turn, so the rules of two bridges alternate.
        // Their keys are distinct, so the segment's rules are pairwise disjoint and regroup by bridge.
        let br1 = N.iface("br-one")
        func forward(_ bridge: InterfaceName, _ address: String, _ port: UInt16) -> Rule {
            Rule([.address(.destination, N.p(address + "/32")), .inInterface(bridge, negated: true), .outInterface(bridge),
                  .protocol(.tcp), .port(.destination, PortRange(port))], .accept)
        }
        var rules: [Rule] = []
        for port in UInt16(1)...5 {
            rules.append(forward(Self.docker0, "172.17.0.2", port))
            rules.append(forward(br1, "172.18.0.2", port))
        }
        rules.append(forward(br1, "172.18.0.3", 1))  // a sixth for br-one, after the others
        let segments = NftSetGroup.segments(rules, family: .ipv4)
        try #require(segments.count == 2)
        guard case .group(let first) = segments[0], case .group(let second) = segments[1] else {
            Issue.record("expected two groups: \(segments)")
            return
        }
        #expect(first.rest == [.inInterface(Self.docker0, negated: true), .outInterface(Self.docker0)] && first.members.count == 5)
        #expect(second.rest == [.inInterface(br1, negated: true), .outInterface(br1)] && second.members.count == 6)
        // A repeated key ends the segment: the rules after it cannot move before it.
        let repeated = rules.prefix(4) + [rules[0]] + rules.suffix(from: 4)
        #expect(Self.segmentSizes(Array(repeated)) == [1, 1, 1, 1, -4, -4])
        // The normal form is the segment regrouped, and lifting the lowering gives it back.
        let table = N.F.table("filter", rules: ["DOCKER": rules], user: ["DOCKER"])
        let normal = NftLowering.normalForm(Ruleset(tables: [table]))
        #expect(normal.tables[0].chain(named: "DOCKER")?.rules == first.members.map(\.rule) + second.members.map(\.rule))
        let (program, diagnostics) = NftLowering.lower(Ruleset(tables: [table]))
        #expect(diagnostics.isEmpty)
        #expect(NftLifting.lift(program).ruleset == normal)
    }

    @Test func aDNATRunBecomesOneMapRule() throws {
        let rules = [Self.dnat(10080, "172.17.0.2", 80), Self.dnat(5353, "172.17.0.3", 53, .udp),
                     Self.dnat(8443, "172.17.0.2", 443), Self.dnat(10022, "172.17.0.4", 22)]
        let table = N.F.table("nat", rules: ["DOCKER": [Rule([.inInterface(Self.docker0)], .return)] + rules], user: ["DOCKER"])
        let (program, diagnostics) = NftLowering.lower(Ruleset(tables: [table]))
        #expect(diagnostics.isEmpty)
        let nftTable = try #require(program.tables.first)
        let chain = try #require(nftTable.chains.first { $0.name == "DOCKER" })
        #expect(chain.rules.count == 2)
        #expect(chain.rules[1].expressions.map(\.description) == [
            "[ meta load iifname => reg 1 ]",
            "[ cmp neq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ payload load 2b @ transport header + 2 => reg 9 ]",
            "[ lookup reg 1 set __map0 dreg 1 0x0 ]",
            "[ nat dnat ip addr_min reg 1 addr_max reg 1 proto_min reg 9 proto_max reg 9 flags 0x3 ]",
        ])
        let set = try #require(nftTable.set(named: "__map0"))
        #expect(set.flags == [.anonymous, .constant, .map])
        #expect(set.keyType == 12 << 6 | 13 && set.keyLength == 8)
        #expect(set.dataType == 7 << 6 | 13 && set.dataLength == 8)
        // Ascending keys: tcp (6) before udp (17), then the port.
        func key(_ proto: UInt8, _ port: UInt16) -> [UInt8] { [proto, 0, 0, 0, UInt8(port >> 8), UInt8(port & 0xff), 0, 0] }
        #expect(set.elements.map(\.key) == [key(6, 8443), key(6, 10022), key(6, 10080), key(17, 5353)])
        #expect(set.elements.first { $0.key == key(17, 5353) }?.data == [172, 17, 0, 3, 0, 53, 0, 0])
        // The lookup names the set's transaction id (its place in the table, from 1).
        let lookup = try #require(chain.rules[1].expressions.compactMap { $0 as? LookupExpression }.first)
        #expect(lookup.setID == 1)

        // Lifting gives the rules back, in key order, which is what the normal form says.
        let lifted = NftLifting.lift(program)
        #expect(lifted.diagnostics.isEmpty)
        let normal = NftLowering.normalForm(Ruleset(tables: [table]))
        #expect(lifted.ruleset == normal)
        #expect(normal.tables[0].chain(named: "DOCKER")?.rules.dropFirst().map(\.description)
            == [Self.dnat(8443, "172.17.0.2", 443), Self.dnat(10022, "172.17.0.4", 22), Self.dnat(10080, "172.17.0.2", 80),
                Self.dnat(5353, "172.17.0.3", 53, .udp)].map(\.description))
        // The normal form is a fixed point.
        #expect(NftLowering.normalForm(normal) == normal)
    }

    @Test func sharedTargetsLookUpAPlainSet() throws {
        for family in [Family.ipv4, .ipv6] {
            let addresses = family == .ipv4 ? ["172.17.0.2", "172.17.0.3"] : ["fd00::2", "fd00::3"]
            let width = family == .ipv4 ? 32 : 128
            let rules = (0..<6).map { i in
                Rule([.address(.destination, N.p("\(addresses[i % 2])/\(width)")), .inInterface(Self.docker0, negated: true), .outInterface(Self.docker0),
                      .protocol(i == 5 ? .udp : .tcp), .port(.destination, PortRange(UInt16(8000 + i))), .comment("published")], .log(prefix: "pub: ", level: nil))
            }
            let table = N.F.table("filter", family, rules: ["DOCKER": rules], user: ["DOCKER"])
            let (program, diagnostics) = NftLowering.lower(Ruleset(tables: [table]))
            #expect(diagnostics.isEmpty)
            let nftTable = try #require(program.tables.first)
            let chain = try #require(nftTable.chains.first { $0.name == "DOCKER" })
            try #require(chain.rules.count == 1)
            let addressWords = family == .ipv4 ? 1 : 4
            let daddr = family == .ipv4 ? "[ payload load 4b @ network header + 16 => reg 1 ]" : "[ payload load 16b @ network header + 24 => reg 1 ]"
            #expect(Array(chain.rules[0].expressions.map(\.description).suffix(5)) == [
                daddr,
                "[ meta load l4proto => reg \(NftRegister(kernel: UInt32(8 + addressWords))) ]",
                "[ payload load 2b @ transport header + 2 => reg \(NftRegister(kernel: UInt32(9 + addressWords))) ]",
                "[ lookup reg 1 set __set0 0x0 ]",
                "[ log prefix pub:  level 4 ]",
            ])
            #expect(chain.rules[0].comment == "published")
            let set = try #require(nftTable.set(named: "__set0"))
            #expect(set.flags == [.anonymous, .constant] && set.dataType == nil)
            #expect(set.keyLength == UInt32(addressWords * 4 + 8) && set.elements.count == 6)
            let lifted = NftLifting.lift(program)
            #expect(lifted.diagnostics.isEmpty)
            #expect(lifted.ruleset == NftLowering.normalForm(Ruleset(tables: [table])))
        }
    }

    @Test func theTextWritesTheSameGroups() {
        let rules = [Self.dnat(10080, "172.17.0.2", 80), Self.dnat(5353, "172.17.0.3", 53, .udp),
                     Self.dnat(8443, "172.17.0.2", 443), Self.dnat(10022, "172.17.0.4", 22)]
        let table = N.F.table("nat", rules: ["DOCKER": rules], user: ["DOCKER"])
        let text = NftTextPrinter.render(Ruleset(tables: [table]))
        #expect(text.contains("""
            \t\tiifname != "docker0" dnat ip to meta l4proto . th dport map {
            \t\t\ttcp . 8443 : 172.17.0.2 . 443,
            \t\t\ttcp . 10022 : 172.17.0.4 . 22,
            \t\t\ttcp . 10080 : 172.17.0.2 . 80,
            \t\t\tudp . 5353 : 172.17.0.3 . 53
            \t\t}

            """))
    }
}
