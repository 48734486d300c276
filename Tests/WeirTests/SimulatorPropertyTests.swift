import Foundation
import Testing
import WeirModel
import WeirSimulator

/// Seeded random checks of the fast simulator (precompiled rules, interned interfaces, indexed
/// long chains) against the reference evaluator, with tracing on and off. `WEIR_FUZZ_SEED`
/// replays a run; the seed is in every failure message.
@Suite struct SimulatorPropertyTests {
    typealias F = SimulatorFixtures
    typealias Generator = NftPropertyTests.Generator

    static var seed: UInt64 { NftPropertyTests.seed }

    /// Checks one packet (and its reply) both ways; returns a failure text or nil.
    static func check(_ fast: Simulator, _ reference: ReferenceSimulator, _ packet: Packet, _ origin: Origin) -> String? {
        let traced = fast.simulate(packet, from: origin)
        let expected = reference.simulate(packet, from: origin)
        let got = ReferenceSimulator.shape(traced)
        if got != expected {
            return "\(packet) from \(origin):\nfast:\n\(got.steps.map(\.description).joined(separator: "\n"))\n\(got.outcome) \(got.packet)"
                + "\nreference:\n\(expected.steps.map(\.description).joined(separator: "\n"))\n\(expected.outcome) \(expected.packet)"
        }
        if traced.origin != origin { return "\(packet) from \(origin): origin \(traced.origin)" }
        let quiet = fast.simulate(packet, from: origin, trace: false)
        if !quiet.steps.isEmpty || quiet.outcome != traced.outcome || quiet.packet != traced.packet
            || quiet.exitInterface != traced.exitInterface || quiet.translation != traced.translation || quiet.origin != traced.origin {
            return "\(packet) from \(origin): trace off gives \(quiet.outcome) \(quiet.packet), trace on \(traced.outcome) \(traced.packet)"
        }
        let reply = fast.reply(to: traced).map(ReferenceSimulator.shape)
        let expectedReply = reference.reply(to: expected)
        if reply != expectedReply {
            return "reply to \(packet) from \(origin):\nfast: \(String(describing: reply?.steps))\n\(String(describing: reply?.outcome))"
                + "\nreference: \(String(describing: expectedReply?.steps))\n\(String(describing: expectedReply?.outcome))"
        }
        if let quietReply = fast.reply(to: traced, trace: false), quietReply.outcome != reply?.outcome || quietReply.packet != reply?.packet {
            return "reply to \(packet) from \(origin): trace off differs"
        }
        return nil
    }

    // MARK: Random rulesets

    static let names = ["eth0", "docker0", "lo", "wg0", "br-a1", "br-b2", "veth9"]
    static let patterns = ["eth0", "docker0", "lo", "wg0", "br-a1", "br-b2", "eth+", "br-+", "wg+", "veth+", "docker0+", "x"]
    static let v4 = ["10.0.0.1", "10.0.0.2", "10.0.0.255", "172.17.0.1", "172.17.0.2", "172.17.0.3", "127.0.0.1", "8.8.8.8",
                     "192.168.99.5", "203.0.113.5", "0.0.0.0", "224.0.0.1"]
    static let v6 = ["fd00::1", "fd00::2", "fd00:17::1", "fd00:17::2", "::1", "2001:db8::5", "ff02::1"]
    static let ports: [UInt16] = [22, 53, 80, 443, 8080, 10080, 40000]

    struct Pools {
        var family: Family
        var addresses: [String] { family == .ipv4 ? SimulatorPropertyTests.v4 : SimulatorPropertyTests.v6 }
    }

    static func randomMatch(_ family: Family, _ rng: inout Generator, transports: inout TransportProtocol?) -> Match {
        let negated = Int.random(in: 0..<4, using: &rng) == 0
        let pool = family == .ipv4 ? v4 : v6
        switch Int.random(in: 0..<11, using: &rng) {
        case 0: return .inInterface(InterfaceName(iptables: patterns.randomElement(using: &rng)!), negated: negated)
        case 1: return .outInterface(InterfaceName(iptables: patterns.randomElement(using: &rng)!), negated: negated)
        case 2, 3:
            let address = IPAddress(pool.randomElement(using: &rng)!)!
            let length = Bool.random(using: &rng) ? family.bitWidth : Int.random(in: 0...family.bitWidth, using: &rng)
            return .address(Bool.random(using: &rng) ? .source : .destination, Prefix(address: address, length: length).canonical, negated: negated)
        case 4, 5:
            let t = [TransportProtocol.tcp, .udp, .sctp, .icmp].randomElement(using: &rng)!
            transports = t
            return .protocol(t, negated: Int.random(in: 0..<6, using: &rng) == 0)
        case 6, 7:
            let a = ports.randomElement(using: &rng)!
            let range = Bool.random(using: &rng) ? PortRange(a) : PortRange(min(a, 1000), max(a, 1000))
            return .port(Int.random(in: 0..<4, using: &rng) == 0 ? .source : .destination, range, negated: Int.random(in: 0..<6, using: &rng) == 0)
        case 8: return .conntrackState(Set(ConntrackState.allCases.filter { _ in Bool.random(using: &rng) }), negated: negated)
        case 9: return .addressType(Bool.random(using: &rng) ? .source : .destination,
                                    [AddressType.local, .unicast, .broadcast, .multicast].randomElement(using: &rng)!, negated: negated)
        default: return .comment("c")
        }
    }

