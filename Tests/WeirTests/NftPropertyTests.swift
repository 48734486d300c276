import Foundation
import Testing
import WeirModel
import WeirTestFixtures
import WeirNftables

/// Seeded random checks: the round-trip law on random rules, and a lifter that never traps on
/// random programs. `WEIR_FUZZ_SEED` replays a run; the seed is in every failure message.
@Suite struct NftPropertyTests {
    typealias N = NftFixtures

    /// SplitMix64: small, deterministic, good enough for test inputs.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    static var seed: UInt64 {
        if let text = ProcessInfo.processInfo.environment["WEIR_FUZZ_SEED"], let value = UInt64(text) { return value }
        return UInt64.random(in: 0...UInt64.max)
    }

    /// Random rules built from the kitchen sink's matches and targets, with random negations,
    /// prefix lengths, interface names and ports: whenever lowering accepts the model,
    /// `lift(lower(m)) == normalForm(m)`.
    @Test(arguments: [Family.ipv4, Family.ipv6])
    func roundTripLawOnRandomRules(family: Family) {
        let seed = Self.seed
        var rng = Generator(state: seed)
        let sink = N.kitchenSink(family)
        let allRules = sink.tables.flatMap(\.chains).flatMap(\.rules)
        let matches = allRules.flatMap(\.matches)
        let targets = allRules.map(\.target) + [.checksumFill, .log(prefix: "", level: 4), .reject(with: "tcp-reset")]
        let width = family.bitWidth
        var accepted = 0
        for iteration in 0..<800 {
            var rule: [Match] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                var match = matches.randomElement(using: &rng)!
                // Perturb it.
                switch match {
                case let .address(direction, prefix, negated):
                    let length = Int.random(in: 0...width, using: &rng)
                    match = .address(direction, Prefix(address: prefix.address, length: length), negated: Bool.random(using: &rng) ? negated : !negated)
                case let .port(direction, _, negated):
                    let a = UInt16.random(in: 0...UInt16.max, using: &rng), b = UInt16.random(in: 0...UInt16.max, using: &rng)
                    match = .port(direction, Bool.random(using: &rng) ? PortRange(min(a, b), max(a, b)) : PortRange(a), negated: negated)
                case let .inInterface(name, negated):
                    let length = Int.random(in: 0...name.name.count, using: &rng)
                    match = .inInterface(InterfaceName(String(name.name.prefix(length)), wildcard: Bool.random(using: &rng)), negated: negated)
                case let .conntrackState(_, negated):
                    match = .conntrackState(Set(ConntrackState.allCases.filter { _ in Bool.random(using: &rng) }), negated: negated)
                default:
                    break
                }
                rule.append(match)
            }
            let target = targets.randomElement(using: &rng)!
            let table = ["filter", "nat", "mangle", "raw"].randomElement(using: &rng)!
            let chains = sink.table(family, table)!.chains
            let chain = chains.randomElement(using: &rng)!
            var model = sink
            model.modifyTable(family, table) { t in
                t.modifyChain(chain.name) { $0.rules.insert(Rule(rule, target), at: Int.random(in: 0...$0.rules.count, using: &rng)) }
            }
            let (program, diagnostics) = NftLowering.lower(model)
            if diagnostics.contains(where: { $0.severity == .error }) { continue }
            accepted += 1
            let (lifted, liftDiagnostics) = NftLifting.lift(program)
            let expected = NftLowering.normalForm(model)
            if !liftDiagnostics.isEmpty || lifted != expected {
                let added = Rule(rule, target)
                Issue.record("seed \(seed), iteration \(iteration): \(added) in \(table) \(chain.name) does not round-trip: \(liftDiagnostics)")
                return
            }
        }
        #expect(accepted > 150, "seed \(seed): only \(accepted) random models lowered without errors")
    }

    /// Random expression sequences (any registers, lengths and data) lift to a rule or an
    /// error, never a trap.
    @Test func lifterNeverTraps() {
        let seed = Self.seed
        var rng = Generator(state: seed)
        func bytes(_ max: Int) -> [UInt8] { (0..<Int.random(in: 0...max, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        func register() -> NftRegister { NftRegister(kernel: UInt32.random(in: 0...25, using: &rng)) }
        let xtNames: [(XtablesExpression.Role, String, UInt32)] = [
            (.match, "conntrack", 3), (.match, "addrtype", 0), (.match, "addrtype", 1), (.match, "comment", 0), (.match, "tcp", 0),
            (.match, "udp", 0), (.target, "MASQUERADE", 0), (.target, "DNAT", 0), (.target, "DNAT", 1), (.target, "SNAT", 2),
            (.target, "REJECT", 0), (.target, "LOG", 0), (.target, "CHECKSUM", 0), (.match, "multiport", 1),
        ]
        var lifted = 0
        for _ in 0..<10_000 {
            var expressions: [any NftExpression] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let e: any NftExpression
                switch Int.random(in: 0..<14, using: &rng) {
                case 0: e = MetaExpression([.iifname, .oifname, .l4proto, .nfproto, .protocol, .mark].randomElement(using: &rng)!, into: register())
                case 1: e = PayloadExpression([.link, .network, .transport].randomElement(using: &rng)!, offset: UInt32.random(in: 0...30, using: &rng),
                                              length: UInt32.random(in: 0...20, using: &rng), into: register())
                case 2: e = CmpExpression([.eq, .neq, .lt, .lte, .gt, .gte].randomElement(using: &rng)!, bytes(17), source: register())
                case 3: e = RangeExpression(Bool.random(using: &rng) ? .eq : .neq, from: bytes(3), to: bytes(3), source: register())
                case 4:
                    let mask = bytes(17)
                    e = BitwiseExpression(mask: mask, xor: Bool.random(using: &rng) ? nil : bytes(17), source: register(), destination: register())
                case 5: e = CtExpression(.state, into: register())
                case 6: e = FibExpression(flags: FibExpression.Flags(rawValue: UInt32.random(in: 0...31, using: &rng)), result: .addressType, into: register())
                case 7: e = ImmediateExpression(.data(bytes(17)), into: register())
                case 8: e = ImmediateExpression.verdict([.accept, .drop, .return, .continue, .jump("X")].randomElement(using: &rng)!)
                case 9: e = NatExpression(Bool.random(using: &rng) ? .snat : .dnat, family: Bool.random(using: &rng) ? .ipv4 : .ipv6,
                                          addressMin: Bool.random(using: &rng) ? register() : nil, addressMax: Bool.random(using: &rng) ? register() : nil,
                                          protoMin: Bool.random(using: &rng) ? register() : nil, protoMax: Bool.random(using: &rng) ? register() : nil,
                                          flags: NatExpression.Flags(rawValue: UInt32.random(in: 0...7, using: &rng)))
                case 10: e = MasqExpression(protoMin: Bool.random(using: &rng) ? register() : nil, protoMax: Bool.random(using: &rng) ? register() : nil)
                case 11: e = RejectExpression([.icmpUnreachable, .tcpReset, .icmpxUnreachable].randomElement(using: &rng)!, code: UInt8.random(in: 0...20, using: &rng))
                case 12: e = LogExpression(prefix: Bool.random(using: &rng) ? "p" : nil, level: Bool.random(using: &rng) ? UInt32.random(in: 0...9, using: &rng) : nil)
                default:
                    let (role, name, revision) = xtNames.randomElement(using: &rng)!
                    e = XtablesExpression(role, name: name, revision: revision, info: bytes(Bool.random(using: &rng) ? 200 : 50))
                }
                expressions.append(e)
            }
            if case .success = NftLifting.lift(NftRule(expressions), family: Bool.random(using: &rng) ? .ipv4 : .ipv6) { lifted += 1 }
        }
        #expect(lifted > 0, "seed \(seed)")
    }
}
