import Testing
import WeirModel
import WeirSimulator
import WeirVerifier

/// The symbolic packet sets of matches must hold exactly the concrete packets the simulator's
/// semantics accept (checked against `ReferenceSimulator.matches`).
@Suite("Match encoding")
struct MatchEncoderTests {
    static let host = HostModel(interfaces: [
        .init(name: "enp0s8", addresses: [Prefix("10.0.3.121/24")!]),
        .init(name: "docker0", addresses: [Prefix("172.17.0.1/16")!], isBridge: true),
    ])

    /// A tiny deterministic generator (SplitMix64).
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func bool() -> Bool { next() & 1 == 1 }
    }

    static let addresses = ["10.0.3.121", "10.0.3.122", "10.0.3.255", "172.17.0.1", "172.17.0.2", "172.17.255.255",
                            "127.0.0.1", "8.8.8.8", "224.0.0.5", "255.255.255.255", "0.0.0.0"]
    static let interfaces: [String?] = [nil, "enp0s8", "docker0", "eth0", "eth1", "wg0", "lo", "veth1"]
    static let patterns = ["enp0s8", "docker0", "eth+", "eth0", "wg+", "+", "veth1"]
    static let prefixes = ["10.0.3.0/24", "172.17.0.0/16", "172.17.0.2/32", "127.0.0.0/8", "0.0.0.0/0", "8.0.0.0/7", "10.0.3.122/32"]

    static func randomMatch(_ r: inout Random) -> Match {
        let negated = r.bool()
        switch r.next() % 8 {
        case 0: return .inInterface(InterfaceName(iptables: r.pick(patterns)), negated: negated)
        case 1: return .outInterface(InterfaceName(iptables: r.pick(patterns)), negated: negated)
        case 2: return .address(r.bool() ? .source : .destination, Prefix(r.pick(prefixes))!, negated: negated)
        case 3: return .protocol(r.pick([.tcp, .udp, .icmp, .sctp]), negated: negated)
        case 4:
            let low = UInt16(r.pick([1, 22, 80, 1000, 8000]))
            return .port(r.bool() ? .source : .destination, PortRange(low, low + UInt16(r.pick([0, 0, 2, 1000]))), negated: negated)
        case 5: return .conntrackState(Set((0..<2).map { _ in r.pick(ConntrackState.allCases) }), negated: negated)
        case 6: return .addressType(r.bool() ? .source : .destination, r.pick([.local, .unicast, .broadcast, .multicast, .unspec]), negated: negated)
        default: return .comment("x")
        }
    }

    @Test("random matches and rules: BDD membership equals concrete matching")
    func agreesWithConcreteMatching() {
        var random = Random(state: 0x5745_4952_5645_5249)
        for round in 0..<300 {
            let rule = Rule((0..<Int(random.next() % 4)).map { _ in Self.randomMatch(&random) }, .accept)
            let ruleset = Ruleset(tables: [Table(family: .ipv4, name: "filter", chains: [Chain(name: "X", kind: .user, rules: [rule])])])
            let space = PacketSpace(family: .ipv4, ruleset: ruleset, host: Self.host)
            let manager = BDDManager()
            let set = MatchEncoder(space: space, host: Self.host, manager: manager).packets(matching: rule)
            let reference = ReferenceSimulator(ruleset: ruleset, host: Self.host)
            for _ in 0..<60 {
                let packet = Packet(source: IPAddress(random.pick(Self.addresses))!, destination: IPAddress(random.pick(Self.addresses))!,
                                    transport: random.pick([.tcp, .udp, .icmp, .sctp]),
                                    sourcePort: UInt16(random.pick([1, 22, 23, 80, 1000, 1500, 8001, 9000])),
                                    destinationPort: UInt16(random.pick([1, 22, 23, 80, 1000, 1500, 8001, 9000])),
                                    state: random.pick(ConntrackState.allCases))
                let input = random.pick(Self.interfaces), output = random.pick(Self.interfaces)
                let concrete = reference.matches(rule, .init(packet: packet, input: input, output: output))
                // Nothing rewritten: the current header, which matches read, is the arriving one.
                let symbolic = manager.contains(set, space.assignment(packet, input: space.interfaceClass(input), output: space.interfaceClass(output)))
                #expect(concrete == symbolic, "round \(round): \(rule) on \(packet) IN=\(input ?? "") OUT=\(output ?? "")")
            }
        }
    }

    @Test("interface classes: listed names, a representative per wildcard prefix, any other, none")
    func interfaceClasses() {
        let rule = Rule([.inInterface(InterfaceName(iptables: "eth+")), .outInterface(InterfaceName("wg0"))], .accept)
        let ruleset = Ruleset(tables: [Table(family: .ipv4, name: "filter", chains: [Chain(name: "X", kind: .user, rules: [rule])])])
        let space = PacketSpace(family: .ipv4, ruleset: ruleset, host: Self.host)
        #expect(space.interfaces == ["", "docker0", "enp0s8", "lo", "wg0", "eth*", "*"])
        #expect(space.interfaceClass(nil) == 0)
        #expect(space.interfaces[space.interfaceClass("eth7")] == "eth*")
        #expect(space.interfaces[space.interfaceClass("ppp0")] == "*")
    }
}
