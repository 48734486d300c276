import Foundation
import Testing
import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirTestFixtures

extension IptablesFixtures {
    /// `shared/reference/<name>`, found from this file: the repo root is three levels up.
    static func reference(_ name: String, filePath: String = #filePath) throws -> SourceFile {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.deletingLastPathComponent().appendingPathComponent("shared/reference/\(name)")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            Issue.record("reference file missing: \(url.path) (expected <repo root>/../shared/reference/\(name))")
            throw CocoaError(.fileNoSuchFile)
        }
        return SourceFile(path: url.path, bytes: Array(data))
    }

    /// One rule in a filter INPUT chain, printed.
    static func line(_ matches: [Match], _ target: Target = .accept, chain: String = "INPUT", family: Family = .ipv4) -> String {
        IptablesPrinter.render(Rule(matches, target), chain: chain, family: family)
    }
}


@Suite struct IptablesPrinterTests {
    typealias F = IptablesFixtures

    @Test func dockerS1MatchesReferenceDump() throws {
        let file = try F.reference("docker-classic-default.rules")
        let expected = String(decoding: file.bytes, as: UTF8.self)
        #expect(IptablesPrinter.render(F.dockerS1, family: .ipv4) == expected)
        #expect(IptablesPrinter.unsupported(F.dockerS1, family: .ipv4).isEmpty)
        #expect(IptablesPrinter.render(F.dockerS1, family: .ipv6) == "")
    }

