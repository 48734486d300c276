import WeirModel

/// Small constructors for hand-built models.
public enum IptablesFixtures {
    public static func p(_ text: String) -> Prefix { Prefix(text)! }
    public static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    public static func iface(_ text: String) -> InterfaceName { InterfaceName(iptables: text) }

    public static func base(_ table: String, _ hook: Hook, _ policy: ChainPolicy = .accept, _ rules: [Rule] = []) -> Chain {
        Chain(name: hook.rawValue, kind: .base(hook: hook, priority: XtablesLayout.priority(table: table, hook: hook), policy: policy), rules: rules)
    }

    /// A built-in table with all its chains; `policies` and `rules` fill them in, `user` adds user chains.
    public static func table(_ name: String, _ family: Family = .ipv4, policies: [Hook: ChainPolicy] = [:],
                      rules: [String: [Rule]] = [:], user: [String] = []) -> Table {
        var chains = (XtablesLayout.hooks[name] ?? []).map { hook in
            base(name, hook, policies[hook] ?? .accept, rules[hook.rawValue] ?? [])
        }
        for chain in user { chains.append(Chain(name: chain, kind: .user, rules: rules[chain] ?? [])) }
        return Table(family: family, name: name, chains: chains)
    }

    /// Docker 27.x scenario S1 (IPv4), as in shared/reference/docker-classic-default.rules.
    public static var dockerS1: Ruleset {
        let docker0 = iface("docker0")
        let filter = table("filter", policies: [.forward: .drop], rules: [
            "FORWARD": [
                Rule([], .jump("DOCKER-USER")),
                Rule([], .jump("DOCKER-ISOLATION-STAGE-1")),
                Rule([.outInterface(docker0), .conntrackState([.related, .established])], .accept),
                Rule([.outInterface(docker0)], .jump("DOCKER")),
                Rule([.inInterface(docker0), .outInterface(docker0, negated: true)], .accept),
                Rule([.inInterface(docker0), .outInterface(docker0)], .accept),
            ],
            "DOCKER": [
                Rule([.address(.destination, p("172.17.0.2")), .inInterface(docker0, negated: true), .outInterface(docker0),
                      .protocol(.tcp), .port(.destination, PortRange(80))], .accept),
            ],
            "DOCKER-ISOLATION-STAGE-1": [
                Rule([.inInterface(docker0), .outInterface(docker0, negated: true)], .jump("DOCKER-ISOLATION-STAGE-2")),
                Rule([], .return),
            ],
            "DOCKER-ISOLATION-STAGE-2": [
                Rule([.outInterface(docker0)], .drop),
                Rule([], .return),
            ],
            "DOCKER-USER": [Rule([], .return)],
        ], user: ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"])
        let nat = table("nat", rules: [
            "PREROUTING": [Rule([.addressType(.destination, .local)], .jump("DOCKER"))],
            "OUTPUT": [Rule([.address(.destination, p("127.0.0.0/8"), negated: true), .addressType(.destination, .local)], .jump("DOCKER"))],
            "POSTROUTING": [
                Rule([.address(.source, p("172.17.0.0/16")), .outInterface(docker0, negated: true)], .masquerade(ports: nil)),
                Rule([.address(.source, p("172.17.0.2")), .address(.destination, p("172.17.0.2")), .protocol(.tcp),
                      .port(.destination, PortRange(80))], .masquerade(ports: nil)),
            ],
            "DOCKER": [
                Rule([.inInterface(docker0)], .return),
                Rule([.inInterface(docker0, negated: true), .protocol(.tcp), .port(.destination, PortRange(10080))],
                     .dnat(NATDestination(address: ip("172.17.0.2"), ports: PortRange(80)))),
            ],
        ], user: ["DOCKER"])
        return Ruleset(tables: [filter, nat])
    }
}
