import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirModel
import WeirNftables
import WeirTestFixtures

extension NftFixtures {
    /// The policies in `Policies/`, by file name.
    static var policies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }
}

@Suite struct NftRoundTripTests {
    typealias N = NftFixtures

    @Test("there are policies to round-trip")
    func policiesExist() {
        #expect(N.policies.count >= 12)
    }

    @Test("lift(lower(m)) == normalForm(m) for every policy (CHECKSUM rules left out with a warning)", arguments: N.policies)
    func policyRoundTrip(_ policy: String) throws {
        let result = Compiler.compile(path: Repository.policy(policy))
        #expect(!result.hasErrors, "\(result.diagnostics)")
        let model = try #require(result.ruleset)
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(N.errors(diagnostics) == [])
        let checksumRules = model.tables.flatMap(\.chains).flatMap(\.rules).filter { $0.target == .checksumFill }
        let warnings = diagnostics.filter { $0.severity == .warning }
        #expect(warnings.count == checksumRules.count)
        #expect(zip(warnings, checksumRules).allSatisfy { $0.range == $1.provenance && $0.message.contains("CHECKSUM") })
        // Weir's own tables, one per model table.
        #expect(program.tables.map { "\($0.family.rawValue) \($0.name)" } == model.tables.map { "\($0.family.rawValue) weir-\($0.name)" })

        let (lifted, liftDiagnostics) = NftLifting.lift(program)
        #expect(liftDiagnostics.map(\.description) == [])
        let normal = NftLowering.normalForm(model)
        #expect(lifted == normal)
        // The normal form differs from the policy's model only in the order of set groups' rules:
        // without CHECKSUM, chain by chain the same rules.
        let expected = N.withoutChecksum(model)
        #expect(normal.tables.map { $0.chains.map { Set($0.rules) } } == expected.tables.map { $0.chains.map { Set($0.rules) } })
        #expect(normal.tables.map { $0.chains.map(\.rules.count) } == expected.tables.map { $0.chains.map(\.rules.count) })
        if program.tables.allSatisfy(\.sets.isEmpty) {
            #expect(normal == expected, "without set groups the policy is in the backend's normal form")
        }
        // Lowering is deterministic, and lowering the lifted model gives the same program.
        #expect(NftLowering.lower(lifted).program == program)
        // Provenance survives the round trip.
        let provenances = lifted.tables.flatMap(\.chains).flatMap(\.rules).map(\.provenance)
        #expect(provenances.allSatisfy { $0 != nil })
    }

    @Test(arguments: [Family.ipv4, Family.ipv6])
    func kitchenSinkRoundTrips(family: Family) {
        let model = N.kitchenSink(family)
        #expect(NftLowering.normalForm(model) == model)
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(diagnostics.map(\.description) == [])
        let (lifted, liftDiagnostics) = NftLifting.lift(program)
        #expect(liftDiagnostics.map(\.description) == [])
        #expect(lifted == model)
        for (a, b) in zip(lifted.tables, model.tables) where a != b {
            for (x, y) in zip(a.chains, b.chains) where x != y {
                for (r, s) in zip(x.rules, y.rules) where r != s { Issue.record("\(a.name) \(x.name): lifted \(r) ≠ \(s)") }
            }
        }
    }

    @Test func bothFamiliesTogether() {
        var model = N.kitchenSink(.ipv4)
        for table in N.kitchenSink(.ipv6).tables { model.add(table) }
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(diagnostics.isEmpty)
        #expect(program.tables.map { "\($0.family.rawValue) \($0.name)" } == [
            "ip weir-raw", "ip weir-mangle", "ip weir-filter", "ip weir-nat",
            "ip6 weir-raw", "ip6 weir-mangle", "ip6 weir-filter", "ip6 weir-nat",
        ])
        #expect(NftLifting.lift(program).ruleset == model)
    }

    /// Models outside the normal form lift to their normal form.
    @Test(arguments: [Family.ipv4, Family.ipv6])
    func nonNormalModelsLiftToTheirNormalForm(family: Family) {
        let v4 = family == .ipv4
        let rules: [Rule] = [
            Rule([.address(.source, N.p(v4 ? "10.9.8.7/8" : "fd00::1234/16")), .address(.destination, N.p(v4 ? "0.0.0.0/0" : "::/0"))], .accept),
            Rule([.inInterface(N.iface("+"))], .log(prefix: "", level: 4)),
            Rule([.comment("first"), .conntrackState([.new])], .reject(with: v4 ? "host-prohib" : "adm-prohibited")),
            Rule([], .reject(with: v4 ? "icmp-port-unreachable" : "PORT-UNREACH")),
            Rule([.protocol(.sctp)], .checksumFill),
        ]
        let model = Ruleset(tables: [N.F.table("filter", family, rules: ["INPUT": rules])])
        let normal = NftLowering.normalForm(model)
        #expect(normal.table(family, "filter")?.chain(named: "INPUT")?.rules == [
            Rule([.address(.source, N.p(v4 ? "10.0.0.0/8" : "fd00::/16"))], .accept),
            Rule([], .log(prefix: nil, level: nil)),
            Rule([.conntrackState([.new]), .comment("first")], .reject(with: v4 ? "icmp-host-prohibited" : "icmp6-adm-prohibited")),
            Rule([], .reject(with: nil)),
        ])
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(N.errors(diagnostics) == [])
        #expect(NftLifting.lift(program).ruleset == normal)
    }
}
