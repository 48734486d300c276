import Testing
import WeirDiagnostics
import WeirModel
import WeirTestFixtures
import WeirNftables

/// `NftTextPrinter`: the exact text (the kernel tests load it into nft), the rule spellings, and
/// what `unsupported` reports.
@Suite struct NftTextPrinterTests {
    typealias N = NftFixtures

    static let dockerS1Text = """
    # Weir nftables ruleset (nft -f). Loading it replaces ip weir-filter, ip weir-nat in one transaction and leaves other tables alone.

    table ip weir-filter {}
    delete table ip weir-filter
    table ip weir-filter {
    \tchain INPUT {
    \t\ttype filter hook input priority 0; policy accept;
    \t}

    \tchain FORWARD {
    \t\ttype filter hook forward priority 0; policy drop;
    \t\tjump DOCKER-USER
    \t\tjump DOCKER-ISOLATION-STAGE-1
    \t\toifname "docker0" ct state related,established accept
    \t\toifname "docker0" jump DOCKER
    \t\tiifname "docker0" oifname != "docker0" accept
    \t\tiifname "docker0" oifname "docker0" accept
    \t}

    \tchain OUTPUT {
    \t\ttype filter hook output priority 0; policy accept;
    \t}

    \tchain DOCKER {
    \t\tip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 accept
    \t}

    \tchain DOCKER-ISOLATION-STAGE-1 {
    \t\tiifname "docker0" oifname != "docker0" jump DOCKER-ISOLATION-STAGE-2
    \t\treturn
    \t}

    \tchain DOCKER-ISOLATION-STAGE-2 {
    \t\toifname "docker0" drop
    \t\treturn
    \t}

    \tchain DOCKER-USER {
    \t\treturn
    \t}
    }

    table ip weir-nat {}
    delete table ip weir-nat
    table ip weir-nat {
    \tchain PREROUTING {
    \t\ttype nat hook prerouting priority -100; policy accept;
    \t\tfib daddr type local jump DOCKER
    \t}

    \tchain INPUT {
    \t\ttype nat hook input priority 100; policy accept;
    \t}

    \tchain OUTPUT {
    \t\ttype nat hook output priority -100; policy accept;
    \t\tip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER
    \t}

    \tchain POSTROUTING {
    \t\ttype nat hook postrouting priority 100; policy accept;
    \t\tip saddr 172.17.0.0/16 oifname != "docker0" masquerade
    \t\tip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 masquerade
    \t}

    \tchain DOCKER {
    \t\tiifname "docker0" return
    \t\tiifname != "docker0" tcp dport 10080 dnat to 172.17.0.2:80
    \t}
    }

    """

    @Test func dockerS1Golden() {
        let text = NftTextPrinter.render(N.F.dockerS1)
        #expect(text == Self.dockerS1Text)
        #expect(NftTextPrinter.render(N.F.dockerS1) == text, "deterministic")
        #expect(NftTextPrinter.unsupported(N.F.dockerS1).isEmpty)
    }

    @Test func familySelection() {
        var model = N.kitchenSink(.ipv4)
        for table in N.kitchenSink(.ipv6).tables { model.add(table) }
        let v6 = NftTextPrinter.render(model, family: .ipv6)
        #expect(v6.contains("table ip6 weir-filter {") && !v6.contains("table ip weir-filter {"))
        #expect(NftTextPrinter.render(model).contains("table ip weir-filter {\n"))
        // Each table: create (if missing), delete, define — one transaction in `nft -f`.
        #expect(v6.contains("\ntable ip6 weir-nat {}\ndelete table ip6 weir-nat\ntable ip6 weir-nat {\n"))
        #expect(NftTextPrinter.render(Ruleset()) == "# Weir nftables ruleset (nft -f). Loading it replaces nothing in one transaction and leaves other tables alone.\n")
    }

    static func rule(_ matches: [Match], _ target: Target, family: Family = .ipv4) -> String {
        NftTextPrinter.render(Rule(matches, target), family: family)
    }

