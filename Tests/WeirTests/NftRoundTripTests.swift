import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirModel
import WeirNftables

/// Models for the nftables backend's tests.
enum NftFixtures {
    typealias F = IptablesFixtures
    static func p(_ text: String) -> Prefix { Prefix(text)! }
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    static func iface(_ text: String) -> InterfaceName { InterfaceName(iptables: text) }

    /// Every match, negation and target the nftables backend supports, in its normal form
    /// (one comment per rule, last; no `/0`; canonical reject names; log level never 4).
    static func kitchenSink(_ family: Family) -> Ruleset {
        let v4 = family == .ipv4
        let host = p(v4 ? "10.0.0.1" : "fd00::1")
        let net = p(v4 ? "10.1.0.0/16" : "fd00:1::/48")
        let odd = p(v4 ? "10.16.0.0/12" : "fd00::/12")
        let other = p(v4 ? "192.168.0.0/24" : "2001:db8:0:0:1::/80")
        let mapped = p(v4 ? "172.16.5.4" : "::ffff:172.16.5.4")
        let compressed = p(v4 ? "0.0.0.0/1" : "2001:db8:0:0:1:0:0:1")
        let container = ip(v4 ? "172.17.0.2" : "fd00:db8:1::2")
        let docker0 = iface("docker0")
        let rejects = NftRejectKind.all[family]!.filter { $0.type != .tcpReset }.map { kind in
            Rule([], kind.target(family: family))
        }
        let addressTypes = AddressType.allCases.enumerated().map { index, type in
            Rule([.addressType(index % 2 == 0 ? .destination : .source, type, negated: index % 3 == 0)], .drop)
        }
        let filter = F.table("filter", family, policies: [.forward: .drop, .output: .drop], rules: [
            "INPUT": [
                Rule([.address(.source, host), .address(.destination, net, negated: true), .inInterface(iface("eth+"), negated: true),
                      .protocol(.tcp), .port(.source, PortRange(1, 1024)), .port(.destination, PortRange(80), negated: true),
                      .conntrackState([.new, .untracked]), .comment("web: 'ok' x")], .accept),
                Rule([.protocol(.udp, negated: true)], .reject(with: nil)),
                Rule([.protocol(.tcp)], .reject(with: "tcp-reset")),
                Rule([.protocol(v4 ? .icmp : .icmpv6)], .reject(with: v4 ? "icmp-host-prohibited" : "icmp6-adm-prohibited")),
                Rule([.protocol(.sctp), .port(.destination, PortRange(0, 65535))], .log(prefix: "sctp ", level: 6)),
                Rule([.protocol(.sctp), .port(.destination, PortRange(5), negated: true)], .log(prefix: nil, level: 0)),
                Rule([.addressType(.source, .local, negated: true), .addressType(.destination, .unicast)], .goto("USER")),
                Rule([.protocol(.udp), .conntrackState([.established], negated: true), .comment("")], .jump("USER")),
                Rule([.conntrackState([.established, .related], negated: true)], .drop),
                Rule([.protocol(.udp), .port(.source, PortRange(53)), .port(.destination, PortRange(1000, 2000), negated: true)], .drop),
                Rule([.protocol(.tcp), .port(.source, PortRange(0, 1023)), .port(.destination, PortRange(1024, 65535))], .accept),
                Rule([.protocol(.tcp), .port(.source, PortRange(2, 3), negated: true), .port(.destination, PortRange(0))], .accept),
                Rule([.protocol(TransportProtocol(number: 200))], .accept),
                Rule([.address(.source, mapped), .address(.destination, compressed), .protocol(TransportProtocol(number: 47), negated: true)], .accept),
                Rule([.address(.source, odd, negated: true), .address(.destination, odd)], .accept),
                Rule([.conntrackState(Set(ConntrackState.allCases))], .accept),
                Rule([.inInterface(iface("docker+")), .outInterface(iface("veth12345678901"), negated: true)], .jump("a-lower")),
                Rule([.address(.source, other)], .log(prefix: "a 29-byte prefix: 'x' ok", level: 7)),
                Rule([], .jump("Zed")),
            ] + rejects + addressTypes,
            "FORWARD": [
                Rule([.inInterface(docker0), .outInterface(iface("br-0123456789ab"), negated: true), .protocol(TransportProtocol(number: 47))], .drop),
                Rule([.outInterface(docker0), .conntrackState([.related, .established])], .accept),
                Rule([.address(.destination, p(v4 ? "172.17.0.2" : "fd00:db8:1::2")), .inInterface(docker0, negated: true),
                      .outInterface(docker0), .protocol(.tcp), .port(.destination, PortRange(80))], .jump("DOCKER-USER")),
            ],
            "OUTPUT": [Rule([.outInterface(iface("lo"))], .accept), Rule([], .return)],
            "USER": [Rule([.comment("plain")], .log(prefix: nil, level: nil)), Rule([], .return)],
            "a-lower": [Rule([], .return)],
            "Zed": [Rule([], .goto("USER"))],
            "DOCKER-USER": [],
        ], user: ["USER", "a-lower", "Zed", "DOCKER-USER"])
        let nat = F.table("nat", family, rules: [
            "PREROUTING": [
                Rule([.protocol(.tcp), .port(.destination, PortRange(8080))], .dnat(NATDestination(address: container, ports: PortRange(80)))),
                Rule([.protocol(.udp), .port(.destination, PortRange(5000, 5010))], .dnat(NATDestination(address: container, ports: PortRange(6000, 6010)))),
                Rule([.addressType(.destination, .local)], .jump("DOCKER")),
            ],
            "INPUT": [Rule([.address(.source, net)], .snat(NATDestination(address: host.address)))],
            "OUTPUT": [
                Rule([.address(.destination, p(v4 ? "127.0.0.0/8" : "::1/128"), negated: true), .addressType(.destination, .local)], .jump("DOCKER")),
                Rule([.outInterface(iface("eth0"))], .dnat(NATDestination(address: container))),
            ],
            "POSTROUTING": [
                Rule([.address(.source, net), .protocol(.udp)], .snat(NATDestination(address: host.address, ports: PortRange(1000, 2000)))),
                Rule([.protocol(.sctp)], .snat(NATDestination(address: host.address, ports: PortRange(7)))),
                Rule([.protocol(.tcp)], .masquerade(ports: PortRange(1024, 65535))),
                Rule([.protocol(.udp)], .masquerade(ports: PortRange(1000))),
                Rule([.address(.source, p(v4 ? "172.17.0.0/16" : "fd00:db8:1::/64")), .outInterface(docker0, negated: true)], .masquerade(ports: nil)),
            ],
            "DOCKER": [
                Rule([.inInterface(docker0)], .return),
                Rule([.inInterface(docker0, negated: true), .protocol(.tcp), .port(.destination, PortRange(10080))],
                     .dnat(NATDestination(address: container, ports: PortRange(80)))),
            ],
        ], user: ["DOCKER"])
        let mangle = F.table("mangle", family, policies: [.prerouting: .drop], rules: [
            "PREROUTING": [Rule([.inInterface(iface("eth1"))], .goto("MARKS")), Rule([], .accept)],
            "OUTPUT": [Rule([.protocol(.udp), .port(.destination, PortRange(53))], .accept)],
            "MARKS": [Rule([], .log(prefix: "mangle", level: 5))],
        ], user: ["MARKS"])
        let raw = F.table("raw", family, rules: [
            "PREROUTING": [Rule([.address(.destination, host), .inInterface(iface("eth0"), negated: true)], .drop)],
        ])
        return Ruleset(tables: [filter, nat, mangle, raw])
    }

    /// The policies in `Policies/`, by file name.
    static var policies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }

    /// A model without its CHECKSUM rules (which the nftables backend leaves out).
    static func withoutChecksum(_ ruleset: Ruleset) -> Ruleset {
        var result = Ruleset()
        for var table in ruleset.tables {
            for chain in table.chains {
                table.modifyChain(chain.name) { $0.rules.removeAll { $0.target == .checksumFill } }
            }
            result.add(table)
        }
        return result
    }

    static func errors(_ diagnostics: [Diagnostic]) -> [String] {
        diagnostics.filter { $0.severity == .error }.map(\.description)
    }
}

/// The law `lift(lower(m)) == m` on every policy and on the kitchen sink.
@Suite struct NftRoundTripTests {
    typealias N = NftFixtures

    @Test("there are policies to round-trip")
    func policiesExist() {
        #expect(N.policies.count >= 12)
    }

    @Test("lift(lower(m)) == m for every policy (CHECKSUM rules left out with a warning)", arguments: N.policies)
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
        #expect(lifted == N.withoutChecksum(model))
        #expect(NftLowering.normalForm(model) == N.withoutChecksum(model), "the policy is in the backend's normal form")
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
