import Testing
import WeirDiagnostics
import WeirModel
import WeirTestFixtures
import WeirNftables

/// `NftLowering`: the exact expressions (libnftnl's debug spelling, as `nft --debug=netlink`
/// prints what the kernel holds; netlink note §2.3), the layout, and the located errors.
@Suite struct NftLoweringTests {
    typealias N = NftFixtures
    static let docker0 = N.iface("docker0")

    /// The debug text of the one rule `rule` lowers to in `table`/`chain`.
    static func lowered(_ rule: Rule, table: String = "filter", chain: String = "INPUT", family: Family = .ipv4,
                        user: [String] = []) -> [String]? {
        let model = Ruleset(tables: [N.F.table(table, family, rules: [chain: [rule]], user: user)])
        let (program, diagnostics) = NftLowering.lower(model)
        guard diagnostics.isEmpty else {
            Issue.record("unexpected diagnostics: \(diagnostics)")
            return nil
        }
        let rules = program.tables[0].chains.first { $0.name == chain }?.rules ?? []
        guard rules.count == 1 else { return nil }
        return rules[0].expressions.map(\.description)
    }

    /// The diagnostics of lowering a rule.
    static func diagnostics(_ rule: Rule, table: String = "filter", chain: String = "INPUT", family: Family = .ipv4,
                            user: [String] = [], extra: [String: [Rule]] = [:]) -> [String] {
        var rules = extra
        rules[chain, default: []].append(rule)
        let model = Ruleset(tables: [N.F.table(table, family, rules: rules, user: user)])
        return NftLowering.lower(model).diagnostics.map { "\($0.severity.rawValue): \($0.message)" }
    }

