import Testing
import WeirDiagnostics
import WeirDriver

/// Bad policies: each must fail with one exact, well-located first error, and produce nothing.
@Suite("Bad input")
struct BadInputTests {
    /// A bad policy and the first error it must produce (`bad.weir:LINE:COL: error: MESSAGE`).
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var error: String
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ error: String) {
            self.name = name
            self.text = text
            self.error = error
        }
    }

    /// Five lines: the profile and a valid bridge network, so what a case appends starts at line 6.
    static let bridge = """
        docker classic
        network bridge {
            bridge docker0
            subnet 172.17.0.0/16
        }

        """

    /// The bridge plus an IPv6-capable host (8 lines; appended text starts at line 9).
    static let bridge6 = """
        docker classic
        host h {
            ip6tables on
        }
        network bridge {
            bridge docker0
            subnet 172.17.0.0/16
        }

        """

    static let lexing: [Case] = [
        Case("non-ASCII character", """
            docker classic
            host h {
                interface eth0 é
            }
            """, "bad.weir:3:20: error: unexpected character 'é'"),
        Case("control character", "docker classic\nhost h {\n    interface eth0\u{07}\n}\n",
             "bad.weir:3:19: error: unexpected control character 0x7"),
        Case("unterminated string", """
            docker classic
            input {
                accept comment "no end
            }
            """, "bad.weir:3:20: error: unterminated string"),
    ]

    static let parsing: [Case] = [
        Case("missing closing brace", """
            docker classic
            network bridge {
                bridge docker0
                subnet 172.17.0.0/16
            """, "bad.weir:4:25: error: expected '}' to close network 'bridge'"),
        Case("missing opening brace", """
            docker classic
            network bridge
                bridge docker0
            }
            """, "bad.weir:2:15: error: expected '{' to open network 'bridge', found end of line"),
        Case("unknown declaration", """
            docker classic
            firewall main {
            }
            """, "bad.weir:2:1: error: expected a declaration (include, docker, host, network, container, set, user, input), found 'firewall'"),
        Case("unmatched closing brace", "docker classic\n}\n", "bad.weir:2:1: error: unmatched '}'"),
        Case("unknown host setting", """
            docker classic
            host h {
                nat on
            }
            """, "bad.weir:3:5: error: unknown host setting 'nat' (expected interface, forward-policy, userland-proxy, ip6tables)"),
        Case("unknown network setting", bridge.replacingOccurrences(of: "}\n", with: "    mtu 1500\n}\n"),
             "bad.weir:5:5: error: unknown network setting 'mtu' (expected bridge, subnet, gateway, icc, internal, masquerade, gateway-mode, snat-source)"),
        Case("unknown container setting", bridge + """
            container c {
                network bridge address 172.17.0.2
                restart always
            }
            """, "bad.weir:8:5: error: unknown container setting 'restart' (expected network, publish)"),
        Case("bad on/off switch", bridge.replacingOccurrences(of: "}\n", with: "    icc maybe\n}\n"),
             "bad.weir:5:9: error: expected 'on' or 'off', found 'maybe'"),
        Case("unknown gateway mode", bridge.replacingOccurrences(of: "}\n", with: "    gateway-mode bridged\n}\n"),
             "bad.weir:5:18: error: unknown gateway mode 'bridged' (expected nat or routed)"),
        Case("container network without address", bridge + """
            container c {
                network bridge
            }
            """, "bad.weir:7:19: error: expected 'address' after the network name (containers need a fixed address)"),
        Case("host port 0", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 0:80
            }
            """, "bad.weir:8:13: error: port 0 is outside 1-65535"),
        Case("container port 65536", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8080:65536
            }
            """, "bad.weir:8:18: error: port 65536 is outside 1-65535"),
        Case("reversed publish range", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8010-8000:80-90
            }
            """, "bad.weir:8:13: error: port range 8010-8000 is reversed"),
        Case("reversed rule port range", """
            docker classic
            input {
                accept proto tcp dport 2000-1000
            }
            """, "bad.weir:3:28: error: port range 2000-1000 is reversed"),
        Case("empty container port at the end of the file", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8080:
            """, "bad.weir:8:18: error: expected a port number"),
        Case("empty end of a port range", """
            docker classic
            input {
                accept proto tcp dport 1000-
            }
            """, "bad.weir:3:33: error: expected a port number"),
        Case("non-numeric port", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish http:80
            }
            """, "bad.weir:8:13: error: expected a port number, found 'http'"),
        Case("publish without container port", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8080
            }
            """, "bad.weir:8:13: error: a port mapping needs a host port and a container port, like 8080:80"),
        Case("publish with a portless protocol", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8080:80/icmp
            }
            """, "bad.weir:8:21: error: unknown protocol 'icmp' in port mapping (expected tcp, udp or sctp)"),
        Case("publish with a bad IPv4 host address", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 1.2.3:8080:80
            }
            """, "bad.weir:8:13: error: invalid host address '1.2.3' (IPv6 host addresses go in brackets: [::1]:8080:80)"),
        Case("IPv6 host address without brackets", bridge6 + """
            container c {
                network bridge address 172.17.0.2
                publish ::1:8080:80
            }
            """, "bad.weir:11:13: error: too many ':' in port mapping '::1:8080:80' (IPv6 host addresses go in brackets)"),
        Case("unclosed IPv6 bracket", bridge6 + """
            container c {
                network bridge address 172.17.0.2
                publish [::1:8080:80
            }
            """, "bad.weir:11:13: error: expected ']:' after the bracketed IPv6 host address"),
        Case("bracketed IPv4 host address", bridge6 + """
            container c {
                network bridge address 172.17.0.2
                publish [127.0.0.1]:8080:80
            }
            """, "bad.weir:11:14: error: invalid IPv6 address '127.0.0.1'"),
        Case("bad address in a prefix", bridge.replacingOccurrences(of: "172.17.0.0/16", with: "172.17.0.256/16"),
             "bad.weir:4:12: error: invalid address prefix '172.17.0.256/16'"),
        Case("prefix length 33", bridge.replacingOccurrences(of: "172.17.0.0/16", with: "172.17.0.0/33"),
             "bad.weir:4:12: error: invalid address prefix '172.17.0.0/33'"),
        Case("three-part gateway address", bridge.replacingOccurrences(of: "}\n", with: "    gateway 172.17.1\n}\n"),
             "bad.weir:5:13: error: invalid IP address '172.17.1'"),
        Case("bad container address", bridge + """
            container c {
                network bridge address 172.17.0.02
            }
            """, "bad.weir:7:28: error: invalid IP address '172.17.0.02'"),
        Case("bad character in a name", """
            docker classic
            network br/idge {
            }
            """, "bad.weir:2:11: error: invalid character in network name 'br/idge' (use letters, digits, '_', '-' and '.')"),
        Case("unknown set kind", """
            docker classic
            set ssh hosts { 10.0.0.1 }
            """, "bad.weir:2:9: error: unknown set kind 'hosts' (expected addresses, ports, interfaces)"),
        Case("port set element 70000", """
            docker classic
            set web ports { 80, 70000 }
            """, "bad.weir:2:21: error: port 70000 is outside 1-65535"),
        Case("address set element without comma", """
            docker classic
            set nets addresses { 10.0.0.0/8 10.1.0.0/16 }
            """, "bad.weir:2:33: error: expected ',' or '}' in set 'nets', found '10.1.0.0/16'"),
        Case("bad address set element", """
            docker classic
            set nets addresses { 10.0.0.0/8, 10.1.0/16 }
            """, "bad.weir:2:34: error: invalid address prefix '10.1.0/16'"),
        Case("empty set element", """
            docker classic
            set web ports { 80, , 443 }
            """, "bad.weir:2:21: error: expected a set element in set 'web', found ','"),
        Case("unknown rule verdict", """
            docker classic
            input {
                allow proto tcp
            }
            """, "bad.weir:3:5: error: expected a rule verdict (accept, drop, reject, return, log), found 'allow'"),
        Case("unknown rule match", """
            docker classic
            input {
                accept proto tcp port 22
            }
            """, "bad.weir:3:22: error: unknown match 'port' (expected in, out, from, to, proto, sport, dport, state, src-type, dst-type, comment)"),
        Case("unknown protocol", """
            docker classic
            input {
                accept proto tcpp
            }
            """, "bad.weir:3:18: error: unknown protocol 'tcpp' (expected tcp, udp, sctp, icmp, icmpv6 or a number 1-255)"),
        Case("unknown conntrack state", """
            docker classic
            input {
                accept state new,bogus
            }
            """, "bad.weir:3:22: error: unknown conntrack state 'bogus' (expected new, established, related, invalid, untracked)"),
        Case("log level 9", """
            docker classic
            input {
                log level 9
            }
            """, "bad.weir:3:15: error: log level '9' is outside 0-7"),
        Case("unquoted log prefix", """
            docker classic
            input {
                log prefix weir
            }
            """, "bad.weir:3:16: error: expected a quoted log prefix, found 'weir'"),
        Case("double negation around the keyword", """
            docker classic
            input {
                accept ! from ! 10.0.0.0/8
            }
            """, "bad.weir:3:19: error: double negation"),
        Case("double negation before the keyword", """
            docker classic
            input {
                accept ! ! from 10.0.0.0/8
            }
            """, "bad.weir:3:14: error: double negation"),
        Case("negated comment", """
            docker classic
            input {
                accept ! comment "x"
            }
            """, "bad.weir:3:14: error: a comment cannot be negated"),
        Case("trailing negation", """
            docker classic
            input {
                accept in eth0 !
            }
            """, "bad.weir:3:21: error: expected a match (in, out, from, to, proto, sport, dport, state, src-type, dst-type, comment), found end of line"),
        Case("empty include path", "docker classic\ninclude \"\"\n", "bad.weir:2:9: error: include path is empty"),
        Case("include of a missing file", "docker classic\ninclude \"weir-no-such-include.weir\"\n",
             "bad.weir:2:9: error: no such file 'weir-no-such-include.weir'"),
    ]

    static let semantics: [Case] = [
        Case("missing docker classic", """
            network bridge {
                bridge docker0
                subnet 172.17.0.0/16
            }
            """, "bad.weir:1:1: error: the policy does not choose a Docker profile; add 'docker classic'"),
        Case("unknown Docker profile", "docker modern\n", "bad.weir:1:8: error: unknown Docker profile 'modern' (known: classic)"),
        Case("profile chosen twice", "docker classic\ndocker classic\n", "bad.weir:2:8: error: the Docker profile is chosen twice"),
        Case("two hosts", "docker classic\nhost a {\n}\nhost b {\n}\n", "bad.weir:4:6: error: a policy describes one host; 'b' is a second"),
        Case("unknown network in a container", bridge + """
            container c {
                network brdge address 172.17.0.2
            }
            """, "bad.weir:7:13: error: unknown network 'brdge'"),
        Case("unknown set", """
            docker classic
            input {
                accept in @uplinks
            }
            """, "bad.weir:3:12: error: unknown set '@uplinks'"),
        Case("unknown set or container", """
            docker classic
            input {
                accept to @web
            }
            """, "bad.weir:3:12: error: unknown set or container '@web'"),
        Case("set of the wrong kind", """
            docker classic
            set web ports { 80, 443 }
            input {
                accept from @web
            }
            """, "bad.weir:4:12: error: set '@web' holds ports, not addresses"),
        Case("empty set", "docker classic\nset web ports { }\n", "bad.weir:2:5: error: set 'web' is empty"),
        Case("duplicate network", bridge + """
            network bridge {
                bridge docker1
                subnet 172.18.0.0/16
            }
            """, "bad.weir:6:9: error: network 'bridge' is declared twice"),
        Case("duplicate container", bridge + """
            container c {
                network bridge address 172.17.0.2
            }
            container c {
                network bridge address 172.17.0.3
            }
            """, "bad.weir:9:11: error: container 'c' is declared twice"),
        Case("duplicate set", "docker classic\nset web ports { 80 }\nset web ports { 443 }\n",
             "bad.weir:3:5: error: set 'web' is declared twice"),
        Case("duplicate bridge device", bridge + """
            network net2 {
                bridge docker0
                subnet 172.18.0.0/16
            }
            """, "bad.weir:7:12: error: bridge 'docker0' is used by two networks"),
        Case("network without bridge", "docker classic\nnetwork n {\n    subnet 172.18.0.0/16\n}\n",
             "bad.weir:2:9: error: network 'n' has no 'bridge' device"),
        Case("setting given twice", bridge.replacingOccurrences(of: "}\n", with: "    icc off\n    icc on\n}\n"),
             "bad.weir:6:5: error: 'icc' is set twice"),
        Case("overlapping subnets", bridge + """
            network net2 {
                bridge br-net2
                subnet 172.17.128.0/17
            }
            """, "bad.weir:8:12: error: subnet 172.17.128.0/17 of network 'net2' overlaps 172.17.0.0/16 of network 'bridge'"),
        Case("subnet with host bits", bridge.replacingOccurrences(of: "172.17.0.0/16", with: "172.17.0.1/16"),
             "bad.weir:4:12: error: subnet 172.17.0.1/16 has host bits set (did you mean 172.17.0.0/16?)"),
        Case("gateway outside the subnet", bridge.replacingOccurrences(of: "}\n", with: "    gateway 172.18.0.1\n}\n"),
             "bad.weir:5:13: error: gateway 172.18.0.1 is outside the network's IPv4 subnet"),
        Case("gateway on the broadcast address", bridge.replacingOccurrences(of: "}\n", with: "    gateway 172.17.255.255\n}\n"),
             "bad.weir:5:13: error: gateway 172.17.255.255 is the subnet's broadcast address"),
        Case("container address outside the subnet", bridge + """
            container c {
                network bridge address 172.18.0.2
            }
            """, "bad.weir:7:28: error: address 172.18.0.2 is outside subnet 172.17.0.0/16 of network 'bridge'"),
        Case("container address equals the default gateway", bridge + """
            container c {
                network bridge address 172.17.0.1
            }
            """, "bad.weir:7:28: error: address 172.17.0.1 is the gateway of network 'bridge'"),
        Case("container address equals an explicit gateway", bridge.replacingOccurrences(of: "}\n", with: "    gateway 172.17.0.254\n}\n") + """
            container c {
                network bridge address 172.17.0.254
            }
            """, "bad.weir:8:28: error: address 172.17.0.254 is the gateway of network 'bridge'"),
        Case("duplicate container address", bridge + """
            container a {
                network bridge address 172.17.0.2
            }
            container b {
                network bridge address 172.17.0.2
            }
            """, "bad.weir:10:28: error: address 172.17.0.2 is already used by container 'a'"),
        Case("IPv6 address without an IPv6 subnet", bridge6 + """
            container c {
                network bridge address 172.17.0.2 address fd00::2
            }
            """, "bad.weir:10:47: error: network 'bridge' has no IPv6 subnet for address fd00::2"),
        Case("host port published twice", bridge + """
            container a {
                network bridge address 172.17.0.2
                publish 8080:80
            }
            container b {
                network bridge address 172.17.0.3
                publish 8080:81
            }
            """, "bad.weir:12:13: error: host port 8080/tcp is published twice"),
        Case("wildcard and 127.0.0.1 publish of one port", bridge + """
            container a {
                network bridge address 172.17.0.2
                publish 8080:80
            }
            container b {
                network bridge address 172.17.0.3
                publish 127.0.0.1:8080:81
            }
            """, "bad.weir:12:23: error: host port 127.0.0.1:8080/tcp is published twice"),
        Case("publish ranges of different lengths", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish 8000-8002:80-81
            }
            """, "bad.weir:8:13: error: host ports 8000-8002 and container ports 80-81 differ in length"),
        Case("IPv6 publish without ip6tables", bridge + """
            container c {
                network bridge address 172.17.0.2
                publish [::1]:8080:80
            }
            """, "bad.weir:8:14: error: host address ::1 is IPv6, which needs 'ip6tables on' in the host"),
        Case("publish on an internal network", """
            docker classic
            network net2 {
                bridge br-net2
                subnet 172.18.0.0/16
                internal on
            }
            container c {
                network net2 address 172.18.0.2
                publish 8080:80
            }
            """, "bad.weir:9:13: error: container 'c' publishes ports, but its first network 'net2' is internal"),
        Case("interface name longer than 15 bytes", """
            docker classic
            host h {
                interface enp0s31f6-verylong
            }
            """, "bad.weir:3:15: error: interface name 'enp0s31f6-verylong' is longer than 15 bytes"),
        Case("interface name with a colon", """
            docker classic
            host h {
                interface eth0:1
            }
            """, "bad.weir:3:15: error: interface name 'eth0:1' contains ':', which iptables and nft cannot carry (use letters, digits, '_', '.', '-')"),
        Case("bridge name with a slash", bridge.replacingOccurrences(of: "docker0", with: "docker/0"),
             "bad.weir:3:12: error: interface name 'docker/0' contains '/', which iptables and nft cannot carry (use letters, digits, '_', '.', '-')"),
        Case("rule interface longer than 15 bytes", """
            docker classic
            input {
                accept in verylonginterfacename0
            }
            """, "bad.weir:3:12: error: interface name 'verylonginterfacename0' is longer than 15 bytes"),
        Case("interface wildcard without a prefix", "docker classic\nset up interfaces { eth0, + }\n",
             "bad.weir:2:27: error: an interface wildcard needs a prefix before '+'"),
        Case("comment with quotes", """
            docker classic
            input {
                accept comment "say \\"hi\\""
            }
            """, "bad.weir:3:12: error: comment contains a quote or backslash, which would break the generated rules"),
        Case("log prefix longer than 29 bytes", """
            docker classic
            input {
                log prefix "this-prefix-is-way-too-long-for-iptables: "
            }
            """, "bad.weir:3:16: error: log prefix is longer than 29 bytes"),
        Case("port match without proto", """
            docker classic
            input {
                accept dport 22
            }
            """, "bad.weir:3:12: error: port matches need 'proto tcp', 'proto udp' or 'proto sctp' in the same rule"),
        Case("port match with proto icmp", """
            docker classic
            input {
                accept proto icmp sport 22
            }
            """, "bad.weir:3:23: error: port matches need 'proto tcp', 'proto udp' or 'proto sctp' in the same rule"),
        Case("two protos in one rule", """
            docker classic
            input {
                accept proto tcp proto udp
            }
            """, "bad.weir:3:22: error: a rule takes one 'proto'"),
        Case("negated multi-element set", """
            docker classic
            set admins addresses { 10.0.0.0/8, 192.168.0.0/16 }
            input {
                drop ! from @admins
            }
            """, "bad.weir:4:12: error: '!@admins' negates a set of 2 elements, which iptables cannot express without ipset; negate single elements or split the rule"),
        Case("IPv6 rule without ip6tables", """
            docker classic
            input {
                accept proto tcp dport 22 from fd00::/8
            }
            """, "bad.weir:3:31: error: this rule is IPv6 only, which needs 'ip6tables on' in the host"),
        Case("rule mixing IPv4 and IPv6", """
            docker classic
            input {
                accept from 10.0.0.0/8 to fd00::/8
            }
            """, "bad.weir:3:28: error: this rule mixes IPv4 and IPv6"),
        Case("rule address with host bits", """
            docker classic
            input {
                accept from 10.0.0.1/8
            }
            """, "bad.weir:3:12: error: address 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"),
        Case("unknown reject type", """
            docker classic
            input {
                reject with icmp-bogus
            }
            """, "bad.weir:3:17: error: unknown reject type 'icmp-bogus' for this rule's family (expected one of icmp-admin-prohibited, icmp-host-prohibited, icmp-host-unreachable, icmp-net-prohibited, icmp-net-unreachable, icmp-port-unreachable, icmp-proto-unreachable, tcp-reset)"),
        Case("tcp-reset without proto tcp", """
            docker classic
            input {
                reject with tcp-reset proto udp
            }
            """, "bad.weir:3:17: error: 'reject with tcp-reset' needs 'proto tcp'"),
        Case("rule expanding past the limit", """
            docker classic
            set p ports { \((1...200).map(String.init).joined(separator: ", ")) }
            input {
                accept proto tcp dport @p sport @p
            }
            """, "bad.weir:4:5: error: this rule expands to 40000 iptables rules (limit 10000); split its sets"),
        // Regressions: each of these crashed the compiler (found by MutationRobustnessTests).
        Case("empty address set used in a rule", """
            docker classic
            set e addresses { }
            input {
                accept from @e
            }
            """, "bad.weir:2:5: error: set 'e' is empty"),
        Case("rule address of a container on an unknown network", """
            docker classic
            container c {
                network nope address 10.0.0.2
            }
            input {
                accept to @c
            }
            """, "bad.weir:3:13: error: unknown network 'nope'"),
        Case("all-ones IPv6 subnet", bridge6.replacingOccurrences(of: "    subnet 172.17.0.0/16\n", with: "    subnet 172.17.0.0/16\n    subnet ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n"),
             "bad.weir:8:12: error: subnet ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128 is too small for a gateway and a container"),
        Case("rule expansion overflowing Int", """
            docker classic
            set p ports { \((1...100).map(String.init).joined(separator: ", ")) }
            input {
                accept proto tcp\(String(repeating: " dport @p sport @p", count: 6))
            }
            """, "bad.weir:4:5: error: this rule expands to more than 9223372036854775807 iptables rules (limit 10000); split its sets"),
    ]

    static func firstError(of text: String) -> (first: String?, result: CompileResult) {
        let result = Compiler.compile(text: text, path: "bad.weir")
        return (result.diagnostics.first { $0.severity == .error }?.description, result)
    }

    @Test("lexical errors", arguments: lexing)
    func lexicalError(_ bad: Case) { check(bad) }

    @Test("syntax errors", arguments: parsing)
    func syntaxError(_ bad: Case) { check(bad) }

    @Test("semantic errors", arguments: semantics)
    func semanticError(_ bad: Case) { check(bad) }

    private func check(_ bad: Case) {
        let (first, result) = Self.firstError(of: bad.text)
        #expect(first == bad.error, "all diagnostics:\n\(DiagnosticRenderer.render(result.diagnostics))")
        #expect(result.hasErrors)
        #expect(result.ruleset == nil)
        #expect(result.artifacts.isEmpty)
        // Every error is located in the text, its range within the text's bytes.
        for diagnostic in result.diagnostics where diagnostic.severity == .error {
            #expect(diagnostic.range?.file.path == "bad.weir", "\(diagnostic)")
            if let range = diagnostic.range, range.file.path == "bad.weir" {
                #expect(range.end <= bad.text.utf8.count, "\(diagnostic) ends past the text")
            }
        }
    }

    @Test("each case is valid once its fault is removed: the bases compile")
    func basesCompile() {
        for base in [Self.bridge, Self.bridge6] {
            let result = Compiler.compile(text: base, path: "good.weir")
            #expect(!result.hasErrors, "\(result.diagnostics)")
            #expect(result.ruleset != nil)
            #expect(result.artifact(.iptables) != nil)
        }
    }

    @Test("independent errors in one file are all reported: syntax errors, then semantic ones, each in source order")
    func severalErrors() {
        let text = """
            docker classic
            host h {
                interface verylonginterfacename0
                nat on
            }
            network bridge {
                bridge docker0
                subnet 172.17.0.0/16
                mtu 1500
            }
            container c {
                network bridge address 172.18.0.2
                publish 8080:0
            }
            input {
                accept dport 22
                allow
            }
            """
        let result = Compiler.compile(text: text, path: "bad.weir")
        #expect(result.diagnostics.map(\.description) == [
            "bad.weir:4:5: error: unknown host setting 'nat' (expected interface, forward-policy, userland-proxy, ip6tables)",
            "bad.weir:9:5: error: unknown network setting 'mtu' (expected bridge, subnet, gateway, icc, internal, masquerade, gateway-mode, snat-source)",
            "bad.weir:13:18: error: port 0 is outside 1-65535",
            "bad.weir:17:5: error: expected a rule verdict (accept, drop, reject, return, log), found 'allow'",
            "bad.weir:3:15: error: interface name 'verylonginterfacename0' is longer than 15 bytes",
            "bad.weir:12:28: error: address 172.18.0.2 is outside subnet 172.17.0.0/16 of network 'bridge'",
            "bad.weir:16:12: error: port matches need 'proto tcp', 'proto udp' or 'proto sctp' in the same rule",
        ])
        #expect(result.ruleset == nil)
        #expect(result.artifacts.isEmpty)
    }

    @Test("the rendered diagnostic shows the line and a caret under the offending token, then its note")
    func renderedSnippet() throws {
        let text = Self.bridge + """
            container a {
                network bridge address 172.17.0.2
            }
            container b {
            \tnetwork bridge address 172.17.0.2
            }
            """
        let result = Compiler.compile(text: text, path: "bad.weir")
        let first = try #require(result.diagnostics.first)
        #expect(DiagnosticRenderer.render(first) == """
            bad.weir:10:25: error: address 172.17.0.2 is already used by container 'a'
                \tnetwork bridge address 172.17.0.2
                \t                       ^~~~~~~~~~
            bad.weir:7:28: note: first used here
                    network bridge address 172.17.0.2
                                           ^~~~~~~~~~

            """)
    }
}