    @Test func ruleSpellings() {
        let tcp = Match.protocol(.tcp)
        #expect(Self.rule([tcp, .port(.destination, PortRange(10080))], .dnat(NATDestination(address: N.ip("172.17.0.2"), ports: PortRange(80))))
            == "tcp dport 10080 dnat to 172.17.0.2:80")
        #expect(Self.rule([tcp], .dnat(NATDestination(address: N.ip("fd00::2"), ports: PortRange(80, 81))), family: .ipv6)
            == "meta l4proto tcp dnat to [fd00::2]:80-81")
        #expect(Self.rule([], .snat(NATDestination(address: N.ip("fd00::2"))), family: .ipv6) == "snat to fd00::2")
        #expect(Self.rule([tcp], .masquerade(ports: PortRange(1024, 65535))) == "meta l4proto tcp masquerade to :1024-65535")
        #expect(Self.rule([.protocol(.udp, negated: true), .protocol(.tcp), .port(.source, PortRange(1, 2), negated: true)], .accept)
            == "meta l4proto != udp tcp sport != 1-2 accept")
        #expect(Self.rule([.conntrackState([.established, .related], negated: true)], .drop) == "ct state ! related,established drop")
        #expect(Self.rule([.conntrackState([.new])], .accept) == "ct state new accept")
        #expect(Self.rule([.addressType(.source, .throw, negated: true), .addressType(.destination, .local)], .accept)
            == "fib saddr type != 9 fib daddr type local accept")
        #expect(Self.rule([.address(.source, N.p("10.9.8.7/8")), .address(.destination, N.p("0.0.0.0/0"))], .accept) == "ip saddr 10.0.0.0/8 accept")
        #expect(Self.rule([.inInterface(N.iface("+")), .outInterface(N.iface("wg+"), negated: true)], .accept) == "oifname != \"wg*\" accept")
        #expect(Self.rule([], .log(prefix: "x: ", level: 4)) == "log prefix \"x: \" level warn")
        #expect(Self.rule([], .log(prefix: "", level: nil)) == "log")
        #expect(Self.rule([.comment("why")], .reject(with: "icmp-proto-unreachable")) == "reject with icmp prot-unreachable comment \"why\"")
        #expect(Self.rule([], .reject(with: "icmp6-port-unreachable"), family: .ipv6) == "reject")
        #expect(Self.rule([.protocol(.sctp), .port(.source, PortRange(3868))], .checksumFill)
            == "# left out, no nftables equivalent: sctp sport 3868 checksum fill")
        #expect(Self.rule([], .goto("a-lower")) == "goto a-lower")
    }

    @Test func unsupportedNamesAndStrings() {
        let file = SourceFile(path: "u.weir", text: "x\n")
        let at = SourceRange(file: file, start: 0, end: 1)
        let model = Ruleset(tables: [N.F.table("filter", rules: [
            "INPUT": [
                Rule([.comment("say \"hi\"")], .accept, provenance: at),
                Rule([.inInterface(N.iface("a*b"))], .accept, provenance: at),
                Rule([], .log(prefix: "tab\there", level: nil), provenance: at),
                Rule([], .jump("log"), provenance: at),
            ],
            "log": [Rule([], .return, provenance: at)],
            "a:b": [],
        ], user: ["log", "a:b"])])
        #expect(NftTextPrinter.unsupported(model).map(\.description) == [
            "u.weir:1:1: error: comment 'say \"hi\"' contains a double quote, which nft's text syntax cannot carry (table ip filter, chain INPUT)",
            "u.weir:1:1: error: interface name 'a*b' contains '*' (nft's wildcard mark), which nft's text syntax cannot carry (table ip filter, chain INPUT)",
            "u.weir:1:1: error: log prefix 'tab\there' contains a control character, which nft's text syntax cannot carry (table ip filter, chain INPUT)",
            "u.weir:1:1: error: chain name 'a:b' cannot be written in nft syntax (an identifier of letters, digits, '_', '-', '.', '/', not a keyword) (table ip filter)",
            "u.weir:1:1: error: chain name 'log' cannot be written in nft syntax (an identifier of letters, digits, '_', '-', '.', '/', not a keyword) (table ip filter)",
        ])
        // The lowering's diagnostics come first: errors, and the CHECKSUM warning.
        let checksum = Ruleset(tables: [N.F.table("mangle", rules: ["POSTROUTING": [Rule([.protocol(.sctp)], .checksumFill)]])])
        #expect(NftTextPrinter.unsupported(checksum).map(\.severity) == [.warning])
        #expect(NftTextPrinter.unsupported(N.kitchenSink(.ipv6), family: .ipv4).isEmpty)
    }

    @Test func identifiers() {
        for name in ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "Zed", "a-lower", "_x", "x.y", "x/y", "weir-filter", "INPUT"] {
            #expect(NftTextPrinter.isIdentifier(name), "\(name)")
        }
        for name in ["", "1abc", "x:y", "a b", "a+b", "log", "counter", "ip", "jump", "accept", "filter", "state", "ct"] {
            #expect(!NftTextPrinter.isIdentifier(name), "\(name)")
        }
    }
}