    @Test func dockerRulesMatchNativeNft() {
        // The bytecode nft 1.0.6 writes for Docker's rules (netlink note §2.3), without counters.
        #expect(Self.lowered(Rule([.addressType(.destination, .local)], .jump("DOCKER")), table: "nat", chain: "PREROUTING", user: ["DOCKER"]) == [
            "[ fib daddr type => reg 1 ]",
            "[ cmp eq reg 1 0x00000002 ]",
            "[ immediate reg 0 jump -> DOCKER ]",
        ])
        #expect(Self.lowered(Rule([.address(.destination, N.p("127.0.0.0/8"), negated: true), .addressType(.destination, .local)], .jump("DOCKER")),
                             table: "nat", chain: "OUTPUT", user: ["DOCKER"]) == [
            "[ payload load 1b @ network header + 16 => reg 1 ]",
            "[ cmp neq reg 1 0x0000007f ]",
            "[ fib daddr type => reg 1 ]",
            "[ cmp eq reg 1 0x00000002 ]",
            "[ immediate reg 0 jump -> DOCKER ]",
        ])
        #expect(Self.lowered(Rule([.address(.source, N.p("172.17.0.0/16")), .outInterface(Self.docker0, negated: true)], .masquerade(ports: nil)),
                             table: "nat", chain: "POSTROUTING") == [
            "[ payload load 2b @ network header + 12 => reg 1 ]",
            "[ cmp eq reg 1 0x000011ac ]",
            "[ meta load oifname => reg 1 ]",
            "[ cmp neq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ masq ]",
        ])
        #expect(Self.lowered(Rule([.inInterface(Self.docker0, negated: true), .protocol(.tcp), .port(.destination, PortRange(10080))],
                                  .dnat(NATDestination(address: N.ip("172.17.0.2"), ports: PortRange(80)))),
                             table: "nat", chain: "PREROUTING") == [
            "[ meta load iifname => reg 1 ]",
            "[ cmp neq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp eq reg 1 0x00006027 ]",
            "[ immediate reg 1 0x020011ac ]",
            "[ immediate reg 2 0x00005000 ]",
            "[ nat dnat ip addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]",
        ])
        #expect(Self.lowered(Rule([.outInterface(Self.docker0), .conntrackState([.related, .established])], .accept), chain: "FORWARD") == [
            "[ meta load oifname => reg 1 ]",
            "[ cmp eq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ ct load state => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]",
            "[ cmp neq reg 1 0x00000000 ]",
            "[ immediate reg 0 accept ]",
        ])
        #expect(Self.lowered(Rule([.address(.destination, N.p("172.17.0.2")), .inInterface(Self.docker0, negated: true), .outInterface(Self.docker0),
                                   .protocol(.tcp), .port(.destination, PortRange(80))], .accept), chain: "FORWARD") == [
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ cmp eq reg 1 0x020011ac ]",
            "[ meta load iifname => reg 1 ]",
            "[ cmp neq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ meta load oifname => reg 1 ]",
            "[ cmp eq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp eq reg 1 0x00005000 ]",
            "[ immediate reg 0 accept ]",
        ])
        #expect(Self.lowered(Rule([], .return), chain: "USER", user: ["USER"]) == ["[ immediate reg 0 return ]"])
        #expect(Self.lowered(Rule([.outInterface(Self.docker0)], .drop), chain: "FORWARD") == [
            "[ meta load oifname => reg 1 ]",
            "[ cmp eq reg 1 0x6b636f64 0x00307265 0x00000000 0x00000000 ]",
            "[ immediate reg 0 drop ]",
        ])
    }

    @Test func interfacesAndPrefixes() {
        #expect(Self.lowered(Rule([.inInterface(N.iface("docker+"))], .accept)) == [
            "[ meta load iifname => reg 1 ]", "[ cmp eq reg 1 0x6b636f64 0x00007265 ]", "[ immediate reg 0 accept ]",
        ])
        // 15 bytes + NUL; a bare `+` and `/0` need no expression.
        #expect(Self.lowered(Rule([.outInterface(N.iface("veth12345678901")), .inInterface(N.iface("+")),
                                   .address(.source, N.p("0.0.0.0/0"))], .accept), chain: "FORWARD") == [
            "[ meta load oifname => reg 1 ]", "[ cmp eq reg 1 0x68746576 0x34333231 0x38373635 0x00313039 ]", "[ immediate reg 0 accept ]",
        ])
        // Not byte-aligned: the full address, masked; host bits of the model's prefix are cleared.
        #expect(Self.lowered(Rule([.address(.source, N.p("10.31.2.3/12"), negated: true)], .accept)) == [
            "[ payload load 4b @ network header + 12 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x0000f0ff ) ^ 0x00000000 ]",
            "[ cmp neq reg 1 0x0000100a ]",
            "[ immediate reg 0 accept ]",
        ])
        #expect(Self.lowered(Rule([.address(.source, N.p("2001:db8:0:0:1::/80")), .address(.destination, N.p("fd00::/12"))], .accept), family: .ipv6) == [
            "[ payload load 10b @ network header + 8 => reg 1 ]",
            "[ cmp eq reg 1 0xb80d0120 0x00000000 0x00000100 ]",
            "[ payload load 16b @ network header + 24 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x0000f0ff 0x00000000 0x00000000 0x00000000 ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]",
            "[ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x00000000 ]",
            "[ immediate reg 0 accept ]",
        ])
    }

    @Test func portsStatesAndAddressTypes() {
        #expect(Self.lowered(Rule([.protocol(.udp), .port(.source, PortRange(8000, 8080)), .port(.destination, PortRange(53), negated: true),
                                   .conntrackState([.established], negated: true), .addressType(.source, .broadcast, negated: true)], .drop)) == [
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000011 ]",
            "[ payload load 2b @ transport header + 0 => reg 1 ]",
            "[ range eq reg 1 0x0000401f 0x0000901f ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp neq reg 1 0x00003500 ]",
            "[ ct load state => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000002 ) ^ 0x00000000 ]",
            "[ cmp eq reg 1 0x00000000 ]",
            "[ fib saddr type => reg 1 ]",
            "[ cmp neq reg 1 0x00000003 ]",
            "[ immediate reg 0 drop ]",
        ])
        #expect(Self.lowered(Rule([.protocol(.sctp), .port(.destination, PortRange(1, 2), negated: true), .conntrackState([.untracked, .invalid])], .accept)) == [
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000084 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ range neq reg 1 0x00000100 0x00000200 ]",
            "[ ct load state => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000041 ) ^ 0x00000000 ]",
            "[ cmp neq reg 1 0x00000000 ]",
            "[ immediate reg 0 accept ]",
        ])
        // RTN_* values for every address type.
        for (type, rtn) in zip(AddressType.allCases, 0...) {
            #expect(Self.lowered(Rule([.addressType(.destination, type)], .accept))?[1] == "[ cmp eq reg 1 0x\(String(format: "%08x", rtn)) ]")
        }
    }

    @Test func targets() {
        #expect(Self.lowered(Rule([], .reject(with: nil)))?.first == "[ reject type 0 code 3 ]")
        #expect(Self.lowered(Rule([], .reject(with: nil)), family: .ipv6)?.first == "[ reject type 0 code 4 ]")
        #expect(Self.lowered(Rule([.protocol(.tcp)], .reject(with: "tcp-reset")))?.last == "[ reject type 1 code 0 ]")
        let v4: [(String, UInt8)] = [("icmp-net-unreachable", 0), ("icmp-host-unreachable", 1), ("icmp-proto-unreachable", 2),
                                     ("icmp-port-unreachable", 3), ("icmp-net-prohibited", 9), ("icmp-host-prohibited", 10),
                                     ("icmp-admin-prohibited", 13), ("host-prohib", 10)]
        for (name, code) in v4 {
            #expect(Self.lowered(Rule([], .reject(with: name))) == ["[ reject type 0 code \(code) ]"], "\(name)")
        }
        let v6: [(String, UInt8)] = [("icmp6-no-route", 0), ("icmp6-adm-prohibited", 1), ("icmp6-addr-unreachable", 3),
                                     ("icmp6-port-unreachable", 4), ("icmp6-policy-fail", 5), ("icmp6-reject-route", 6)]
        for (name, code) in v6 {
            #expect(Self.lowered(Rule([], .reject(with: name)), family: .ipv6) == ["[ reject type 0 code \(code) ]"], "\(name)")
        }
        // LOG: the level is always explicit (the kernel reports 4 back when none is sent).
        #expect(Self.lowered(Rule([], .log(prefix: "weir: ", level: 6))) == ["[ log prefix weir:  level 6 ]"])
        #expect(Self.lowered(Rule([], .log(prefix: nil, level: nil))) == ["[ log level 4 ]"])
        #expect(Self.lowered(Rule([], .log(prefix: "", level: 0))) == ["[ log level 0 ]"])
        #expect(Self.lowered(Rule([], .goto("USER")), user: ["USER"]) == ["[ immediate reg 0 goto -> USER ]"])
        // NAT: reg 1 address, reg 2 (and reg 3) ports; the shape the kernel reports back.
        #expect(Self.lowered(Rule([.protocol(.udp)], .dnat(NATDestination(address: N.ip("fd00:db8:1::2"), ports: PortRange(6000, 6010)))),
                             table: "nat", chain: "PREROUTING", family: .ipv6)?.dropFirst(2).map { $0 } == [
            "[ immediate reg 1 0xb80d00fd 0x00000100 0x00000000 0x02000000 ]",
            "[ immediate reg 2 0x00007017 ]",
            "[ immediate reg 3 0x00007a17 ]",
            "[ nat dnat ip6 addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 3 flags 0x3 ]",
        ])
        #expect(Self.lowered(Rule([], .snat(NATDestination(address: N.ip("10.0.0.1")))), table: "nat", chain: "INPUT") == [
            "[ immediate reg 1 0x0100000a ]",
            "[ nat snat ip addr_min reg 1 addr_max reg 1 flags 0x1 ]",
        ])
        let masq = Self.lowered(Rule([.protocol(.tcp)], .masquerade(ports: PortRange(1024, 65535))), table: "nat", chain: "POSTROUTING")
        #expect(masq?.dropFirst(2).map { $0 } == [
            "[ immediate reg 1 0x00000004 ]", "[ immediate reg 2 0x0000ffff ]", "[ masq proto_min reg 1 proto_max reg 2 flags 0x2 ]",
        ])
        #expect(Self.lowered(Rule([.protocol(.udp)], .masquerade(ports: PortRange(1000))), table: "nat", chain: "POSTROUTING")?.dropFirst(2).map { $0 } == [
            "[ immediate reg 1 0x0000e803 ]", "[ masq proto_min reg 1 proto_max reg 1 flags 0x2 ]",
        ])
        #expect(MasqExpression(protoMin: .r1, protoMax: .r1).flags == .protoSpecified)
        #expect(MasqExpression().flags == [])
    }

    @Test func layout() {
        let (program, _) = NftLowering.lower(NftFixtures.kitchenSink(.ipv4))
        let chains = program.tables.flatMap { table in table.chains.compactMap { chain in
            chain.base.map { "\(table.name) \(chain.name) \($0.type.rawValue) \($0.hook.rawValue) \($0.priority) \($0.policy.rawValue)" }
        } }
        #expect(chains == [
            "weir-raw PREROUTING filter PREROUTING -300 ACCEPT",
            "weir-raw OUTPUT filter OUTPUT -300 ACCEPT",
            "weir-mangle PREROUTING filter PREROUTING -150 DROP",
            "weir-mangle INPUT filter INPUT -150 ACCEPT",
            "weir-mangle FORWARD filter FORWARD -150 ACCEPT",
            "weir-mangle OUTPUT route OUTPUT -150 ACCEPT",
            "weir-mangle POSTROUTING filter POSTROUTING -150 ACCEPT",
            "weir-filter INPUT filter INPUT 0 ACCEPT",
            "weir-filter FORWARD filter FORWARD 0 DROP",
            "weir-filter OUTPUT filter OUTPUT 0 DROP",
            "weir-nat PREROUTING nat PREROUTING -100 ACCEPT",
            "weir-nat INPUT nat INPUT 100 ACCEPT",
            "weir-nat OUTPUT nat OUTPUT -100 ACCEPT",
            "weir-nat POSTROUTING nat POSTROUTING 100 ACCEPT",
        ])
        let filter = program.tables.first { $0.name == "weir-filter" }!
        #expect(filter.chains.map(\.name) == ["INPUT", "FORWARD", "OUTPUT", "DOCKER-USER", "USER", "Zed", "a-lower"])
        #expect(filter.chains.first { $0.name == "USER" }?.base == nil)
        #expect(filter.chains[0].rules[0].comment == "web: 'ok' x")
        #expect(NftLayout.nftTableName("filter") == "weir-filter")
        #expect(NftLayout.modelTableName("weir-nat") == "nat")
        #expect(NftLayout.modelTableName("nat") == "nat")
        #expect(NftLayout.modelTableName("weir-") == "weir-")
    }

    @Test func checksumIsLeftOutWithAWarning() {
        let file = SourceFile(path: "p.weir", text: "sctp checksum\n")
        let at = SourceRange(file: file, start: 0, end: 4)
        let rule = Rule([.protocol(.sctp), .port(.source, PortRange(3868))], .checksumFill, provenance: at)
        let model = Ruleset(tables: [N.F.table("mangle", rules: ["POSTROUTING": [rule, Rule([], .accept)]])])
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(diagnostics.map(\.description) == [
            "p.weir:1:1: warning: CHECKSUM --checksum-fill has no nftables equivalent; the rule is left out of the nftables ruleset (Docker's nftables backend omits it too) (table ip mangle, chain POSTROUTING)",
        ])
        #expect(program.tables[0].chains.first { $0.name == "POSTROUTING" }?.rules.map { $0.expressions.map(\.description) } == [["[ immediate reg 0 accept ]"]])
    }

    @Test func unsupportedRulesAreLocatedErrors() {
        let file = SourceFile(path: "bad.weir", text: "line one\nline two\n")
        let at = SourceRange(file: file, start: 9, end: 12)
        let rule = Rule([.address(.source, N.p("fd00::1"))], .accept, provenance: at)
        let model = Ruleset(tables: [N.F.table("filter", rules: ["INPUT": [rule, Rule([], .accept)]])])
        let (program, diagnostics) = NftLowering.lower(model)
        #expect(diagnostics.map(\.description) == ["bad.weir:2:1: error: IPv6 address fd00::1/128 in an ip table (table ip filter, chain INPUT)"])
        // The rule is not in the program; the others are.
        #expect(program.tables[0].chains[0].rules.count == 1)

        let e = { (rule: Rule, table: String, chain: String, user: [String]) in Self.diagnostics(rule, table: table, chain: chain, user: user) }
        #expect(e(Rule([.address(.source, N.p("0.0.0.0/0"), negated: true)], .accept), "filter", "INPUT", [])
            == ["error: '!= 0.0.0.0/0' matches no packet; nftables rules cannot keep it (table ip filter, chain INPUT)"])
        #expect(e(Rule([.inInterface(N.iface("+"), negated: true)], .accept), "filter", "INPUT", [])
            == ["error: 'iifname != *' matches no packet; nftables rules cannot keep it (table ip filter, chain INPUT)"])
        #expect(e(Rule([.inInterface(N.iface("0123456789abcdef"))], .accept), "filter", "INPUT", [])
            == ["error: interface name '0123456789abcdef' is longer than 15 bytes (table ip filter, chain INPUT)"])
        #expect(e(Rule([.port(.destination, PortRange(80))], .accept), "filter", "INPUT", [])
            == ["error: port match without a tcp, udp or sctp protocol match (table ip filter, chain INPUT)"])
        #expect(e(Rule([.protocol(.tcp, negated: true), .port(.destination, PortRange(80))], .accept), "filter", "INPUT", [])
            == ["error: port match needs a non-negated tcp, udp or sctp protocol match before it (table ip filter, chain INPUT)"])
        #expect(e(Rule([.protocol(.icmp), .port(.destination, PortRange(80))], .accept), "filter", "INPUT", [])
            == ["error: port match needs a non-negated tcp, udp or sctp protocol match before it (table ip filter, chain INPUT)"])
        #expect(e(Rule([.conntrackState([])], .accept), "filter", "INPUT", [])
            == ["error: conntrack state match with no states (table ip filter, chain INPUT)"])
        #expect(e(Rule([.comment("a"), .comment("b")], .accept), "filter", "INPUT", [])
            == ["error: an nftables rule carries one comment; this rule has several (table ip filter, chain INPUT)"])
        #expect(e(Rule([.comment(String(repeating: "x", count: 129))], .accept), "filter", "INPUT", [])
            == ["error: comment is longer than 128 bytes, the most nft keeps (table ip filter, chain INPUT)"])
        #expect(e(Rule([], .reject(with: "icmp6-no-route")), "filter", "INPUT", [])
            == ["error: unknown ip reject type 'icmp6-no-route' (table ip filter, chain INPUT)"])
        #expect(e(Rule([.protocol(.udp)], .reject(with: "tcp-reset")), "filter", "INPUT", [])
            == ["error: reject with tcp reset needs a tcp protocol match (table ip filter, chain INPUT)"])
        #expect(e(Rule([], .reject(with: nil)), "raw", "PREROUTING", [])
            == ["error: reject is only valid in input, forward and output; this chain is reached from PREROUTING (table ip raw, chain PREROUTING)"])
        #expect(e(Rule([], .log(prefix: nil, level: 8)), "filter", "INPUT", [])
            == ["error: log level 8 is not a syslog level (0-7) (table ip filter, chain INPUT)"])
        #expect(e(Rule([], .jump("NOPE")), "filter", "INPUT", [])
            == ["error: jump NOPE: the table has no chain 'NOPE' (table ip filter, chain INPUT)"])
        #expect(e(Rule([], .goto("OUTPUT")), "filter", "INPUT", [])
            == ["error: goto OUTPUT: nftables cannot jump to a base chain (table ip filter, chain INPUT)"])
        #expect(e(Rule([], .masquerade(ports: nil)), "filter", "FORWARD", [])
            == ["error: masquerade needs a nat chain; only the nat table's chains are (table ip filter, chain FORWARD)",
                "error: masquerade is only valid in POSTROUTING; this chain is reached from FORWARD (table ip filter, chain FORWARD)"])
        #expect(e(Rule([], .dnat(NATDestination(address: N.ip("10.0.0.1")))), "nat", "POSTROUTING", [])
            == ["error: dnat is only valid in PREROUTING or OUTPUT; this chain is reached from POSTROUTING (table ip nat, chain POSTROUTING)"])
        #expect(e(Rule([], .snat(NATDestination(address: N.ip("fd00::1")))), "nat", "INPUT", [])
            == ["error: snat to fd00::1, an address of the other family (table ip nat, chain INPUT)"])
        #expect(e(Rule([.protocol(.icmp)], .snat(NATDestination(address: N.ip("10.0.0.1"), ports: PortRange(5)))), "nat", "INPUT", [])
            == ["error: snat with ports needs a tcp, udp or sctp protocol match (table ip nat, chain INPUT)"])
        #expect(e(Rule([], .masquerade(ports: PortRange(5))), "nat", "POSTROUTING", [])
            == ["error: masquerade with ports needs a tcp, udp or sctp protocol match (table ip nat, chain POSTROUTING)"])
    }

    /// A user chain reached from two hooks must suit both.
    @Test func natHooksFollowJumps() {
        let rules: [String: [Rule]] = [
            "PREROUTING": [Rule([], .jump("DOCKER"))],
            "POSTROUTING": [Rule([], .jump("DOCKER"))],
            "DOCKER": [Rule([], .dnat(NATDestination(address: N.ip("10.0.0.1"))))],
        ]
        let model = Ruleset(tables: [N.F.table("nat", rules: rules, user: ["DOCKER"])])
        #expect(NftLowering.lower(model).diagnostics.map(\.message)
            == ["dnat is only valid in PREROUTING or OUTPUT; this chain is reached from POSTROUTING (table ip nat, chain DOCKER)"])
    }

    @Test func badChainsAndTables() {
        let model = Ruleset(tables: [
            Table(family: .ipv4, name: "nat", chains: [
                Chain(name: "FORWARD", kind: .base(hook: .forward, priority: 0, policy: .accept)),
                Chain(name: "EARLY", kind: .base(hook: .prerouting, priority: -200, policy: .accept)),
                Chain(name: "", kind: .user),
            ]),
            Table(family: .ipv4, name: "huge", chains: [Chain(name: "X", kind: .base(hook: .input, priority: Int(Int32.max) + 1, policy: .accept))]),
        ])
        #expect(NftLowering.lower(model).diagnostics.map(\.message) == [
            "base chain 'EARLY' of table ip nat has priority -200; nat chains need a priority above -200 (conntrack)",
            "nat chains cannot hook forward; base chain 'FORWARD' of table ip nat does",
            "chain name '' is empty (table ip nat)",
            "base chain 'X' of table ip huge has priority 2147483648, outside nf_tables' 32-bit range",
        ])
    }
}
