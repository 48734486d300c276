import Testing
import WeirModel
import WeirSimulator
import WeirVerifier

/// A base chain's symbolic partition must give every packet the verdict the concrete simulator
/// gives it — random filter rulesets with user chains, jumps, gotos and returns.
@Suite("Chain partition")
struct ChainPartitionTests {
    typealias R = MatchEncoderTests.Random

    static func randomRuleset(_ r: inout R) -> Ruleset {
        let users = ["A", "B", "C"]
        func rules(_ count: Int, allowReturn: Bool) -> [Rule] {
            (0..<count).map { _ in
                let matches = (0..<Int(r.next() % 3)).map { _ in MatchEncoderTests.randomMatch(&r) }
                var targets: [Target] = [.accept, .drop, .reject(with: nil), .log(prefix: nil, level: nil), .jump(r.pick(users)), .goto(r.pick(users))]
                if allowReturn { targets.append(.return) }
                return Rule(matches, r.pick(targets))
            }
        }
        var chains = [Chain(name: "INPUT", kind: .base(hook: .input, priority: 0, policy: r.bool() ? .accept : .drop),
                            rules: rules(Int(r.next() % 6), allowReturn: true))]
        for user in users { chains.append(Chain(name: user, kind: .user, rules: rules(Int(r.next() % 5), allowReturn: true))) }
        return Ruleset(tables: [Table(family: .ipv4, name: "filter", chains: chains)])
    }

    @Test("every packet's class has the simulator's verdict (200 random rulesets)")
    func agreesWithSimulator() {
        var random = R(state: 0x5041_5254_4954_494F)
        let host = MatchEncoderTests.host
        for round in 0..<200 {
            let ruleset = Self.randomRuleset(&random)
            let space = PacketSpace(family: .ipv4, ruleset: ruleset, host: host)
            let encoder = MatchEncoder(space: space, host: host, manager: BDDManager())
            let classes = ChainPartitioner(table: ruleset.tables[0], encoder: encoder).partition(baseChain: "INPUT", packets: .true)
            // The classes cover every packet exactly once.
            let union = classes.reduce(BDDManager.Node.false) { encoder.manager.or($0, $1.packets) }
            #expect(union.isTrue, "round \(round): the classes do not cover all packets")
            let simulator = Simulator(ruleset: ruleset, host: host)
            for _ in 0..<40 {
                let packet = Packet(source: IPAddress(random.pick(MatchEncoderTests.addresses))!,
                                    destination: IPAddress(random.pick(["10.0.3.121", "172.17.0.1", "127.0.0.1"]))!,
                                    transport: random.pick([.tcp, .udp, .icmp]), sourcePort: UInt16(random.pick([22, 80, 1000])),
                                    destinationPort: UInt16(random.pick([22, 80, 1000, 8001])), state: random.pick(ConntrackState.allCases))
                let input = random.pick(["enp0s8", "docker0", "eth0", "wg0", "veth1"])
                let concrete = simulator.simulate(packet, from: .interface(input), trace: false).outcome
                let owners = classes.filter { encoder.manager.contains($0.packets) { MatchEncoderTests.bit($0, space: space, packet: packet, input: input, output: nil) } }
                #expect(owners.count == 1, "round \(round): \(owners.count) classes hold \(packet)")
                guard let verdict = owners.first?.verdict else { continue }
                let expected: Outcome = switch verdict {
                case .accept, .translate: .deliveredLocally
                case .drop(let location): .dropped(at: location)
                }
                #expect(concrete == expected, "round \(round): \(packet) IN=\(input): simulator \(concrete), partition \(verdict)\n\(ruleset)")
            }
        }
    }
}