    static func randomTarget(_ table: String, _ family: Family, chain: Int, chains: Int, _ rng: inout Generator) -> Target {
        let pool = family == .ipv4 ? v4 : v6
        func user() -> String { Int.random(in: 0..<12, using: &rng) == 0 ? "MISSING" : "U\(Int.random(in: (chain + 1)...chains, using: &rng) - 1)" }
        var choices = [0, 1, 2, 3, 6, 7]
        if chain < chains { choices += [4, 4, 5] }
        if table == "nat" { choices += [8, 8, 9, 10] } else if Int.random(in: 0..<8, using: &rng) == 0 { choices += [8, 10] }
        switch choices.randomElement(using: &rng)! {
        case 0: return .accept
        case 1: return .drop
        case 2: return .reject(with: nil)
        case 3: return .return
        case 4: return .jump(user())
        case 5: return .goto(user())
        case 6: return .log(prefix: nil, level: nil)
        case 7: return .checksumFill
        case 8: return .dnat(NATDestination(address: IPAddress(pool.randomElement(using: &rng)!)!,
                                            ports: Bool.random(using: &rng) ? PortRange(ports.randomElement(using: &rng)!) : nil))
        case 9: return .snat(NATDestination(address: IPAddress(pool.randomElement(using: &rng)!)!, ports: nil))
        default: return .masquerade(ports: Bool.random(using: &rng) ? nil : PortRange(5000, 5010))
        }
    }

    /// A random rule; half the time shaped like a port map (`-p P --dport N` with extras), which
    /// the fast simulator indexes in long chains.
    static func randomRule(_ table: String, _ family: Family, chain: Int, chains: Int, _ rng: inout Generator) -> Rule {
        var matches: [Match] = []
        var transport: TransportProtocol? = nil
        if Bool.random(using: &rng) {
            let t = [TransportProtocol.tcp, .udp].randomElement(using: &rng)!
            matches = [.protocol(t), .port(.destination, PortRange(ports.randomElement(using: &rng)!))]
            if Bool.random(using: &rng) {
                let pool = family == .ipv4 ? v4 : v6
                matches.append(.address(.destination, Prefix(host: IPAddress(pool.randomElement(using: &rng)!)!)))
            }
            if Bool.random(using: &rng) { matches.append(.inInterface(InterfaceName(iptables: patterns.randomElement(using: &rng)!), negated: Bool.random(using: &rng))) }
        } else {
            for _ in 0..<Int.random(in: 0...4, using: &rng) { matches.append(randomMatch(family, &rng, transports: &transport)) }
        }
        return Rule(matches, randomTarget(table, family, chain: chain, chains: chains, &rng))
    }

    static func randomRuleset(_ family: Family, _ rng: inout Generator) -> Ruleset {
        var tables: [Table] = []
        for name in ["raw", "mangle", "nat", "filter"] where Int.random(in: 0..<3, using: &rng) > 0 {
            let userCount = Int.random(in: 0...4, using: &rng)
            var table = XtablesLayout.emptyTable(name, family: family)!
            func rules(_ chain: Int) -> [Rule] {
                // Some chains long enough to be indexed.
                let count = Int.random(in: 0..<5, using: &rng) == 0 ? Int.random(in: 30...120, using: &rng) : Int.random(in: 0...8, using: &rng)
                return (0..<count).map { _ in randomRule(name, family, chain: chain, chains: userCount, &rng) }
            }
            for chain in table.chains {
                let policy: ChainPolicy = Int.random(in: 0..<3, using: &rng) == 0 ? .drop : .accept
                table.add(Chain(name: chain.name, kind: .base(hook: chain.hook!, priority: XtablesLayout.priority(table: name, hook: chain.hook!),
                                                              policy: policy), rules: rules(0)))
            }
            for u in 0..<userCount { table.add(Chain(name: "U\(u)", kind: .user, rules: rules(u + 1))) }
            tables.append(table)
        }
        return Ruleset(tables: tables)
    }

    static func randomHost(_ rng: inout Generator) -> HostModel {
        var host = F.host
        host.interfaces.append(.init(name: "wg0", addresses: []))
        host.extraRoutes.insert(.init(destination: Prefix("192.168.99.0/24")!, interface: "wg0"), at: 0)
        host.ipForward = Int.random(in: 0..<5, using: &rng) > 0
        host.bridgeNetfilter = Int.random(in: 0..<5, using: &rng) > 0
        return host
    }

