import Testing
import WeirDriver
import WeirIptables
import WeirModel
import WeirNetlink
import WeirNftables
import WeirSimulator
import WeirTestFixtures
import WeirVerifier

/// The symbolic pipeline must give every packet the outcome the concrete simulator gives it:
/// random packets through every policy, and random rulesets over all hooks and tables.
@Suite("Symbolic traversal")
struct SymbolicTraversalTests {
    typealias R = MatchEncoderTests.Random

    /// The class of each packet must exist, be unique, and have the simulator's outcome.
    static func check(_ ruleset: Ruleset, host: HostModel, packets: [(Packet, Origin)], label: String) {
        for family in Family.allCases {
            let manager = BDDManager()
            let space = PacketSpace(family: family, rulesets: [ruleset], host: host)
            let traversal = SymbolicTraversal(ruleset: ruleset, host: host, space: space, manager: manager)
            let classes = traversal.classes()
            // Disjoint and covering, as sets of arriving packets.
            var union = BDDManager.Node.false
            for c in classes {
                let arriving = manager.exists(c.packets, where: space.isRewrite)
                #expect(manager.and(union, arriving).isFalse, "\(label): classes overlap")
                union = manager.or(union, arriving)
            }
            #expect(union == manager.exists(traversal.universe, where: space.isRewrite), "\(label) \(family): the classes do not cover every packet")
            let simulator = Simulator(ruleset: ruleset, host: host)
            for (packet, origin) in packets where packet.family == family {
                let owners = classes.filter { space.contains($0.packets, packet: packet, origin: origin, manager: manager) }
                #expect(owners.count == 1, "\(label): \(owners.count) classes hold \(packet) from \(origin)")
                guard let owner = owners.first,
                      let symbolic = owner.outcome(for: packet, from: origin, space: space, manager: manager) else { continue }
                let expected = ObservableOutcome(simulator.simulate(packet, from: origin, trace: false))
                #expect(symbolic == expected, "\(label): \(packet) from \(origin): simulator \(expected), symbolic \(symbolic)")
                // One final header per arriving packet: nothing else of the class has this packet.
                let final = symbolic.packet ?? packet
                let arriving = space.arrivingSet(packet, input: space.inputClass(origin), manager: manager)
                let header = [(space.source, final.source.bits), (space.destination, final.destination.bits),
                              (space.sourcePort, UInt128(final.sourcePort)), (space.destinationPort, UInt128(final.destinationPort))]
                    .reduce(BDDManager.Node.true) { manager.and($0, manager.currentEquals($1.0, $1.1)) }
                #expect(manager.minus(manager.and(owner.packets, arriving), header).isFalse,
                        "\(label): \(packet) from \(origin) has more than one final header")
            }
        }
    }

    /// Packets aimed at what a ruleset and host mention.
    static func packets(_ ruleset: Ruleset, host: HostModel, count: Int, _ r: inout R) -> [(Packet, Origin)] {
        var v4: [String] = ["8.8.8.8", "127.0.0.1", "0.0.0.0", "255.255.255.255"], v6: [String] = ["2001:db8::9", "::1"]
        var ports: [UInt16] = [1, 80, 40000]
        for interface in host.interfaces {
            for prefix in interface.addresses {
                if prefix.family == .ipv4 { v4 += ["\(prefix.address)", "\(prefix.last)"] } else { v6.append("\(prefix.address)") }
            }
        }
        for rule in ruleset.tables.flatMap(\.chains).flatMap(\.rules) {
            for match in rule.matches {
                switch match {
                case .address(_, let prefix, _):
                    if prefix.family == .ipv4 { v4.append("\(prefix.address)") } else { v6.append("\(prefix.address)") }
                case .port(_, let range, _): ports += [range.first, range.last]
                default: break
                }
            }
            if case .dnat(let to) = rule.target, let p = to.ports { ports.append(p.first) }
        }
        let origins: [Origin] = [.local, .interface("weirunknown0")] + host.interfaces.map { .interface($0.name) }
        return (0..<count).map { _ in
            let six = r.next() % 4 == 0
            let pool = six ? v6 : v4
            let packet = Packet(source: IPAddress(r.pick(pool))!, destination: IPAddress(r.pick(pool))!,
                                transport: r.pick([.tcp, .udp, .icmp, .sctp]), sourcePort: r.pick(ports),
                                destinationPort: r.pick(ports), state: r.pick(ConntrackState.allCases))
            return (packet, r.pick(origins))
        }
    }

    @Test("every policy: random packets get the simulator's outcome", arguments: NftFixtures.policies)
    func policies(_ policy: String) throws {
        let result = Compiler.compile(path: Repository.policy(policy))
        let ruleset = try #require(result.ruleset)
        let host = try RulesetSource.host(ofPolicy: Repository.policy(policy)).get()
        var random = R(state: 0x5359_4D42_4F4C_4943)
        Self.check(ruleset, host: host, packets: Self.packets(ruleset, host: host, count: 600, &random), label: policy)
    }

    /// Random rulesets: every hook in filter, nat and mangle tables, NAT targets, user chains.
    static func randomRuleset(_ r: inout R) -> Ruleset {
        let users = ["A", "B"]
        func rules(_ count: Int, nat: Bool) -> [Rule] {
            (0..<count).map { _ in
                let matches = (0..<Int(r.next() % 3)).map { _ in MatchEncoderTests.randomMatch(&r) }
                var targets: [Target] = [.accept, .drop, .return, .jump(r.pick(users)), .goto(r.pick(users)), .log(prefix: nil, level: nil)]
                if nat {
                    targets += [.dnat(NATDestination(address: IPAddress(r.pick(["172.17.0.2", "10.0.3.121", "8.8.8.8"]))!, ports: r.bool() ? PortRange(80) : nil)),
                                .snat(NATDestination(address: IPAddress("10.0.3.121")!)), .masquerade(ports: nil)]
                }
                return Rule(matches, r.pick(targets))
            }
        }
        var tables: [Table] = []
        for (name, hooks) in [("filter", [Hook.input, .forward, .output]), ("nat", [.prerouting, .output, .postrouting, .input]), ("mangle", [.prerouting, .postrouting])] {
            let nat = name == "nat"
            var chains: [Chain] = []
            for hook in hooks where r.next() % 3 != 0 {
                let priority = XtablesLayout.priority(table: name, hook: hook)
                chains.append(Chain(name: hook.rawValue, kind: .base(hook: hook, priority: priority, policy: !nat && r.next() % 4 == 0 ? .drop : .accept),
                                    rules: rules(Int(r.next() % 4), nat: nat)))
            }
            for user in users { chains.append(Chain(name: user, kind: .user, rules: rules(Int(r.next() % 3), nat: nat))) }
            tables.append(Table(family: .ipv4, name: name, chains: chains))
        }
        return Ruleset(tables: tables)
    }

    @Test("random rulesets over every hook: random packets get the simulator's outcome (150 rulesets)")
    func randomRulesets() {
        var random = R(state: 0x5241_4E44_4F4D_5354)
        let host = MatchEncoderTests.host
        for round in 0..<150 {
            let ruleset = Self.randomRuleset(&random)
            let packets = (0..<60).map { _ -> (Packet, Origin) in
                let packet = Packet(source: IPAddress(random.pick(MatchEncoderTests.addresses))!, destination: IPAddress(random.pick(MatchEncoderTests.addresses))!,
                                    transport: random.pick([.tcp, .udp, .icmp]), sourcePort: UInt16(random.pick([22, 80, 1000])),
                                    destinationPort: UInt16(random.pick([22, 80, 1000, 8001])), state: random.pick(ConntrackState.allCases))
                let origin: Origin = random.next() % 4 == 0 ? .local : .interface(random.pick(["enp0s8", "docker0", "eth0", "wg0", "veth1", "lo"]))
                return (packet, origin)
            }
            Self.check(ruleset, host: host, packets: packets, label: "round \(round)")
        }
    }

    @Test("each policy's iptables output and nft batch, lifted back, are equivalent", arguments: NftFixtures.policies)
    func policyBackendsAreEquivalent(_ policy: String) throws {
        let result = Compiler.compile(path: Repository.policy(policy))
        let model = try #require(result.ruleset)
        let host = try RulesetSource.host(ofPolicy: Repository.policy(policy)).get()
        let batch = try #require(result.batch)
        let lifted = NftLifting.lift(try NftBatch(decoding: batch.bytes).program)
        #expect(lifted.diagnostics.isEmpty)
        let verdict = Verifier.check(model, lifted.ruleset, host: host)
        #expect(verdict.equivalent, "\(policy): \(String(describing: verdict.counterexample))")
        #expect(verdict.classes > 0)
    }
}
