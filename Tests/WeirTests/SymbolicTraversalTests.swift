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

    /// Packets between the addresses `MatchEncoderTests` knows, from a local process or one of
    /// its interfaces (and some no host has).
    static func randomPackets(_ count: Int, _ random: inout R) -> [(Packet, Origin)] {
        (0..<count).map { _ in
            let packet = Packet(source: IPAddress(random.pick(MatchEncoderTests.addresses))!, destination: IPAddress(random.pick(MatchEncoderTests.addresses))!,
                                transport: random.pick([.tcp, .udp, .icmp]), sourcePort: UInt16(random.pick([22, 80, 1000])),
                                destinationPort: UInt16(random.pick([22, 80, 1000, 8001])), state: random.pick(ConntrackState.allCases))
            let origin: Origin = random.next() % 4 == 0 ? .local : .interface(random.pick(["enp0s8", "docker0", "eth0", "wg0", "veth1", "lo"]))
            return (packet, origin)
        }
    }

    @Test("random rulesets over every hook: random packets get the simulator's outcome (150 rulesets)")
    func randomRulesets() {
        var random = R(state: 0x5241_4E44_4F4D_5354)
        let host = MatchEncoderTests.host
        for round in 0..<150 {
            let ruleset = Self.randomRuleset(&random)
            let packets = Self.randomPackets(60, &random)
            Self.check(ruleset, host: host, packets: packets, label: "round \(round)")
        }
    }

    /// On every possible host, with the choices of one concrete host, each packet's class must
    /// exist, be unique, and give the simulator's outcome on that host. MASQUERADE's source is
    /// "some address of the host" there, so only that it was masqueraded is compared.
    static func checkEveryHost(_ ruleset: Ruleset, hosts: [HostModel], packets: [(Packet, Origin)], label: String) {
        for family in Family.allCases {
            let manager = BDDManager()
            let space = PacketSpace(family: family, rulesets: [ruleset], host: nil)
            let traversal = SymbolicTraversal(ruleset: ruleset, host: nil, space: space, manager: manager)
            let classes = traversal.classes()
            for host in hosts {
                let simulator = Simulator(ruleset: ruleset, host: host)
                for (packet, origin) in packets where packet.family == family {
                    let expected = simulator.simulate(packet, from: origin, trace: false)
                    let choices = Self.choices(of: host, for: packet, space: space, manager: manager)
                    let arriving = manager.and(space.arrivingSet(packet, input: space.inputClass(origin), manager: manager), choices)
                    let owners = classes.filter { !manager.and($0.packets, arriving).isFalse }
                    #expect(owners.count == 1, "\(label): \(owners.count) classes hold \(packet) from \(origin): \(owners.map(\.fate)) on \(host.interfaces.map(\.name)) simulator \(simulator.simulate(packet, from: origin, trace: false).outcome)")
                    guard let owner = owners.first, let member = manager.anyMember(manager.and(owner.packets, arriving)) else { continue }
                    let fate: OutcomeClass.Fate? = switch expected.outcome {
                    case .deliveredLocally: .deliveredLocally
                    case .forwarded(let name): .forwarded(space.interfaceClass(name))
                    case .sent(let name): .sent(space.interfaceClass(name))
                    case .dropped: .dropped
                    case .unroutable: .unroutable
                    }
                    #expect(owner.fate == fate, "\(label) on \(host.interfaces.map(\.name)): \(packet) from \(origin): simulator \(expected.outcome), symbolic \(owner.fate)")
                    guard owner.fate == fate, ObservableOutcome(expected).fate.getsThrough else { continue }
                    func value(_ f: PacketSpace.Rewritable, _ arrived: UInt128) -> UInt128 { f.currentValue(in: member, arrived: arrived) }
                    let final = expected.packet
                    let masqueraded = member[space.source.marker!] == true
                    if !masqueraded { #expect(value(space.source, packet.source.bits) == final.source.bits, "\(label): \(packet) source") }
                    #expect(value(space.destination, packet.destination.bits) == final.destination.bits, "\(label): \(packet) destination")
                    #expect(value(space.destinationPort, UInt128(packet.destinationPort)) == UInt128(final.destinationPort), "\(label): \(packet) dport")
                    #expect(value(space.sourcePort, UInt128(packet.sourcePort)) == UInt128(final.sourcePort), "\(label): \(packet) sport")
                }
            }
        }
    }

    /// The choices `host` makes for a packet: the route, locality and broadcast of its
    /// addresses and of every address a NAT target writes, and forwarding.
    static func choices(of host: HostModel, for packet: Packet, space: PacketSpace, manager m: BDDManager) -> BDDManager.Node {
        let c = space.hostChoices
        func route(_ address: IPAddress) -> UInt128 { UInt128(host.route(address).map { space.interfaceClass($0) } ?? 0) }
        func bit(_ v: Int, _ on: Bool) -> BDDManager.Node { on ? m.variable(v) : m.notVariable(v) }
        var set = [m.equals(c.routeOfDestination, route(packet.destination)), bit(c.sourceIsLocal, host.isLocal(packet.source)),
                   bit(c.destinationIsBroadcast, host.addressType(of: packet.destination) == .broadcast),
                   bit(c.sourceIsBroadcast, host.addressType(of: packet.source) == .broadcast), bit(c.forwards, host.ipForward)]
        for written in c.written {
            set += [m.equals(written.route, route(written.address)), bit(written.isBroadcast, host.addressType(of: written.address) == .broadcast)]
        }
        return set.reduce(BDDManager.Node.true) { m.and($0, $1) }
    }

    @Test("every possible host: with a concrete host's choices, random packets get the simulator's outcome on it (150 rulesets × 3 hosts)")
    func everyHost() {
        var random = R(state: 0x4556_4552_5948_4F53)
        // Forwarding on and bridged traffic through netfilter, as on every host the check covers.
        let hosts = [
            MatchEncoderTests.host,
            HostModel(interfaces: [.init(name: "eth0", addresses: [Prefix("8.8.8.1/24")!, Prefix("172.17.0.2/30")!]),
                                   .init(name: "wg0", addresses: [Prefix("10.0.3.122/32")!])],
                      extraRoutes: [.init(destination: Prefix("0.0.0.0/0")!, interface: "eth0"), .init(destination: Prefix("224.0.0.0/4")!, interface: "wg0")]),
            HostModel(interfaces: [.init(name: "veth1", addresses: [Prefix("10.0.3.121/32")!, Prefix("fd00::1/64")!])]),
        ]
        for round in 0..<150 {
            let ruleset = Self.randomRuleset(&random)
            let packets = Self.randomPackets(40, &random)
            Self.checkEveryHost(ruleset, hosts: hosts, packets: packets, label: "round \(round)")
        }
    }

    @Test("every policy on every possible host: random packets get the simulator's outcome on the policy's host", arguments: NftFixtures.policies)
    func policiesEveryHost(_ policy: String) throws {
        let result = Compiler.compile(path: Repository.policy(policy))
        let ruleset = try #require(result.ruleset)
        var host = try RulesetSource.host(ofPolicy: Repository.policy(policy)).get()
        host.ipForward = true
        host.bridgeNetfilter = true
        // Every interface with an address of each family: on every possible host MASQUERADE
        // always has one to take (an interface without one, where it drops, is not modelled).
        for (index, interface) in host.interfaces.enumerated() where interface.name != "lo" {
            if !interface.addresses.contains(where: { $0.family == .ipv4 }) { host.interfaces[index].addresses.append(Prefix("198.51.100.\(index)/32")!) }
            if !interface.addresses.contains(where: { $0.family == .ipv6 }) { host.interfaces[index].addresses.append(Prefix("2001:db8:ffff::\(index)/128")!) }
        }
        var random = R(state: 0x4556_4552_5950_4F4C)
        Self.checkEveryHost(ruleset, hosts: [host], packets: Self.packets(ruleset, host: host, count: 300, &random), label: policy)
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
