import Testing
import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirTestFixtures

@Suite struct IptablesImporterTests {
    typealias F = IptablesFixtures

    static func parse(_ text: String, family: Family = .ipv4, path: String = "t.rules") -> (Ruleset, [String]) {
        let result = IptablesImporter.parse(SourceFile(path: path, text: text), family: family)
        return (result.ruleset, result.diagnostics.map(\.description))
    }

    static let filterHeader = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:USER - [0:0]\n"

    /// The rules of filter INPUT after the header.
    static func inputRules(_ lines: String, family: Family = .ipv4) -> [Rule] {
        let (ruleset, errors) = parse(filterHeader + lines + "\nCOMMIT\n", family: family)
        #expect(errors == [])
        return ruleset.table(family, "filter")?.chain(named: "INPUT")?.rules ?? []
    }

    @Test func dockerReferenceRoundTrip() throws {
        let file = try F.reference("docker-classic-default.rules")
        let (ruleset, diagnostics) = IptablesImporter.parse(file, family: .ipv4)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(ruleset == F.dockerS1)
        #expect(IptablesPrinter.render(ruleset, family: .ipv4) == String(decoding: file.bytes, as: UTF8.self))
        // Built-in chains carry x_tables hooks and priorities; provenance is the rule's line.
        let nat = try #require(ruleset.table(.ipv4, "nat"))
        #expect(nat.chain(named: "OUTPUT")?.kind == .base(hook: .output, priority: -100, policy: .accept))
        #expect(nat.chain(named: "POSTROUTING")?.kind == .base(hook: .postrouting, priority: 100, policy: .accept))
        #expect(ruleset.table(.ipv4, "filter")?.chain(named: "FORWARD")?.policy == .drop)
        let dnat = try #require(nat.chain(named: "DOCKER")?.rules.last?.provenance)
        #expect(dnat.line == 33 && dnat.column == 1)
        #expect(file.text(of: dnat.start..<dnat.end)
            == "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.2:80")
    }

    @Test func printerOutputRoundTrips() {
        let model = F.dockerS1
        let text = IptablesPrinter.render(model, family: .ipv4)
        let (parsed, errors) = Self.parse(text)
        #expect(errors == [])
        #expect(parsed == model)
        #expect(IptablesPrinter.render(parsed, family: .ipv4) == text)
    }

    /// A canonical model using every match and target; parse(render(m)) == m and render is a fixpoint.
    @Test(arguments: [Family.ipv4, Family.ipv6])
    func everyKindRoundTrips(family: Family) {
        let v4 = family == .ipv4
        let host = F.p(v4 ? "10.0.0.1" : "fd00::1")
        let net = F.p(v4 ? "10.1.0.0/16" : "fd00:1::/48")
        let nat = F.ip(v4 ? "172.17.0.2" : "fd00::2")
        let filter = F.table("filter", family, policies: [.forward: .drop, .output: .drop], rules: [
            "INPUT": [
                Rule([.address(.source, host), .address(.destination, net, negated: true), .inInterface(F.iface("eth+"), negated: true),
                      .protocol(.tcp), .port(.source, PortRange(1, 1024)), .port(.destination, PortRange(80), negated: true),
                      .conntrackState([.new, .untracked]), .comment("web: \"ok\" 'x' \\ y")], .accept),
                Rule([.protocol(.udp, negated: true)], .reject(with: nil)),
                Rule([.protocol(.tcp)], .reject(with: "tcp-reset")),
                Rule([.protocol(v4 ? .icmp : .icmpv6)], .reject(with: v4 ? "icmp-host-prohibited" : "icmp6-adm-prohibited")),
                Rule([.protocol(.sctp), .port(.destination, PortRange(0, 65535))], .log(prefix: "sctp ", level: 6)),
                Rule([.addressType(.source, .local, negated: true), .addressType(.destination, .unicast)], .goto("USER")),
                Rule([.comment(""), .conntrackState([.established], negated: true), .protocol(.udp)], .jump("USER")),
            ],
            "FORWARD": [
                Rule([.inInterface(F.iface("docker0")), .outInterface(F.iface("br-1234"), negated: true), .protocol(TransportProtocol(number: 47))], .drop),
            ],
            "USER": [Rule([.comment("plain")], .log(prefix: nil, level: nil)), Rule([], .return)],
        ], user: ["USER"])
        let natTable = F.table("nat", family, rules: [
            "PREROUTING": [
                Rule([.protocol(.tcp), .port(.destination, PortRange(8080))], .dnat(NATDestination(address: nat, ports: PortRange(80)))),
                Rule([.addressType(.destination, .local)], .dnat(NATDestination(address: nat))),
            ],
            "POSTROUTING": [
                Rule([.address(.source, net), .protocol(.udp)], .snat(NATDestination(address: host.address, ports: PortRange(1000, 2000)))),
                Rule([.protocol(.tcp)], .masquerade(ports: PortRange(1024, 65535))),
                Rule([.outInterface(F.iface("eth0"), negated: true)], .masquerade(ports: nil)),
            ],
        ])
        let mangle = F.table("mangle", family, rules: [
            "POSTROUTING": [Rule([.protocol(.sctp), .port(.source, PortRange(80))], .checksumFill)],
        ])
        let model = Ruleset(tables: [filter, natTable, mangle, F.table("raw", family)])
        #expect(IptablesPrinter.unsupported(model, family: family).map(\.description) == [])
        let text = IptablesPrinter.render(model, family: family)
        let (parsed, errors) = Self.parse(text, family: family)
        #expect(errors == [])
        #expect(parsed == model)
        #expect(IptablesPrinter.render(parsed, family: family) == text)
    }

    @Test func longFormsAndImplicitModules() {
        let short = Self.inputRules("-A INPUT -s 10.0.0.1/32 -d 10.0.0.0/8 -i eth0 -p tcp -m tcp --sport 5 --dport 80 -j USER")
        let long = Self.inputRules("-A INPUT --protocol TCP --in-interface eth0 --destination 10.1.2.3/8 --source 10.0.0.1 --source-port 5 --destination-port 80 --jump USER")
        #expect(short.count == 1)
        #expect(short == long)
        let goto = Self.inputRules("-A INPUT -p udp --dport 53:  --goto USER\n-A INPUT -p udp -m udp --dport :53 -g USER")
        #expect(goto.map(\.matches) == [
            [.protocol(.udp), .port(.destination, PortRange(53, 65535))],
            [.protocol(.udp), .port(.destination, PortRange(0, 53))],
        ])
        #expect(goto.map(\.target) == [.goto("USER"), .goto("USER")])
        // A bare -m tcp is a full port range; 0/0, -i + and -p all match anything and vanish.
        let bare = Self.inputRules("-A INPUT -s 0.0.0.0/0 -i + -p tcp -m tcp -j ACCEPT\n-A INPUT -p all -j ACCEPT")
        #expect(bare.map(\.matches) == [[.protocol(.tcp), .port(.destination, PortRange(0, 65535))], []])
        // Level names, aliases and defaults are normalised.
        let targets = Self.inputRules("""
            -A INPUT -j LOG --log-level warning --log-prefix ""
            -A INPUT -j LOG --log-level debug
            -A INPUT -j REJECT --reject-with icmp-port-unreachable
            -A INPUT -j REJECT --reject-with host-prohib
            """)
        #expect(targets.map(\.target) == [.log(prefix: nil, level: nil), .log(prefix: nil, level: 7), .reject(with: nil),
                                          .reject(with: "icmp-host-prohibited")])
    }

    @Test func countersCommentsAndLineEndings() throws {
        let text = "# Generated by iptables-save v1.8.9 (nf_tables) on Sun Nov 29 2026\r\n*nat\r\n:PREROUTING DROP [12:3400]\r\n:INPUT ACCEPT [0:0]\r\n"
            + ":OUTPUT ACCEPT\r\n\r\n   \r\n:POSTROUTING ACCEPT [0:0]\r\n[5:600] -A POSTROUTING -j MASQUERADE\r\nCOMMIT\r\n# Completed\r\n"
        let (ruleset, errors) = Self.parse(text)
        #expect(errors == [])
        let nat = try #require(ruleset.table(.ipv4, "nat"))
        #expect(nat.chain(named: "PREROUTING")?.policy == .drop)
        #expect(nat.chain(named: "POSTROUTING")?.rules == [Rule([], .masquerade(ports: nil))])
        let provenance = try #require(nat.chain(named: "POSTROUTING")?.rules.first?.provenance)
        #expect(provenance.line == 9)
        #expect(provenance.file.text(of: provenance.start..<provenance.end) == "[5:600] -A POSTROUTING -j MASQUERADE")
    }

    @Test func quoting() {
        let rules = Self.inputRules(#"""
            -A INPUT -m comment --comment "a \"b\" \'c\' \\ d" -j ACCEPT
            -A INPUT -m comment --comment "" -j ACCEPT
            -A INPUT -m comment --comment "two  spaces	tab" -j ACCEPT
            -A INPUT -m comment --comment back\slash -j LOG --log-prefix "x: "
            -A INPUT -m comment --comment ab"c d"
            """# + " -j ACCEPT")
        #expect(rules.map(\.matches) == [
            [.comment("a \"b\" 'c' \\ d")], [.comment("")], [.comment("two  spaces\ttab")], [.comment("back\\slash")], [.comment("abc d")],
        ])
        #expect(rules[3].target == .log(prefix: "x: ", level: nil))
        let printed = rules.map { IptablesPrinter.render($0, chain: "INPUT", family: .ipv4) }
        #expect(printed == [
            #"-A INPUT -m comment --comment "a \"b\" \'c\' \\ d" -j ACCEPT"#,
            #"-A INPUT -m comment --comment "" -j ACCEPT"#,
            "-A INPUT -m comment --comment \"two  spaces\ttab\" -j ACCEPT",
            #"-A INPUT -m comment --comment "back\\slash" -j LOG --log-prefix "x: ""#,
            #"-A INPUT -m comment --comment "abc d" -j ACCEPT"#,
        ])
    }

    /// (rule line at line 6 of a filter table, expected column, message)
    static let badRules: [(String, Int, String)] = [
        ("-A INPUT -p tcp -m state --state NEW -j ACCEPT", 20, "match module 'state' is not supported; use '-m conntrack --ctstate'"),
        ("-A INPUT -j MARK --set-mark 1", 13, "target 'MARK' is not supported"),
        ("-A NOPE -j ACCEPT", 4, "chain 'NOPE' is not declared in table 'filter'"),
        ("-A INPUT -s 10.0.0.300 -j ACCEPT", 13, "bad IPv4 address or prefix '10.0.0.300'"),
        ("-A INPUT -m tcp --dport 80 -j ACCEPT", 13, "-m tcp needs -p tcp before it"),
        ("-A INPUT -p tcp --frob 1 -j ACCEPT", 17, "unknown option '--frob'"),
        ("-A INPUT -j ELSEWHERE", 13, "-j ELSEWHERE: no chain or target 'ELSEWHERE' in table 'filter'"),
        ("-A INPUT -d fd00::1 -j ACCEPT", 13, "IPv6 address 'fd00::1' in iptables text"),
        (#"-A INPUT -m comment --comment "abc -j ACCEPT"#, 31, "unterminated double quote"),
        ("-A INPUT -p tcp --dport http -j ACCEPT", 25, "bad port 'http' (expected a number 0-65535 or a range N:M)"),
        ("-A INPUT -j LOG --log-uid", 17, "option '--log-uid' of LOG is not supported"),
        ("-A INPUT ! -m comment --comment x -j ACCEPT", 10, "'!' cannot negate '-m'"),
        ("-A INPUT -m conntrack --ctstate NEW,BOGUS -j ACCEPT", 33, "unknown conntrack state 'BOGUS'"),
        ("-A INPUT -p udp -m addrtype --dst-type LOCAL,UNICAST -j ACCEPT", 40,
         "address type lists ('LOCAL,UNICAST') are not supported; use one type"),
        ("-A INPUT -p tcp -j DNAT --to-destination 1.2.3.4:80 --random", 53, "option '--random' of DNAT is not supported"),
        ("-A FORWARD -o eth0 -j REJECT --reject-with icmp-bogus", 44, "unknown iptables REJECT type 'icmp-bogus'"),
        ("-A INPUT -s 1.2.3.4", 1, "rule has no target (-j or -g); weir needs one"),
        ("-I INPUT -j ACCEPT", 1, "command '-I' is not supported in iptables-save text; only '-A' rules are"),
        ("-A INPUT -p tcp --dport 9:8 -j ACCEPT", 25, "invalid port range '9:8' (min > max)"),
        ("-A INPUT -j ACCEPT -j DROP", 20, "rule has a second target; the first is 'ACCEPT'"),
        ("-A INPUT -p udp --dport 53 -m udp --sport 1 -j ACCEPT", 31,
         "second port match module '-m udp'; iptables merges them, write one module"),
        ("-A INPUT -m addrtype -j ACCEPT", 13, "-m addrtype needs --src-type or --dst-type"),
    ]

    @Test(arguments: badRules)
    func locatedErrors(line: String, column: Int, message: String) {
        let (ruleset, errors) = Self.parse(Self.filterHeader + line + "\nCOMMIT\n")
        #expect(errors == ["t.rules:6:\(column): error: \(message)"])
        #expect(ruleset.table(.ipv4, "filter")?.chains.allSatisfy { $0.rules.isEmpty } == true)
    }

    @Test func fileLevelErrors() {
        #expect(Self.parse("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n").1
            == ["t.rules:1:2: error: table 'filter' is not closed by COMMIT"])
        #expect(Self.parse("*security\n:INPUT ACCEPT [0:0]\n-A INPUT -m whatever\nCOMMIT\n").1
            == ["t.rules:1:2: error: table 'security' is not supported (weir supports raw, mangle, filter and nat)"])
        #expect(Self.parse("*filter\n:INPUT RETURN [0:0]\n:FOO ACCEPT [0:0]\n:BAR - [x]\nCOMMIT\n").1 == [
            "t.rules:2:8: error: policy 'RETURN' is not supported (only ACCEPT and DROP)",
            "t.rules:3:6: error: user chain 'FOO' cannot have policy 'ACCEPT' (use '-'); 'FOO' is not a built-in chain of table 'filter'",
            "t.rules:4:8: error: bad counters '[x]'; expected [packets:bytes]",
        ])
        #expect(Self.parse("-A INPUT -j ACCEPT\nCOMMIT\n*nat\n*nat\nCOMMIT\nbogus line\n").1 == [
            "t.rules:1:1: error: rule outside a table (no '*table' line before it)",
            "t.rules:2:1: error: COMMIT without a table",
            "t.rules:4:1: error: table 'nat' is not closed by COMMIT before the next table",
            "t.rules:4:2: error: table 'nat' appears twice",
            "t.rules:6:1: error: unrecognised line 'bogus'; expected '*table', ':CHAIN POLICY', '-A CHAIN …' or 'COMMIT'",
        ])
        #expect(Self.parse("*filter\n-A INPUT -s 10.0.0.1 -j ACCEPT\nCOMMIT\n", family: .ipv6).1
            == ["t.rules:2:13: error: IPv4 address '10.0.0.1' in ip6tables text"])
        #expect(Self.parse("*nat\n-A OUTPUT -m addrtype --dst-type broadcast -j ACCEPT\nCOMMIT\n", family: .ipv6).1
            == ["t.rules:2:34: error: address type BROADCAST cannot be matched in ip6tables"])
        #expect(Self.parse("*filter\n-A INPUT -j INPUT\n-A INPUT -g ACCEPT\nCOMMIT\n").1 == [
            "t.rules:3:13: error: -g needs a user chain, not the target 'ACCEPT'",
            "t.rules:2:13: error: -j INPUT: cannot jump to built-in chain 'INPUT'",
        ])
    }

    /// Every bad line of a file is reported, each at its own place, and good lines still load.
    @Test func keepsGoingAfterErrors() throws {
        let lines = Self.badRules.map(\.0).filter { !$0.contains("\"") }
        let text = Self.filterHeader + "-A INPUT -j ACCEPT\n" + lines.joined(separator: "\n") + "\n-A OUTPUT -j DROP\nCOMMIT\n"
        let (ruleset, errors) = Self.parse(text)
        #expect(errors.count == lines.count)
        for (index, line) in lines.enumerated() {
            let expected = Self.badRules.first { $0.0 == line }!
            let wanted = "t.rules:\(7 + index):\(expected.1): error: \(expected.2)"
            #expect(errors.contains(wanted), "missing \(wanted)")
        }
        let filter = try #require(ruleset.table(.ipv4, "filter"))
        #expect(filter.chain(named: "INPUT")?.rules == [Rule([], .accept)])
        #expect(filter.chain(named: "OUTPUT")?.rules == [Rule([], .drop)])
    }
}
