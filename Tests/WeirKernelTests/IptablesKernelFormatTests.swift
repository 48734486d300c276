import Testing
import WeirDiagnostics
import WeirIptables
import WeirModel

/// Loads the printer's output into a scratch network namespace with `iptables-restore` /
/// `ip6tables-restore`, reads it back with `iptables-save -t TABLE`, and requires the kernel's
/// text to equal the printer's byte for byte: this is how we know the printer writes what
/// the real `iptables-save` prints.
@Suite(.serialized, .enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct IptablesKernelFormatTests {
    static func p(_ text: String) -> Prefix { Prefix(text)! }
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    static func iface(_ text: String) -> InterfaceName { InterfaceName(iptables: text) }

    static func table(_ name: String, _ family: Family, policies: [Hook: ChainPolicy] = [:], rules: [String: [Rule]] = [:],
                      user: [String] = []) -> Table {
        var chains = (XtablesLayout.hooks[name] ?? []).map { hook in
            Chain(name: hook.rawValue, kind: .base(hook: hook, priority: XtablesLayout.priority(table: name, hook: hook),
                                                   policy: policies[hook] ?? .accept), rules: rules[hook.rawValue] ?? [])
        }
        for chain in user { chains.append(Chain(name: chain, kind: .user, rules: rules[chain] ?? [])) }
        return Table(family: family, name: name, chains: chains)
    }

    /// Every match and target the printer supports, in canonical form (the importer gives it back).
    static func kitchenSink(_ family: Family) -> Ruleset {
        let v4 = family == .ipv4
        let host = p(v4 ? "10.0.0.1" : "fd00::1")
        let net = p(v4 ? "10.1.0.0/16" : "fd00:1::/48")
        let other = p(v4 ? "192.168.0.0/24" : "2001:db8:0:0:1::/80")
        let mapped = p(v4 ? "172.16.5.4" : "::ffff:172.16.5.4")
        let compressed = p(v4 ? "0.0.0.0/1" : "2001:db8:0:0:1:0:0:1")
        let container = ip(v4 ? "172.17.0.2" : "fd00:db8:1::2")
        let docker0 = iface("docker0")
        let filter = table("filter", family, policies: [.forward: .drop, .output: .drop], rules: [
            "INPUT": [
                Rule([.address(.source, host), .address(.destination, net, negated: true), .inInterface(iface("eth+"), negated: true),
                      .protocol(.tcp), .port(.source, PortRange(1, 1024)), .port(.destination, PortRange(80), negated: true),
                      .conntrackState([.new, .untracked]), .comment("web: \"ok\" 'x' \\ y")], .accept),
                Rule([.protocol(.udp, negated: true)], .reject(with: nil)),
                Rule([.protocol(.tcp)], .reject(with: "tcp-reset")),
                Rule([.protocol(v4 ? .icmp : .icmpv6)], .reject(with: v4 ? "icmp-host-prohibited" : "icmp6-adm-prohibited")),
                Rule([], .reject(with: v4 ? "icmp-net-unreachable" : "icmp6-no-route")),
                Rule([.protocol(.sctp), .port(.destination, PortRange(0, 65535))], .log(prefix: "sctp ", level: 6)),
                Rule([.protocol(.sctp), .port(.destination, PortRange(5), negated: true)], .log(prefix: nil, level: 0)),
                Rule([.addressType(.source, .local, negated: true), .addressType(.destination, .unicast)], .goto("USER")),
                Rule([.addressType(.source, v4 ? .broadcast : .anycast), .addressType(.source, .multicast, negated: true)], .drop),
                Rule([.protocol(.udp), .comment(""), .conntrackState([.established], negated: true)], .jump("USER")),
                Rule([.protocol(.udp), .port(.source, PortRange(53)), .port(.destination, PortRange(1000, 2000), negated: true)], .drop),
                Rule([.protocol(.tcp), .port(.source, PortRange(0, 1023)), .port(.destination, PortRange(1024, 65535))], .accept),
                Rule([.protocol(.tcp), .port(.source, PortRange(2, 3), negated: true), .port(.destination, PortRange(0))], .accept),
                Rule([.protocol(TransportProtocol(number: 200))], .accept),
                Rule([.address(.source, mapped), .address(.destination, compressed), .protocol(TransportProtocol(number: 47), negated: true)], .accept),
                Rule([.conntrackState(Set(ConntrackState.allCases))], .accept),
                Rule([.inInterface(iface("+"), negated: true), .comment("abc-_9"), .comment("two words")], .jump("a-lower")),
                Rule([.address(.source, other)], .log(prefix: "a 29-byte prefix: \"q\" 'x' ok", level: 7)),
                Rule([], .jump("Zed")),
            ],
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
        let nat = table("nat", family, rules: [
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
        let mangle = table("mangle", family, policies: [.prerouting: .drop], rules: [
            "PREROUTING": [Rule([.inInterface(iface("eth1"))], .goto("MARKS")), Rule([], .accept)],
            "POSTROUTING": [Rule([.protocol(.sctp), .port(.source, PortRange(80))], .checksumFill)],
            "MARKS": [Rule([], .log(prefix: "mangle", level: 5))],
        ], user: ["MARKS"])
        let raw = table("raw", family, rules: [
            "PREROUTING": [Rule([.address(.destination, host), .inInterface(iface("eth0"), negated: true)], .drop)],
        ])
        return Ruleset(tables: [filter, nat, mangle, raw])
    }

    /// Loads `text` into a fresh namespace and returns what `iptables-save -t` says for each table,
    /// without `#` lines; nil after recording an issue.
    static func kernelRoundTrip(_ text: String, tables: [String], family: Family, tools: KernelRequirement.Tools) throws -> String? {
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        let restore = try namespace.run(tools.restore(family.rawValue), [], stdin: text)
        guard restore.succeeded else {
            Issue.record("\(family == .ipv4 ? "iptables" : "ip6tables")-restore refused the printer's output: \(restore)\n--- input:\n\(text)")
            return nil
        }
        var dumped = ""
        for table in tables {
            let save = try namespace.run(tools.save(family.rawValue), ["-t", table])
            guard save.succeeded else {
                Issue.record("save -t \(table) failed: \(save)")
                return nil
            }
            for line in save.stdout.split(separator: "\n", omittingEmptySubsequences: false) where !line.hasPrefix("#") && !line.isEmpty {
                dumped += line + "\n"
            }
        }
        return dumped
    }

    /// The first line where two texts differ, for readable failures.
    static func firstDifference(_ a: String, _ b: String) -> String {
        let (la, lb) = (a.split(separator: "\n", omittingEmptySubsequences: false), b.split(separator: "\n", omittingEmptySubsequences: false))
        for i in 0..<max(la.count, lb.count) {
            let x = i < la.count ? String(la[i]) : "<end>"
            let y = i < lb.count ? String(lb[i]) : "<end>"
            if x != y { return "line \(i + 1):\n  printer: \(x)\n  kernel:  \(y)" }
        }
        return "no difference"
    }

    @Test(arguments: [Family.ipv4, Family.ipv6])
    func kitchenSinkMatchesIptablesSave(family: Family) throws {
        guard let tools = KernelRequirement.check() else { return }
        let model = Self.kitchenSink(family)
        #expect(IptablesPrinter.unsupported(model, family: family).map(\.description) == [])
        let printed = IptablesPrinter.render(model, family: family)
        guard let kernel = try Self.kernelRoundTrip(printed, tables: model.tables(of: family).map(\.name), family: family, tools: tools) else { return }
        #expect(kernel == printed, "\(Self.firstDifference(printed, kernel))")
        let (parsed, diagnostics) = IptablesImporter.parse(SourceFile(path: "\(family.rawValue)tables-save", text: kernel), family: family)
        #expect(diagnostics.map(\.description) == [])
        #expect(parsed == model)
    }

    /// Non-canonical models: the kernel normalises them, and the printer must print the normal form.
    @Test(arguments: [Family.ipv4, Family.ipv6])
    func printerNormalisesLikeTheKernel(family: Family) throws {
        guard let tools = KernelRequirement.check() else { return }
        let v4 = family == .ipv4
        let rules: [Rule] = [
            Rule([.address(.source, Self.p(v4 ? "10.9.8.7/8" : "fd00::1234/16")), .address(.destination, Self.p(v4 ? "0.0.0.0/0" : "::/0"))], .accept),
            Rule([.inInterface(Self.iface("+"))], .log(prefix: "", level: 4)),
            Rule([.protocol(.tcp), .port(.source, PortRange(0, 65535)), .port(.destination, PortRange(22))], .accept),
            Rule([.protocol(.udp), .port(.source, PortRange(0, 65535))], .accept),
            Rule([], .reject(with: v4 ? "host-prohib" : "adm-prohibited")),
            Rule([], .reject(with: v4 ? "icmp-port-unreachable" : "port-unreach")),
            Rule([.protocol(.tcp), .port(.destination, PortRange(80)), .comment("c"), .port(.source, PortRange(81))], .accept),
        ]
        let model = Ruleset(tables: [Self.table("filter", family, rules: ["INPUT": rules])])
        #expect(IptablesPrinter.unsupported(model, family: family).map(\.description) == [])
        let printed = IptablesPrinter.render(model, family: family)
        guard let kernel = try Self.kernelRoundTrip(printed, tables: ["filter"], family: family, tools: tools) else { return }
        #expect(kernel == printed, "\(Self.firstDifference(printed, kernel))")
        // The importer reads the normal form back to a model that prints the same text.
        let (parsed, diagnostics) = IptablesImporter.parse(SourceFile(path: "save", text: kernel), family: family)
        #expect(diagnostics.map(\.description) == [])
        #expect(IptablesPrinter.render(parsed, family: family) == kernel)
    }

    @Test func namespaceIsRemovedOnEveryPath() throws {
        guard let tools = KernelRequirement.check() else { return }
        func exists(_ name: String) throws -> Bool {
            try CommandRunner.run(tools.ip, ["netns", "list"]).stdout.split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == name }
        }
        var name = ""
        do {
            let namespace = try NetworkNamespace(ip: tools.ip)
            name = namespace.name
            #expect(name.hasPrefix("weir-test-"))
            #expect(try exists(name))
            let echo = try namespace.run("cat", [], stdin: "hello\n")
            #expect(echo.succeeded && echo.stdout == "hello\n")
            let failing = try namespace.run("sh", ["-c", "echo oops >&2; exit 3"])
            #expect(failing.status == 3 && failing.stderr == "oops\n")
            // Leaving the scope without delete(): deinit must clean up.
        }
        #expect(try !exists(name), "namespace \(name) was left behind")
    }
}
