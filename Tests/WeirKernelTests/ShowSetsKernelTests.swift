import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirModel
import WeirNetlink
import WeirNftables

/// `weir show` of foreign nft tables whose rules use sets: the readback of sets and elements
/// (GETSET, GETSETELEM), and the lifting of lookups by expansion, against the kernel.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct ShowSetsKernelTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The `weir` executable of the build these tests belong to: next to the test bundle (so a
    /// `--scratch-path` build runs its own binary), else `<repo>/.build/debug/weir`.
    static var weir: String {
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("weir").path
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        }
        return root + "/.build/debug/weir"
    }

    /// Loads `text` with `nft -f` into a fresh namespace.
    static func namespace(loading text: String) throws -> NetworkNamespace? {
        guard let tools = KernelRequirement.check() else { return nil }
        let nft = try #require(CommandRunner.locate("nft"), "nft is not installed")
        let namespace = try NetworkNamespace(ip: tools.ip)
        let loaded = try namespace.run(nft, ["-f", "-"], stdin: text)
        #expect(loaded.succeeded, "nft -f: \(loaded)")
        return namespace
    }

    static let foreign = """
        table ip other {
            set allowed {
                type ipv4_addr
                flags interval
                elements = { 10.1.0.0/16, 172.16.5.5 }
            }
            chain input {
                type filter hook input priority 10; policy accept;
                tcp dport { 80, 443 } accept
                ip saddr { 10.0.0.0/8, 192.168.1.1 } drop
                iifname { "eth0", "wg0" } accept
                ip saddr @allowed tcp dport 22 accept
            }
        }
        table ip6 other6 {
            chain forward {
                type filter hook forward priority 0; policy drop;
                ip6 saddr { fd00::/8, ::1 } oifname { "br-*", "veth1" } accept
            }
        }
        table inet mixed {
            set ports {
                type inet_service
                elements = { 53 }
            }
            chain c {
                type filter hook input priority 0; policy accept;
                tcp dport @ports accept
            }
        }

        """

    static func ifname(_ name: String) -> [UInt8] { Array(name.utf8) + [UInt8](repeating: 0, count: 16 - name.utf8.count) }
    static func v6(_ head: [UInt8], last: UInt8 = 0, fill: UInt8 = 0) -> [UInt8] {
        head + [UInt8](repeating: fill, count: 15 - head.count) + [last]
    }

    @Test("show reads sets and their elements and expands the rules that look them up")
    func showExpandsSetLookups() throws {
        guard let namespace = try Self.namespace(loading: Self.foreign) else { return }
        defer { namespace.delete() }

        // The program form: every set of the ip/ip6 tables (anonymous ones by the kernel's
        // names), flags and key types as nft made them, interval pairs normalised to ranges.
        let snapshot = try NftReadback.snapshot(try NetlinkSocket(namespace: namespace.name))
        #expect(snapshot.otherTables == ["inet mixed"])
        #expect(snapshot.attempts == 1)  // the element dumps carry the generation too
        let other = try #require(snapshot.ruleset.tables.first { $0.family == .ipv4 && $0.name == "other" })
        let anonymous: NftSet.Flags = [.anonymous, .constant]
        #expect(other.sets == [
            NftSet(name: "allowed", flags: .interval, keyType: 7, keyLength: 4, elements: [
                NftSetElement(key: [10, 1, 0, 0], keyEnd: [10, 1, 255, 255]),
                NftSetElement(key: [172, 16, 5, 5], keyEnd: [172, 16, 5, 5]),
            ]),
            NftSet(name: "__set0", flags: anonymous, keyType: 13, keyLength: 2, elements: [
                NftSetElement(key: [0, 80]), NftSetElement(key: [1, 187]),
            ]),
            NftSet(name: "__set1", flags: anonymous.union(.interval), keyType: 7, keyLength: 4, elements: [
                NftSetElement(key: [10, 0, 0, 0], keyEnd: [10, 255, 255, 255]),
                NftSetElement(key: [192, 168, 1, 1], keyEnd: [192, 168, 1, 1]),
            ]),
            NftSet(name: "__set2", flags: anonymous, keyType: 41, keyLength: 16, elements: [
                NftSetElement(key: Self.ifname("eth0")), NftSetElement(key: Self.ifname("wg0")),
            ]),
        ])
        #expect(other.chains[0].rules.map { $0.expressions.compactMap { $0 as? LookupExpression } } == [
            [LookupExpression(set: "__set0")], [LookupExpression(set: "__set1")], [LookupExpression(set: "__set2")],
            [LookupExpression(set: "allowed")],
        ])
        // ip6: read with a GETSETELEM dump of family ip6; "br-*" is the range br-\0… … br-\xff….
        let other6 = try #require(snapshot.ruleset.tables.first { $0.family == .ipv6 && $0.name == "other6" })
        #expect(other6.sets == [
            NftSet(name: "__set0", flags: anonymous.union(.interval), keyType: 8, keyLength: 16, elements: [
                NftSetElement(key: Self.v6([], last: 1), keyEnd: Self.v6([], last: 1)),
                NftSetElement(key: Self.v6([0xfd]), keyEnd: Self.v6([0xfd], last: 0xff, fill: 0xff)),
            ]),
            NftSet(name: "__set1", flags: anonymous.union(.interval), keyType: 41, keyLength: 16, elements: [
                NftSetElement(key: Self.ifname("br-"), keyEnd: Array("br-".utf8) + [UInt8](repeating: 0xff, count: 13)),
                NftSetElement(key: Self.ifname("veth1"), keyEnd: Self.ifname("veth1")),
            ]),
        ])

        // The model: one rule per element (per combination of elements), in key order.
        let (shown, diagnostics) = Deployer.show(namespace: namespace.name)
        #expect(diagnostics.map(\.description) == ["warning: table inet mixed is of a family Weir does not model; not shown"])
        let tcp = Match.protocol(.tcp)
        func dport(_ port: UInt16) -> Match { .port(.destination, PortRange(port)) }
        func source(_ text: String) -> Match { .address(.source, Prefix(text)!) }
        let expected = Ruleset(tables: [
            Table(family: .ipv4, name: "other", chains: [
                Chain(name: "input", kind: .base(hook: .input, priority: 10, policy: .accept), rules: [
                    Rule([tcp, dport(80)], .accept),
                    Rule([tcp, dport(443)], .accept),
                    Rule([source("10.0.0.0/8")], .drop),
                    Rule([source("192.168.1.1/32")], .drop),
                    Rule([.inInterface(InterfaceName("eth0"))], .accept),
                    Rule([.inInterface(InterfaceName("wg0"))], .accept),
                    Rule([source("10.1.0.0/16"), tcp, dport(22)], .accept),
                    Rule([source("172.16.5.5/32"), tcp, dport(22)], .accept),
                ]),
            ]),
            Table(family: .ipv6, name: "other6", chains: [
                Chain(name: "forward", kind: .base(hook: .forward, priority: 0, policy: .drop), rules: [
                    Rule([source("::1/128"), .outInterface(InterfaceName("br-", wildcard: true))], .accept),
                    Rule([source("::1/128"), .outInterface(InterfaceName("veth1"))], .accept),
                    Rule([source("fd00::/8"), .outInterface(InterfaceName("br-", wildcard: true))], .accept),
                    Rule([source("fd00::/8"), .outInterface(InterfaceName("veth1"))], .accept),
                ]),
            ]),
        ])
        #expect(shown == expected)

        // The command line prints the same as iptables-save text.
        let run = try CommandRunner.run(Self.weir, ["show", "--netns", namespace.name, "--format", "iptables"])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout == """
            *other
            :input ACCEPT [0:0]
            -A input -p tcp -m tcp --dport 80 -j ACCEPT
            -A input -p tcp -m tcp --dport 443 -j ACCEPT
            -A input -s 10.0.0.0/8 -j DROP
            -A input -s 192.168.1.1/32 -j DROP
            -A input -i eth0 -j ACCEPT
            -A input -i wg0 -j ACCEPT
            -A input -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT
            -A input -s 172.16.5.5/32 -p tcp -m tcp --dport 22 -j ACCEPT
            COMMIT
            *other6
            :forward DROP [0:0]
            -A forward -s ::1/128 -o br-+ -j ACCEPT
            -A forward -s ::1/128 -o veth1 -j ACCEPT
            -A forward -s fd00::/8 -o br-+ -j ACCEPT
            -A forward -s fd00::/8 -o veth1 -j ACCEPT
            COMMIT

            """)
        #expect(run.stderr.contains("warning: table inet mixed is of a family Weir does not model; not shown"), "\(run.stderr)")
    }

    @Test("a set whose element dump spans several netlink messages is read completely")
    func largeSetsAreReadCompletely() throws {
        // 3000 ports come back in 4 NEWSETELEM messages on Linux 6.18.
        let ports = (1...3000).map(String.init).joined(separator: ", ")
        guard let namespace = try Self.namespace(loading: """
            table ip big {
                set ports {
                    type inet_service
                    elements = { \(ports) }
                }
                chain input {
                    type filter hook input priority 0; policy accept;
                    tcp dport @ports drop
                }
            }

            """) else { return }
        defer { namespace.delete() }
        let snapshot = try NftReadback.snapshot(try NetlinkSocket(namespace: namespace.name))
        let set = try #require(snapshot.ruleset.tables.first?.sets.first)
        let keys: [[UInt8]] = (1...3000).map { (port: Int) -> [UInt8] in [UInt8(port >> 8), UInt8(port & 0xff)] }
        let elements: [NftSetElement] = keys.map { NftSetElement(key: $0) }
        #expect(set.elements == elements)
        let (shown, diagnostics) = Deployer.show(namespace: namespace.name)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let rules: [Rule] = (1...3000).map { (port: Int) -> Rule in
            Rule([.protocol(.tcp), .port(.destination, PortRange(UInt16(port)))], .drop)
        }
        #expect(shown?.tables.first?.chains.first?.rules == rules)
    }

    @Test("inverted lookups and catch-all map elements are located errors; maps and concatenations expand; the other rules still show")
    func unexpandableLookupsAreErrors() throws {
        guard let namespace = try Self.namespace(loading: """
            table ip other {
                set allowed {
                    type ipv4_addr
                    flags interval
                    elements = { 10.1.0.0/16 }
                }
                chain input {
                    type filter hook input priority 10; policy accept;
                    ip saddr != @allowed drop
                    tcp dport vmap { 22 : accept, 23 : drop }
                    ip saddr . tcp dport { 1.2.3.4 . 22 } accept
                    tcp dport vmap { 25 : accept, * : drop }
                    tcp dport { 80, 443 } accept
                }
            }

            """) else { return }
        defer { namespace.delete() }
        let (shown, diagnostics) = Deployer.show(namespace: namespace.name)
        let place = "error: table ip other, chain input, rule"
        let errors = [
            "\(place) 1: expression 2 [ lookup reg 1 set allowed 0x1 ]: an inverted lookup (!= @allowed) matches packets outside every element; the model cannot say that in one rule, and expanding applies only to positive lookups",
            "\(place) 4: expression 4 [ lookup reg 1 set __map1 dreg 0 0x0 ]: set '__map1' has a catch-all element, which matches only when no other element does; the model has no rule for that",
        ]
        #expect(diagnostics.map(\.description) == errors)
        func tcp(_ port: UInt16) -> [Match] { [.protocol(.tcp), .port(.destination, PortRange(port))] }
        #expect(shown == Ruleset(tables: [Table(family: .ipv4, name: "other", chains: [
            Chain(name: "input", kind: .base(hook: .input, priority: 10, policy: .accept), rules: [
                Rule(tcp(22), .accept), Rule(tcp(23), .drop),
                Rule([.address(.source, Prefix("1.2.3.4/32")!)] + tcp(22), .accept),
                Rule(tcp(80), .accept), Rule(tcp(443), .accept),
            ]),
        ])]))

        let run = try CommandRunner.run(Self.weir, ["show", "--netns", namespace.name, "--format", "iptables"])
        #expect(run.status == 1, "\(run)")
        for error in errors { #expect(run.stderr.contains(error), "\(run.stderr)") }
        #expect(run.stdout.contains("-A input -p tcp -m tcp --dport 443 -j ACCEPT"))
        #expect(run.stdout.contains("-A input -s 1.2.3.4/32 -p tcp -m tcp --dport 22 -j ACCEPT"))
    }
}
