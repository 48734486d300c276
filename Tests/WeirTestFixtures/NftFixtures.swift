import WeirDiagnostics
import WeirModel
import WeirNftables

/// Models for the nftables backend's tests.
public enum NftFixtures {
    public typealias F = IptablesFixtures
    public static func p(_ text: String) -> Prefix { Prefix(text)! }
    public static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    public static func iface(_ text: String) -> InterfaceName { InterfaceName(iptables: text) }

    /// Every match, negation and target the nftables backend supports, in its normal form
    /// (one comment per rule, last; no `/0`; canonical reject names; log level never 4).
    public static func kitchenSink(_ family: Family) -> Ruleset {
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

    /// A model without its CHECKSUM rules (which the nftables backend leaves out).
    public static func withoutChecksum(_ ruleset: Ruleset) -> Ruleset {
        var result = Ruleset()
        for var table in ruleset.tables {
            for chain in table.chains {
                table.modifyChain(chain.name) { $0.rules.removeAll { $0.target == .checksumFill } }
            }
            result.add(table)
        }
        return result
    }

    public static func errors(_ diagnostics: [Diagnostic]) -> [String] {
        diagnostics.filter { $0.severity == .error }.map(\.description)
    }
}

/// The law `lift(lower(m)) == m` on every policy and on the kitchen sink.