    @Test func tableLayout() {
        // Missing built-in chains are listed with ACCEPT; user chains sorted by name (byte order).
        let table = Table(family: .ipv4, name: "filter", chains: [
            F.base("filter", .output, .drop, [Rule([], .accept)]),
            Chain(name: "b", kind: .user, rules: [Rule([], .return)]),
            Chain(name: "B", kind: .user),
            F.base("filter", .input, .accept, [Rule([], .jump("b"))]),
        ])
        let v6 = F.table("raw", .ipv6)
        let ruleset = Ruleset(tables: [table, F.table("nat"), F.table("mangle"), v6])
        #expect(IptablesPrinter.render(ruleset, family: .ipv4) == """
            *mangle
            :PREROUTING ACCEPT [0:0]
            :INPUT ACCEPT [0:0]
            :FORWARD ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            :POSTROUTING ACCEPT [0:0]
            COMMIT
            *filter
            :INPUT ACCEPT [0:0]
            :FORWARD ACCEPT [0:0]
            :OUTPUT DROP [0:0]
            :B - [0:0]
            :b - [0:0]
            -A INPUT -j b
            -A OUTPUT -j ACCEPT
            -A b -j RETURN
            COMMIT
            *nat
            :PREROUTING ACCEPT [0:0]
            :INPUT ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            :POSTROUTING ACCEPT [0:0]
            COMMIT

            """)
        #expect(IptablesPrinter.render(ruleset, family: .ipv6) == "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
        var buffer = Array("x".utf8)
        IptablesPrinter.render(ruleset, family: .ipv6, into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "x*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    }

    @Test func fixedMatchesComeFirstInIptablesOrder() {
        let matches: [Match] = [
            .comment("c"), .protocol(.tcp), .outInterface(F.iface("eth1")), .inInterface(F.iface("eth+"), negated: true),
            .address(.destination, F.p("10.1.0.0/16"), negated: true), .address(.source, F.p("10.0.0.1")),
        ]
        #expect(F.line(matches, chain: "FORWARD")
            == "-A FORWARD -s 10.0.0.1/32 ! -d 10.1.0.0/16 ! -i eth+ -o eth1 -p tcp -m comment --comment c -j ACCEPT")
    }

    @Test func addresses() {
        #expect(F.line([.address(.source, F.p("10.0.0.1/8"))]) == "-A INPUT -s 10.0.0.0/8 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("0.0.0.0/0"))]) == "-A INPUT -j ACCEPT")
        #expect(F.line([.address(.destination, F.p("192.168.1.0/24"), negated: true)]) == "-A INPUT ! -d 192.168.1.0/24 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("fd00::1"))], family: .ipv6) == "-A INPUT -s fd00::1/128 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("2001:db8:0:0:1:0:0:1"))], family: .ipv6) == "-A INPUT -s 2001:db8::1:0:0:1/128 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("::ffff:1.2.3.4"))], family: .ipv6) == "-A INPUT -s ::ffff:1.2.3.4/128 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("::1.2.3.4"))], family: .ipv6) == "-A INPUT -s ::1.2.3.4/128 -j ACCEPT")
        #expect(F.line([.address(.source, F.p("::1"))], family: .ipv6) == "-A INPUT -s ::1/128 -j ACCEPT")
        #expect(F.line([.address(.destination, F.p("fd00:db8:1::/64"), negated: true)], family: .ipv6) == "-A INPUT ! -d fd00:db8:1::/64 -j ACCEPT")
        #expect(F.line([.address(.destination, F.p("fe80:0:0:0:0:0:0:0/10"))], family: .ipv6) == "-A INPUT -d fe80::/10 -j ACCEPT")
        #expect(F.line([.address(.destination, F.p("1:0:0:2:0:0:0:3"))], family: .ipv6) == "-A INPUT -d 1:0:0:2::3/128 -j ACCEPT")
        #expect(F.line([.address(.destination, F.p("1:2:3:4:5:6:7:0"))], family: .ipv6) == "-A INPUT -d 1:2:3:4:5:6:7:0/128 -j ACCEPT")
    }

    @Test func interfaces() {
        #expect(F.line([.inInterface(F.iface("eth+"))]) == "-A INPUT -i eth+ -j ACCEPT")
        #expect(F.line([.inInterface(F.iface("+"))]) == "-A INPUT -j ACCEPT")
        #expect(F.line([.inInterface(F.iface("+"), negated: true)]) == "-A INPUT ! -i + -j ACCEPT")
        #expect(F.line([.outInterface(F.iface("br-0123456789ab"), negated: true)], chain: "OUTPUT") == "-A OUTPUT ! -o br-0123456789ab -j ACCEPT")
    }

    @Test func protocols() {
        #expect(F.line([.protocol(.tcp, negated: true)]) == "-A INPUT ! -p tcp -j ACCEPT")
        #expect(F.line([.protocol(.icmp)]) == "-A INPUT -p icmp -j ACCEPT")
        #expect(F.line([.protocol(.icmpv6)], family: .ipv6) == "-A INPUT -p ipv6-icmp -j ACCEPT")
        #expect(F.line([.protocol(TransportProtocol(number: 47))]) == "-A INPUT -p gre -j ACCEPT")
        #expect(F.line([.protocol(TransportProtocol(number: 200))]) == "-A INPUT -p 200 -j ACCEPT")
    }

    @Test func ports() {
        #expect(F.line([.protocol(.tcp), .port(.destination, PortRange(80)), .port(.source, PortRange(1, 1024))])
            == "-A INPUT -p tcp -m tcp --sport 1:1024 --dport 80 -j ACCEPT")
        #expect(F.line([.protocol(.udp), .port(.source, PortRange(53), negated: true), .port(.destination, PortRange(1000, 2000))])
            == "-A INPUT -p udp -m udp ! --sport 53 --dport 1000:2000 -j ACCEPT")
        #expect(F.line([.protocol(.sctp), .port(.destination, PortRange(5), negated: true)]) == "-A INPUT -p sctp -m sctp ! --dport 5 -j ACCEPT")
        // Rule keeps ports right after the protocol, so the port module always comes first
        // (iptables-nft also merges split port matches into one module).
        #expect(F.line([.protocol(.tcp), .port(.destination, PortRange(80)), .addressType(.destination, .local), .port(.source, PortRange(81))])
            == "-A INPUT -p tcp -m tcp --sport 81 --dport 80 -m addrtype --dst-type LOCAL -j ACCEPT")
        #expect(F.line([.protocol(.tcp), .comment("x"), .port(.destination, PortRange(80))])
            == "-A INPUT -p tcp -m tcp --dport 80 -m comment --comment x -j ACCEPT")
        // 0:65535 vanishes; alone it leaves a bare module.
        #expect(F.line([.protocol(.tcp), .port(.destination, PortRange(0, 65535))]) == "-A INPUT -p tcp -m tcp -j ACCEPT")
        #expect(F.line([.protocol(.tcp), .port(.source, PortRange(0, 65535)), .port(.destination, PortRange(0))])
            == "-A INPUT -p tcp -m tcp --dport 0 -j ACCEPT")
        #expect(F.line([.protocol(.tcp), .port(.destination, PortRange(1024, 65535))]) == "-A INPUT -p tcp -m tcp --dport 1024:65535 -j ACCEPT")
    }

    @Test func addressTypes() {
        #expect(F.line([.addressType(.destination, .local), .addressType(.source, .unicast, negated: true)])
            == "-A INPUT -m addrtype ! --src-type UNICAST --dst-type LOCAL -j ACCEPT")
        #expect(F.line([.addressType(.source, .local), .addressType(.source, .broadcast)])
            == "-A INPUT -m addrtype --src-type LOCAL -m addrtype --src-type BROADCAST -j ACCEPT")
        #expect(F.line([.addressType(.source, .local), .comment("c"), .addressType(.destination, .multicast, negated: true)])
            == "-A INPUT -m addrtype --src-type LOCAL -m comment --comment c -m addrtype ! --dst-type MULTICAST -j ACCEPT")
    }

    @Test func conntrack() {
        #expect(F.line([.conntrackState([.untracked, .established, .new, .related, .invalid])])
            == "-A INPUT -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED -j ACCEPT")
        #expect(F.line([.conntrackState([.new], negated: true), .conntrackState([.invalid])])
            == "-A INPUT -m conntrack ! --ctstate NEW -m conntrack --ctstate INVALID -j ACCEPT")
    }

    @Test func quoting() {
        #expect(IptablesQuoting.quote("abc-_9XYZ") == "abc-_9XYZ")
        #expect(IptablesQuoting.quote("") == "\"\"")
        #expect(IptablesQuoting.quote("hello world") == "\"hello world\"")
        #expect(IptablesQuoting.quote("a \"b\" 'c' \\ d") == #""a \"b\" \'c\' \\ d""#)
        #expect(IptablesQuoting.quote("x.y") == "\"x.y\"")
        #expect(IptablesQuoting.quote("café") == "\"café\"")
        #expect(F.line([.comment("allow: ssh")]) == "-A INPUT -m comment --comment \"allow: ssh\" -j ACCEPT")
        #expect(F.line([], .log(prefix: "it's", level: nil)) == #"-A INPUT -j LOG --log-prefix "it\'s""#)
    }

    @Test func targets() {
        #expect(F.line([], .drop) == "-A INPUT -j DROP")
        #expect(F.line([], .return) == "-A INPUT -j RETURN")
        #expect(F.line([], .reject(with: nil)) == "-A INPUT -j REJECT --reject-with icmp-port-unreachable")
        #expect(F.line([], .reject(with: nil), family: .ipv6) == "-A INPUT -j REJECT --reject-with icmp6-port-unreachable")
        #expect(F.line([], .reject(with: "icmp-host-prohibited")) == "-A INPUT -j REJECT --reject-with icmp-host-prohibited")
        #expect(F.line([], .reject(with: "host-prohib")) == "-A INPUT -j REJECT --reject-with icmp-host-prohibited")
        #expect(F.line([], .reject(with: "adm-prohibited"), family: .ipv6) == "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited")
        #expect(F.line([.protocol(.tcp)], .reject(with: "tcp-reset")) == "-A INPUT -p tcp -j REJECT --reject-with tcp-reset")
        #expect(F.line([], .jump("DOCKER")) == "-A INPUT -j DOCKER")
        #expect(F.line([], .goto("DOCKER")) == "-A INPUT -g DOCKER")
        let dnat = NATDestination(address: F.ip("172.17.0.2"), ports: PortRange(80))
        #expect(F.line([.protocol(.tcp)], .dnat(dnat), chain: "PREROUTING") == "-A PREROUTING -p tcp -j DNAT --to-destination 172.17.0.2:80")
        #expect(F.line([], .dnat(NATDestination(address: F.ip("172.17.0.2"))), chain: "PREROUTING")
            == "-A PREROUTING -j DNAT --to-destination 172.17.0.2")
        #expect(F.line([.protocol(.tcp)], .dnat(NATDestination(address: F.ip("fd00::2"), ports: PortRange(80, 81))), chain: "PREROUTING", family: .ipv6)
            == "-A PREROUTING -p tcp -j DNAT --to-destination [fd00::2]:80-81")
        #expect(F.line([], .dnat(NATDestination(address: F.ip("fd00::2"))), chain: "PREROUTING", family: .ipv6)
            == "-A PREROUTING -j DNAT --to-destination fd00::2")
        #expect(F.line([.protocol(.udp)], .snat(NATDestination(address: F.ip("1.2.3.4"), ports: PortRange(1000, 2000))), chain: "POSTROUTING")
            == "-A POSTROUTING -p udp -j SNAT --to-source 1.2.3.4:1000-2000")
        #expect(F.line([], .masquerade(ports: nil), chain: "POSTROUTING") == "-A POSTROUTING -j MASQUERADE")
        #expect(F.line([.protocol(.tcp)], .masquerade(ports: PortRange(1000, 2000)), chain: "POSTROUTING")
            == "-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1000-2000")
        #expect(F.line([.protocol(.udp)], .masquerade(ports: PortRange(1000)), chain: "POSTROUTING")
            == "-A POSTROUTING -p udp -j MASQUERADE --to-ports 1000")
        #expect(F.line([], .log(prefix: nil, level: nil)) == "-A INPUT -j LOG")
        #expect(F.line([], .log(prefix: "", level: 4)) == "-A INPUT -j LOG")
        #expect(F.line([], .log(prefix: "DROP: ", level: 7)) == "-A INPUT -j LOG --log-prefix \"DROP: \" --log-level 7")
        #expect(F.line([], .log(prefix: "weir", level: 0)) == "-A INPUT -j LOG --log-prefix weir --log-level 0")
        #expect(F.line([.protocol(.sctp), .port(.source, PortRange(80))], .checksumFill, chain: "POSTROUTING")
            == "-A POSTROUTING -p sctp -m sctp --sport 80 -j CHECKSUM --checksum-fill")
    }

    @Test func unsupportedRulesAreLocatedErrors() throws {
        let file = SourceFile(path: "policy.weir", text: "rule one\nrule two\nrule three\nrule four\n")
        func at(_ line: Int) -> SourceRange {
            var offset = 0
            for _ in 1..<line { offset = file.bytes[offset...].firstIndex(of: UInt8(ascii: "\n"))! + 1 }
            return SourceRange(file: file, start: offset, end: offset + 4)
        }
        let table = F.table("filter", rules: [
            "INPUT": [
                Rule([.port(.destination, PortRange(80))], .accept, provenance: at(1)),
                Rule([.protocol(.tcp, negated: true), .port(.destination, PortRange(80))], .accept, provenance: at(2)),
                Rule([.protocol(.udp)], .jump("NOPE"), provenance: at(3)),
                Rule([.address(.source, F.p("fd00::1")), .outInterface(F.iface("eth0"))], .reject(with: "tcp-reset"), provenance: at(4)),
            ],
            "FORWARD": [
                Rule([.protocol(.tcp), .port(.destination, PortRange(80)), .port(.destination, PortRange(81))], .accept, provenance: at(1)),
                Rule([.protocol(.tcp), .port(.source, PortRange(0, 65535), negated: true)], .accept, provenance: at(2)),
                Rule([.comment("two\nlines"), .conntrackState([])], .log(prefix: String(repeating: "x", count: 30), level: 9), provenance: at(3)),
                Rule([], .dnat(NATDestination(address: F.ip("1.2.3.4"), ports: PortRange(80))), provenance: at(4)),
            ],
        ])
        let messages = IptablesPrinter.unsupported(Ruleset(tables: [table]), family: .ipv4).map(\.description)
        #expect(messages == [
            "policy.weir:1:1: error: port match needs a non-negated tcp, udp or sctp protocol match in the same rule (chain INPUT, table filter)",
            "policy.weir:2:1: error: port match needs a non-negated tcp, udp or sctp protocol match in the same rule (chain INPUT, table filter)",
            "policy.weir:3:1: error: -j NOPE: table 'filter' has no chain 'NOPE' (chain INPUT, table filter)",
            "policy.weir:4:1: error: IPv6 address fd00::1/128 in an iptables rule (chain INPUT, table filter)",
            "policy.weir:4:1: error: -o cannot be used in the INPUT chain (chain INPUT, table filter)",
            "policy.weir:4:1: error: REJECT --reject-with tcp-reset needs -p tcp (chain INPUT, table filter)",
            "policy.weir:1:1: error: rule has 2 --dport port matches; iptables allows one per rule (chain FORWARD, table filter)",
            "policy.weir:2:1: error: negated port range 0:65535 matches nothing and iptables cannot keep it (chain FORWARD, table filter)",
            "policy.weir:3:1: error: comment contains a newline or NUL (chain FORWARD, table filter)",
            "policy.weir:3:1: error: conntrack state match with no states (chain FORWARD, table filter)",
            "policy.weir:3:1: error: log prefix is longer than 29 bytes (chain FORWARD, table filter)",
            "policy.weir:3:1: error: log level 9 is not a syslog level (0-7) (chain FORWARD, table filter)",
            "policy.weir:4:1: error: DNAT can only be used in the nat table (chain FORWARD, table filter)",
            "policy.weir:4:1: error: DNAT with a port needs a tcp, udp or sctp protocol match (chain FORWARD, table filter)",
        ])
        // Tables and chains iptables does not have.
        let odd = Ruleset(tables: [
            Table(family: .ipv4, name: "weird", chains: []),
            Table(family: .ipv4, name: "nat", chains: [
                Chain(name: "FORWARD", kind: .base(hook: .forward, priority: 0, policy: .accept)),
                Chain(name: "PREROUTING", kind: .base(hook: .prerouting, priority: 5, policy: .accept)),
                Chain(name: "this-chain-name-is-far-too-long-for-iptables", kind: .user),
            ]),
        ])
        #expect(IptablesPrinter.unsupported(odd, family: .ipv4).map(\.description) == [
            "error: base chain 'PREROUTING' of table 'nat' has priority 5; iptables fixes it at -100",
            "error: base chain 'FORWARD' on hook FORWARD is not a built-in chain of iptables table 'nat'",
            "error: user chain name 'this-chain-name-is-far-too-long-for-iptables' is longer than 28 bytes",
            "error: iptables has no table 'weird' (only raw, mangle, filter and nat)",
        ])
    }

    /// 300,000 rules; the time limit (0.3 s) applies to optimised builds only.
    @Test func printsLargeRulesetsFast() {
        let count = 300_000
        var rules: [Rule] = []
        rules.reserveCapacity(count)
        for i in 0..<count {
            let host = IPAddress.v4(0x0a00_0000 | UInt32(i))
            rules.append(Rule([
                .address(.destination, Prefix(host: host)), .inInterface(F.iface("docker0"), negated: true),
                .outInterface(F.iface("docker0")), .protocol(.tcp), .port(.destination, PortRange(UInt16(i % 60000) + 1)),
                .conntrackState([.new]), .comment("rule \(i % 7)"),
            ], i % 3 == 0 ? .accept : .jump("DOCKER-USER")))
        }
        let ruleset = Ruleset(tables: [F.table("filter", rules: ["FORWARD": rules, "DOCKER-USER": []], user: ["DOCKER-USER"])])
        let clock = ContinuousClock()
        var text = ""
        let elapsed = clock.measure { text = IptablesPrinter.render(ruleset, family: .ipv4) }
        #expect(text.utf8.count > count * 80)
        #expect(text.hasSuffix("-A FORWARD -d 10.4.147.223/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 60000 -m conntrack --ctstate NEW -m comment --comment \"rule 0\" -j DOCKER-USER\nCOMMIT\n"))
        #if !DEBUG
        #expect(elapsed < .milliseconds(300), "rendering \(count) rules took \(elapsed)")
        #endif
        print("IptablesPrinter: \(count) rules in \(elapsed)")
    }
}