    static func randomPacket(_ family: Family, _ rng: inout Generator) -> (Packet, Origin) {
        let pool = family == .ipv4 ? v4 : v6
        let transport = [TransportProtocol.tcp, .tcp, .udp, .sctp, .icmp].randomElement(using: &rng)!
        let hasPorts = transport.hasPorts
        let packet = Packet(source: IPAddress(pool.randomElement(using: &rng)!)!, destination: IPAddress(pool.randomElement(using: &rng)!)!,
                            transport: transport, sourcePort: hasPorts ? ports.randomElement(using: &rng)! : 0,
                            destinationPort: hasPorts ? ports.randomElement(using: &rng)! : 0,
                            state: [ConntrackState.new, .new, .established, .related, .invalid].randomElement(using: &rng)!)
        // Interface names the host does not have ("eth7", "br-zz") still match wildcards.
        let origin: Origin = Int.random(in: 0..<4, using: &rng) == 0 ? .local
            : .interface((names + ["eth7", "br-zz"]).randomElement(using: &rng)!)
        return (packet, origin)
    }

    @Test("random rulesets and packets: the fast simulator equals the reference, traced or not, replies included",
          arguments: [Family.ipv4, Family.ipv6])
    func randomRulesets(family: Family) {
        let seed = Self.seed
        var rng = Generator(state: seed)
        var compared = 0
        for iteration in 0..<250 {
            let ruleset = Self.randomRuleset(family, &rng)
            let host = Self.randomHost(&rng)
            let fast = Simulator(ruleset: ruleset, host: host)
            let reference = ReferenceSimulator(ruleset: ruleset, host: host)
            for _ in 0..<40 {
                let (packet, origin) = Self.randomPacket(family, &rng)
                if let failure = Self.check(fast, reference, packet, origin) {
                    Issue.record("seed \(seed), iteration \(iteration): \(failure)")
                    return
                }
                compared += 1
            }
        }
        #expect(compared == 10_000)
    }

    // MARK: Real policies

    @Test("every bundled policy: random packets around its own addresses and ports agree with the reference")
    func bundledPolicies() throws {
        let seed = Self.seed
        var rng = Generator(state: seed)
        let names = try FileManager.default.contentsOfDirectory(atPath: Repository.root + "/Policies").filter { $0.hasSuffix(".weir") }.sorted()
        #expect(names.count >= 12)
        for name in names {
            let (ruleset, host) = try F.policy(name)
            try Self.compareOnOwnValues(ruleset, host, name: name, count: 400, seed: seed, &rng)
        }
    }

    @Test("a generated policy with long chains (20 networks, 3000 published ports): indexed lookups agree with the scan")
    func benchmarkPolicy() throws {
        let seed = Self.seed
        var rng = Generator(state: seed)
        let (ruleset, host) = try F.benchmarkPolicy(networks: 20, publishes: 3000)
        try Self.compareOnOwnValues(ruleset, host, name: "bench", count: 3000, seed: seed, &rng)
    }

    /// Packets built from the ruleset's own addresses, ports and interfaces (so rules match),
    /// from every interface and from local processes, in every state.
    static func compareOnOwnValues(_ ruleset: Ruleset, _ host: HostModel, name: String, count: Int, seed: UInt64, _ rng: inout Generator) throws {
        var addresses: [IPAddress] = [IPAddress("8.8.8.8")!, IPAddress("2001:db8::8")!, IPAddress("127.0.0.1")!, IPAddress("::1")!]
        var ports: [UInt16] = [22, 40000, 53]
        for table in ruleset.tables {
            for chain in table.chains {
                for rule in chain.rules {
                    for match in rule.matches {
                        switch match {
                        case .address(_, let prefix, _): addresses.append(prefix.address); addresses.append(prefix.last)
                        case .port(_, let range, _): ports.append(range.first); ports.append(range.last)
                        default: break
                        }
                    }
                    switch rule.target {
                    case .dnat(let to), .snat(let to): addresses.append(to.address); if let p = to.ports { ports.append(p.first) }
                    default: break
                    }
                }
            }
        }
        for interface in host.interfaces { addresses += interface.addresses.map(\.address) }
        let interfaces = host.interfaces.map(\.name) + ["eth9"]
        let fast = Simulator(ruleset: ruleset, host: host)
        let reference = ReferenceSimulator(ruleset: ruleset, host: host)
        for _ in 0..<count {
            let source = addresses.randomElement(using: &rng)!
            let sameFamily = addresses.filter { $0.family == source.family }
            let transport = [TransportProtocol.tcp, .tcp, .udp, .sctp, .icmp].randomElement(using: &rng)!
            let packet = Packet(source: source, destination: sameFamily.randomElement(using: &rng)!, transport: transport,
                                sourcePort: transport.hasPorts ? ports.randomElement(using: &rng)! : 0,
                                destinationPort: transport.hasPorts ? ports.randomElement(using: &rng)! : 0,
                                state: [ConntrackState.new, .new, .new, .established, .related].randomElement(using: &rng)!)
            let origin: Origin = Int.random(in: 0..<5, using: &rng) == 0 ? .local : .interface(interfaces.randomElement(using: &rng)!)
            if let failure = check(fast, reference, packet, origin) {
                Issue.record("seed \(seed), \(name): \(failure)")
                return
            }
        }
    }
}
