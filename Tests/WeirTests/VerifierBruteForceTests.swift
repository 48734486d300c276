import Foundation
import Testing
import WeirModel
import WeirSimulator
import WeirVerifier

/// The verifier's answer against exhaustive concrete simulation, on random pairs of small
/// rulesets (filter and nat, sometimes mangle; user chains, jumps, gotos, returns, DNAT, SNAT,
/// MASQUERADE, policies) over a small domain of addresses, ports, protocols, interfaces and
/// states, on small hosts (sometimes without forwarding or without br_netfilter).
///
/// About half the pairs are equivalent by construction (B is A, or A after a change that keeps
/// its meaning: swapping rules that cannot both match, a dead rule added, a user chain inlined,
/// a rule split on a match, a chain renamed, a DROP policy turned into a final DROP rule, REJECT
/// for DROP, a LOG added); the others differ by one small mutation, which may or may not change
/// the meaning. Brute force decides which; the verifier must agree on every pair, and every
/// counterexample it gives must be confirmed by the simulator.
///
/// Why the small domain is exhaustive. Every match of these rulesets looks at one field (or the
/// interfaces, or the state) and compares it with values written in the rules: a prefix, a port
/// range, a protocol, an interface name or wildcard, a set of states, the host's local addresses.
/// The simulator's other decisions read fields the same way: routing (the host's connected
/// prefixes, its addresses, 127/8 and the default route), the bridge test (the in interface and
/// the route), address types (the host's addresses, and 0.0.0.0, 224/4, 255.255.255.255 and
/// subnet broadcasts when a rule matches a type other than LOCAL). So for each field, the
/// values that every one of those sets contains or misses alike form one class, and two packets
/// whose fields are in the same classes take the same path through both rulesets. NAT writes a
/// constant (the DNAT/SNAT address and port, or an interface's address for MASQUERADE), and each
/// such constant is made a class of its own (a singleton), so on every path a field of the
/// final header is either the packet's own field in both rulesets, or the same constant, or —
/// when one ruleset wrote a constant and the other kept the field — equal only if the field is
/// that singleton. Hence the outcomes of two packets of one class are equal in both rulesets or
/// different in both, and one representative per class decides. `ExhaustiveDomain` computes
/// the classes of each pair exactly: candidates at every set's ends and just outside them,
/// grouped by which sets hold them; so the domain holds every address the rules and host
/// mention (as /32 or as a prefix end) and at least one address none mentions, every mentioned
/// port and one more, TCP, UDP, ICMP and an unmentioned protocol (GRE; and SCTP when a port
/// match stands without `-p tcp|udp`, as after negating a protocol), one conntrack state per
/// group the rules cannot tell apart (NEW always on its own: nat chains see only NEW), and as
/// origins every host interface, one unknown name, a local process, and each further name a
/// rule can tell from those (a mentioned name, or one per wildcard prefix). A port match never
/// holds for a protocol without ports, so such a packet's ports are never read: it is enumerated
/// with ports 0, which no NAT writes (so a port written on one side only still shows). IPv6: the rulesets have no IPv6 tables, so every IPv6 packet takes
/// the same path through both; the verifier checks that family too, and must find nothing.
///
/// `WEIR_VERIFY_SEED` replays a run (the seed is printed), `WEIR_VERIFY_PAIRS` changes the
/// number of pairs (default 1,000). A failing pair is printed, the first three minimized: rules
/// are taken out while the verifier still disagrees with brute force.
@Suite("Verifier brute force")
struct VerifierBruteForceTests {
    typealias Random = VerifierSupport.Random

    static let pairCount: Int = ProcessInfo.processInfo.environment["WEIR_VERIFY_PAIRS"].flatMap { Int($0) }.map { max($0, 1) } ?? 1000

    // MARK: The small world

    /// A host with an uplink (default route), a bridge and sometimes a second uplink, and the
    /// values rules are drawn from.
    struct World {
        var host: HostModel
        var interfaces: [String]
        var addresses: [String]
        var prefixes: [String]
        let ports: [UInt16] = [22, 80, 8080]

        static func random(_ r: inout Random) -> World {
            var interfaces: [HostModel.Interface] = [
                .init(name: "eth0", addresses: [Prefix("10.0.0.1/24")!]),
                .init(name: "br0", addresses: [Prefix("172.18.0.1/16")!], isBridge: true),
            ]
            var addresses = ["10.0.0.1", "10.0.0.2", "172.18.0.1", "172.18.0.2", "172.18.0.3", "8.8.8.8"]
            var prefixes = ["172.18.0.0/16", "10.0.0.0/8"]
            if r.chance(30) {
                interfaces.append(.init(name: "eth1", addresses: [Prefix("192.168.1.1/24")!]))
                addresses.append("192.168.1.5")
                prefixes.append("192.168.1.0/24")
            }
            let host = HostModel(interfaces: interfaces, extraRoutes: [.init(destination: Prefix("0.0.0.0/0")!, interface: "eth0")],
                                 ipForward: !r.chance(8), bridgeNetfilter: !r.chance(8))
            return World(host: host, interfaces: interfaces.map(\.name), addresses: addresses, prefixes: prefixes)
        }

        func address(_ r: inout Random) -> Prefix {
            r.chance(75) ? Prefix(host: IPAddress(r.pick(addresses))!) : Prefix(r.pick(prefixes))!
        }

        func interface(_ r: inout Random) -> InterfaceName {
            switch r.below(100) {
            case 0..<13: InterfaceName("eth", wildcard: true)
            case 13..<16: InterfaceName("", wildcard: true)  // `-i +`: every name
            case 16..<20: InterfaceName("lo")
            default: InterfaceName(r.pick(interfaces))
            }
        }
    }

    /// Where a chain runs: which interface matches make sense, and which targets.
    enum Context { case filterBase, filterUser, filterLeaf, natDestination, natUser, natSource, natInput, mangle }

    static func randomMatches(_ world: World, _ context: Context, _ r: inout Random) -> [Match] {
        var matches: [Match] = []
        let count = r.pick([0, 1, 1, 2, 2, 3])
        var usedKinds = Set<Int>()
        for _ in 0..<count {
            let kind = r.below(7)
            guard usedKinds.insert(kind).inserted else { continue }
            let negated = r.chance(25)
            switch kind {
            case 0: matches.append(.address(.source, world.address(&r), negated: negated))
            case 1: matches.append(.address(.destination, world.address(&r), negated: negated))
            case 2:
                if context == .natSource { continue }
                matches.append(.inInterface(world.interface(&r), negated: negated))
            case 3:
                if context == .natDestination || context == .natUser || context == .natInput { continue }
                matches.append(.outInterface(world.interface(&r), negated: negated))
            case 4:
                let transport: TransportProtocol = r.pick([.tcp, .tcp, .udp, .icmp])
                if negated {
                    matches.append(.protocol(transport, negated: true))
                } else {
                    matches.append(.protocol(transport))
                    if transport.hasPorts {
                        if r.chance(60) {
                            let range = r.chance(15) ? PortRange(80, 8080) : PortRange(r.pick(world.ports))
                            matches.append(.port(.destination, range, negated: r.chance(15)))
                        }
                        if r.chance(12) { matches.append(.port(.source, PortRange(r.pick(world.ports)), negated: r.chance(20))) }
                    }
                }
            case 5:
                let sets: [Set<ConntrackState>] = [[.established, .related], [.new], [.invalid], [.new, .established], [.untracked], [.related]]
                matches.append(.conntrackState(r.pick(sets), negated: negated))
            default:
                let type: AddressType = r.chance(90) ? .local : r.pick([.unicast, .broadcast, .multicast])
                matches.append(.addressType(r.chance(80) ? .destination : .source, type, negated: negated))
            }
        }
        return matches
    }

    static func hasPortProtocol(_ matches: [Match]) -> Bool {
        matches.contains { if case .protocol(let t, false) = $0 { t.hasPorts } else { false } }
    }

    static func randomTarget(_ world: World, _ context: Context, _ matches: [Match], _ r: inout Random) -> Target {
        func nat() -> NATDestination {
            let address = IPAddress(r.pick(["172.18.0.2", "172.18.0.3", "10.0.0.2", "10.0.0.1", "8.8.8.8"]))!
            let port: PortRange? = hasPortProtocol(matches) && r.chance(70) ? PortRange(r.pick([80, 22, 8080])) : nil
            return NATDestination(address: address, ports: port)
        }
        let dice = r.below(100)
        switch context {
        case .filterBase, .filterUser:
            switch dice {
            case 0..<24: return .accept
            case 24..<42: return .drop
            case 42..<50: return .reject(with: nil)
            case 50..<54: return .log(prefix: "x", level: nil)
            case 54..<58: return .return
            case 58..<60: return .jump("MISSING")
            case 60..<85: return context == .filterBase ? .jump(r.pick(["U1", "U2"])) : .jump("U2")
            default: return context == .filterBase ? .goto(r.pick(["U1", "U2"])) : (context == .filterUser && dice < 92 ? .goto("U2") : .return)
            }
        case .filterLeaf:
            return r.pick([.accept, .drop, .reject(with: nil), .return, .return, .log(prefix: nil, level: nil)])
        case .natDestination:
            switch dice {
            case 0..<45: return .dnat(nat())
            case 45..<70: return .jump("NATD")
            case 70..<85: return .accept
            default: return .return
            }
        case .natUser:
            return dice < 55 ? .dnat(nat()) : (dice < 80 ? .return : .accept)
        case .natSource:
            switch dice {
            case 0..<40: return .masquerade(ports: nil)
            case 40..<70: return .snat(NATDestination(address: IPAddress(r.pick(["10.0.0.1", "172.18.0.1", "10.0.0.2"]))!))
            case 70..<85: return .accept
            default: return .return
            }
        case .natInput:
            return dice < 70 ? .snat(NATDestination(address: IPAddress(r.pick(["10.0.0.9", "172.18.0.1"]))!)) : .accept
        case .mangle:
            // NAT targets outside nat: DNAT does nothing, MASQUERADE drops (the simulator's reading).
            switch dice {
            case 0..<35: return .accept
            case 35..<60: return .drop
            case 60..<72: return .return
            case 72..<82: return .log(prefix: nil, level: nil)
            case 82..<92: return .dnat(nat())
            default: return .masquerade(ports: nil)
            }
        }
    }

    static func randomRules(_ world: World, _ context: Context, max: Int, _ r: inout Random) -> [Rule] {
        (0..<r.below(max + 1)).map { _ in
            let matches = randomMatches(world, context, &r)
            return Rule(matches, randomTarget(world, context, matches, &r))
        }
    }

    static func context(of chain: String, table: String) -> Context {
        switch (table, chain) {
        case ("filter", "U1"): .filterUser
        case ("filter", "U2"): .filterLeaf
        case ("filter", _): .filterBase
        case ("nat", "NATD"): .natUser
        case ("nat", "POSTROUTING"): .natSource
        case ("nat", "INPUT"): .natInput
        case ("mangle", _): .mangle
        default: .natDestination
        }
    }

    static func randomRuleset(_ world: World, _ r: inout Random) -> Ruleset {
        func base(_ hook: Hook, _ table: String, _ policy: ChainPolicy, max: Int) -> Chain {
            Chain(name: hook.rawValue, kind: .base(hook: hook, priority: XtablesLayout.priority(table: table, hook: hook), policy: policy),
                  rules: randomRules(world, context(of: hook.rawValue, table: table), max: max, &r))
        }
        func policy(_ dropPercent: Int) -> ChainPolicy { r.chance(dropPercent) ? .drop : .accept }
        let filter = Table(family: .ipv4, name: "filter", chains: [
            base(.input, "filter", policy(30), max: 2),
            base(.forward, "filter", policy(60), max: 3),
            base(.output, "filter", policy(15), max: 1),
            Chain(name: "U1", kind: .user, rules: randomRules(world, .filterUser, max: 2, &r)),
            Chain(name: "U2", kind: .user, rules: randomRules(world, .filterLeaf, max: 2, &r)),
        ])
        let nat = Table(family: .ipv4, name: "nat", chains: [
            base(.prerouting, "nat", .accept, max: 2),
            base(.input, "nat", .accept, max: r.chance(20) ? 1 : 0),
            base(.output, "nat", .accept, max: 1),
            base(.postrouting, "nat", .accept, max: 2),
            Chain(name: "NATD", kind: .user, rules: randomRules(world, .natUser, max: 1, &r)),
        ])
        var tables = [filter, nat]
        if r.chance(25) {
            tables.append(Table(family: .ipv4, name: "mangle", chains: [
                base(.prerouting, "mangle", policy(8), max: 1),
                base(.forward, "mangle", policy(8), max: 1),
                base(.postrouting, "mangle", .accept, max: 1),
            ]))
        }
        return Ruleset(tables: tables)
    }

    // MARK: Changes that keep the meaning

    /// Whether no packet can match both rules (a syntactic test: two positive matches on one
    /// field that exclude each other, or a match and its negation).
    static func disjoint(_ a: Rule, _ b: Rule) -> Bool {
        for x in a.matches {
            for y in b.matches {
                switch (x, y) {
                case let (.protocol(p, false), .protocol(q, false)) where p != q: return true
                case let (.inInterface(p, false), .inInterface(q, false)) where !p.isWildcard && !q.isWildcard && p != q: return true
                case let (.outInterface(p, false), .outInterface(q, false)) where !p.isWildcard && !q.isWildcard && p != q: return true
                case let (.address(d, p, false), .address(e, q, false)) where d == e && !p.overlaps(q): return true
                case let (.conntrackState(s, false), .conntrackState(t, false)) where s.isDisjoint(with: t): return true
                default:
                    if negation(of: x) == y { return true }
                }
            }
        }
        return false
    }

    static func negation(of match: Match) -> Match? {
        switch match {
        case let .inInterface(n, negated): .inInterface(n, negated: !negated)
        case let .outInterface(n, negated): .outInterface(n, negated: !negated)
        case let .address(d, p, negated): .address(d, p, negated: !negated)
        case let .protocol(t, negated): .protocol(t, negated: !negated)
        case let .port(d, range, negated): .port(d, range, negated: !negated)
        case let .conntrackState(s, negated): .conntrackState(s, negated: !negated)
        case let .addressType(d, t, negated): .addressType(d, t, negated: !negated)
        case .comment: nil
        }
    }

    /// Whether swapping the two rules cannot change anything when both match: both end the
    /// chain the same observable way, or neither does anything.
    static func sameEffect(_ a: Target, _ b: Target) -> Bool {
        switch (a, b) {
        case (.accept, .accept), (.log, .log): true
        case (.drop, .drop), (.drop, .reject), (.reject, .drop), (.reject, .reject): true
        default: a == b && { if case .dnat = a { true } else if case .snat = a { true } else { false } }()
        }
    }

    /// Targets after which nothing later in the chain runs for the matched packets.
    static func terminal(_ target: Target, table: String) -> Bool {
        switch target {
        case .accept, .drop, .reject, .return, .goto: true
        case .dnat, .snat, .masquerade: table == "nat"
        case .jump, .log, .checksumFill: false
        }
    }

    typealias Chains = [(table: String, chain: String)]
    static let allChains: Chains = [("filter", "INPUT"), ("filter", "FORWARD"), ("filter", "OUTPUT"), ("filter", "U1"), ("filter", "U2"),
                                    ("nat", "PREROUTING"), ("nat", "INPUT"), ("nat", "OUTPUT"), ("nat", "POSTROUTING"), ("nat", "NATD"),
                                    ("mangle", "PREROUTING"), ("mangle", "FORWARD"), ("mangle", "POSTROUTING")]

    static func rules(_ ruleset: Ruleset, _ table: String, _ chain: String) -> [Rule] {
        ruleset.table(.ipv4, table)?.chain(named: chain)?.rules ?? []
    }

    static func edit(_ ruleset: Ruleset, _ table: String, _ chain: String, _ body: (inout [Rule]) -> Void) -> Ruleset {
        VerifierSupport.editing(ruleset, .ipv4, table, chain) { body(&$0.rules) }
    }

    /// One meaning-preserving change, described; nil when the chosen kind does not apply.
    static func equivalentChange(_ a: Ruleset, _ world: World, _ r: inout Random) -> (Ruleset, String)? {
        let (table, chain) = r.pick(allChains)
        let list = rules(a, table, chain)
        switch r.below(9) {
        case 0:  // swap two neighbours that cannot both match, or that do the same
            let candidates = list.indices.dropLast().filter { i in
                disjoint(list[i], list[i + 1]) || sameEffect(list[i].target, list[i + 1].target)
            }
            guard let i = candidates.randomElement(using: &r) else { return nil }
            return (edit(a, table, chain) { $0.swapAt(i, i + 1) }, "swap disjoint \(table) \(chain) #\(i + 1) and #\(i + 2)")
        case 1:  // a dead rule: after a terminal rule, with that rule's matches and more
            let candidates = list.indices.filter { terminal(list[$0].target, table: table) }
            guard let i = candidates.randomElement(using: &r) else { return nil }
            let extra = randomMatches(world, context(of: chain, table: table), &r).filter { if case .port = $0 { false } else { true } }
            let dead = Rule(list[i].matches + extra, randomTarget(world, context(of: chain, table: table), list[i].matches + extra, &r))
            let at = Int.random(in: (i + 1)...list.count, using: &r)
            return (edit(a, table, chain) { $0.insert(dead, at: at) }, "dead rule at \(table) \(chain) #\(at + 1), shadowed by #\(i + 1)")
        case 2:  // inline a user chain called by a jump, when it has no RETURN and no goto
            let calls = list.indices.filter { if case .jump(let u) = list[$0].target { u != "MISSING" } else { false } }
            guard let i = calls.randomElement(using: &r), case .jump(let user) = list[i].target else { return nil }
            var body = rules(a, table, user)
            // A final unconditional RETURN is the same as falling off the end.
            if let last = body.last, last.matches.isEmpty, last.target == .return { body.removeLast() }
            guard !body.contains(where: { if case .goto = $0.target { true } else { $0.target == .return } }) else { return nil }
            let outer = list[i].matches
            // A port match of the body needs a port protocol; the caller's protocol serves.
            let inlined = body.map { Rule(outer + $0.matches, $0.target) }
            return (edit(a, table, chain) { $0.replaceSubrange(i...i, with: inlined) }, "inline \(user) into \(table) \(chain) #\(i + 1)")
        case 3:  // split a rule on a match: (M, m) and (M, !m), same target
            guard let i = list.indices.randomElement(using: &r) else { return nil }
            let m = randomMatches(world, context(of: chain, table: table), &r).first { if case .port = $0 { false } else { true } }
            guard let m, let n = negation(of: m) else { return nil }
            let rule = list[i]
            return (edit(a, table, chain) { $0.replaceSubrange(i...i, with: [Rule(rule.matches + [m], rule.target), Rule(rule.matches + [n], rule.target)]) },
                    "split \(table) \(chain) #\(i + 1) on \(m)")
        case 4:  // rename a user chain
            let (t, old, new) = r.pick([("filter", "U2", "U9"), ("filter", "U1", "U8"), ("nat", "NATD", "NATX")])
            var copy = a
            copy.modifyTable(.ipv4, t) { table in
                var chains = table.chains
                for index in chains.indices {
                    if chains[index].name == old { chains[index].name = new }
                    chains[index].rules = chains[index].rules.map { rule in
                        var rule = rule
                        if rule.target == .jump(old) { rule.target = .jump(new) }
                        if rule.target == .goto(old) { rule.target = .goto(new) }
                        return rule
                    }
                }
                table = Table(family: table.family, name: table.name, chains: chains)
            }
            return (copy, "rename \(t) \(old) to \(new)")
        case 5:  // DROP policy ⇒ ACCEPT policy and a final DROP rule, when nothing returns to the policy
            guard table == "filter", ["INPUT", "FORWARD", "OUTPUT"].contains(chain),
                  let base = a.table(.ipv4, "filter")?.chain(named: chain), base.policy == .drop,
                  !list.contains(where: { if case .goto = $0.target { true } else { $0.target == .return } }) else { return nil }
            let copy = VerifierSupport.editing(a, .ipv4, "filter", chain) { c in
                c.kind = .base(hook: c.hook!, priority: 0, policy: .accept)
                c.rules.append(Rule([], .drop))
            }
            return (copy, "filter \(chain): policy DROP as a final DROP rule")
        case 6:  // REJECT for DROP (both drop the packet)
            let candidates = list.indices.filter { list[$0].target == .drop || list[$0].target == .reject(with: nil) }
            guard let i = candidates.randomElement(using: &r) else { return nil }
            return (edit(a, table, chain) { $0[i].target = $0[i].target == .drop ? .reject(with: nil) : .drop }, "REJECT/DROP at \(table) \(chain) #\(i + 1)")
        case 7:  // a LOG rule anywhere
            let at = Int.random(in: 0...list.count, using: &r)
            return (edit(a, table, chain) { $0.insert(Rule(randomMatches(world, context(of: chain, table: table), &r), .log(prefix: "weir", level: 4)), at: at) },
                    "LOG at \(table) \(chain) #\(at + 1)")
        default:  // no change at all
            return (a, "identical")
        }
    }

    // MARK: Small mutations

    static func mutation(_ a: Ruleset, _ world: World, _ r: inout Random) -> (Ruleset, String)? {
        let (table, chain) = r.pick(allChains)
        let list = rules(a, table, chain)
        let context = context(of: chain, table: table)
        switch r.below(8) {
        case 0:
            guard let i = list.indices.randomElement(using: &r) else { return nil }
            return (edit(a, table, chain) { $0.remove(at: i) }, "delete \(table) \(chain) #\(i + 1)")
        case 1:
            guard list.count >= 2 else { return nil }
            let i = r.below(list.count - 1)
            return (edit(a, table, chain) { $0.swapAt(i, i + 1) }, "swap \(table) \(chain) #\(i + 1) and #\(i + 2)")
        case 2:  // change one match's value
            guard let i = list.indices.randomElement(using: &r), let j = list[i].matches.indices.randomElement(using: &r) else { return nil }
            var matches = list[i].matches
            switch matches[j] {
            case let .address(d, p, n):
                matches[j] = r.chance(30) ? .address(d, Prefix(address: p.address, length: r.pick([8, 16, 24, 32])).canonical, negated: n)
                    : .address(d, world.address(&r), negated: n)
            case let .inInterface(_, n): matches[j] = .inInterface(world.interface(&r), negated: n)
            case let .outInterface(_, n): matches[j] = .outInterface(world.interface(&r), negated: n)
            case let .port(d, range, n): matches[j] = .port(d, PortRange(r.pick((world.ports + [81]).filter { $0 != range.first })), negated: n)
            case let .protocol(t, n):
                // Keep a port protocol where ports are matched.
                matches[j] = .protocol(t == .tcp ? .udp : (t == .udp ? .tcp : .tcp), negated: n)
            case let .conntrackState(_, n): matches[j] = .conntrackState(r.pick([[.new], [.established], [.established, .related], [.invalid]]), negated: n)
            case let .addressType(d, t, n): matches[j] = .addressType(d == .source ? .destination : .source, t, negated: n)
            case .comment: return nil
            }
            return (edit(a, table, chain) { $0[i] = Rule(matches, $0[i].target) }, "change \(list[i].matches[j]) to \(matches[j]) in \(table) \(chain) #\(i + 1)")
        case 3:  // flip a negation
            guard let i = list.indices.randomElement(using: &r), let j = list[i].matches.indices.randomElement(using: &r),
                  let n = negation(of: list[i].matches[j]) else { return nil }
            var matches = list[i].matches
            matches[j] = n
            return (edit(a, table, chain) { $0[i] = Rule(matches, $0[i].target) }, "negate \(list[i].matches[j]) in \(table) \(chain) #\(i + 1)")
        case 4:  // change a target
            guard let i = list.indices.randomElement(using: &r) else { return nil }
            let target = randomTarget(world, context, list[i].matches, &r)
            return (edit(a, table, chain) { $0[i].target = target }, "target of \(table) \(chain) #\(i + 1) to \(target)")
        case 5:  // flip a filter policy
            guard table == "filter", let base = a.table(.ipv4, "filter")?.chain(named: chain), let policy = base.policy else { return nil }
            let copy = VerifierSupport.editing(a, .ipv4, "filter", chain) { c in
                c.kind = .base(hook: c.hook!, priority: 0, policy: policy == .drop ? .accept : .drop)
            }
            return (copy, "flip filter \(chain) policy")
        case 6:  // insert a random rule
            let matches = randomMatches(world, context, &r)
            let at = Int.random(in: 0...list.count, using: &r)
            return (edit(a, table, chain) { $0.insert(Rule(matches, randomTarget(world, context, matches, &r)), at: at) }, "insert at \(table) \(chain) #\(at + 1)")
        default:  // change a NAT target's address or port
            let candidates = list.indices.filter { if case .dnat = list[$0].target { true } else if case .snat = list[$0].target { true } else { false } }
            guard let i = candidates.randomElement(using: &r) else { return nil }
            var target = list[i].target
            switch target {
            case .dnat(var to):
                if to.ports != nil, r.chance(50) { to.ports = PortRange(to.ports!.first == 80 ? 81 : 80) } else { to.address = IPAddress(r.pick(["172.18.0.2", "172.18.0.3", "8.8.8.8"]))! }
                target = .dnat(to)
            case .snat(var to):
                to.address = IPAddress(r.pick(["10.0.0.1", "10.0.0.2", "172.18.0.1"]))!
                target = .snat(to)
            default: return nil
            }
            return (edit(a, table, chain) { $0[i].target = target }, "NAT target of \(table) \(chain) #\(i + 1) to \(target)")
        }
    }

    // MARK: Exhaustive simulation

    /// The representatives of every class of a small domain (see the suite's comment).
    struct ExhaustiveDomain {
        var origins: [Origin] = []
        var sources: [IPAddress] = []
        var destinations: [IPAddress] = []
        var sourcePorts: [UInt16] = []
        var destinationPorts: [UInt16] = []
        var transports: [TransportProtocol] = [.tcp, .udp, .icmp, TransportProtocol(number: 47)]
        var states: [ConntrackState] = []

        var count: Int {
            let ported = transports.filter(\.hasPorts).count
            let perPair = ported * sourcePorts.count * destinationPorts.count + transports.count - ported
            return origins.count * sources.count * destinations.count * perPair * states.count
        }

        /// One value per class of the sets: candidates at each set's ends and just outside,
        /// grouped by which sets contain them (the first candidate of a group stands for it).
        static func representatives(_ sets: [ClosedRange<UInt128>], universe: ClosedRange<UInt128>) -> [UInt128] {
            var candidates: [UInt128] = []
            for s in sets where s.upperBound < universe.upperBound { candidates.append(s.upperBound + 1) }
            for s in sets where s.lowerBound > universe.lowerBound { candidates.append(s.lowerBound - 1) }
            for s in sets { candidates += [s.lowerBound, s.upperBound] }
            candidates += [universe.lowerBound, universe.upperBound]
            var seen = Set<[Bool]>()
            var out: [UInt128] = []
            for c in candidates where universe.contains(c) {
                if seen.insert(sets.map { $0.contains(c) }).inserted { out.append(c) }
            }
            return out
        }

        init(_ rulesets: [Ruleset], host: HostModel) {
            func interval(_ p: Prefix) -> ClosedRange<UInt128> { p.network.bits...p.last.bits }
            func single(_ a: IPAddress) -> ClosedRange<UInt128> { a.bits...a.bits }
            var sourceSets: [ClosedRange<UInt128>] = [], destinationSets: [ClosedRange<UInt128>] = []
            var sourcePortSets: [ClosedRange<UInt128>] = [], destinationPortSets: [ClosedRange<UInt128>] = []
            var names = Set<String>(), wildcards = Set<String>()
            var stateSets: [Set<ConntrackState>] = []
            var portsWithoutPortProtocol = false
            var typedDirections = Set<Direction>()
            var otherTypes = false
            var masquerade = false
            for ruleset in rulesets {
                for table in ruleset.tables where table.family == .ipv4 {
                    for chain in table.chains {
                        for rule in chain.rules {
                            if rule.matches.contains(where: { if case .port = $0 { true } else { false } }) && !hasPortProtocol(rule.matches) {
                                portsWithoutPortProtocol = true
                            }
                            for match in rule.matches {
                                switch match {
                                case let .address(d, p, _): d == .source ? sourceSets.append(interval(p)) : destinationSets.append(interval(p))
                                case let .port(d, range, _):
                                    let set = UInt128(range.first)...UInt128(range.last)
                                    d == .source ? sourcePortSets.append(set) : destinationPortSets.append(set)
                                case let .inInterface(n, _), let .outInterface(n, _):
                                    if n.isWildcard { wildcards.insert(n.name) } else { names.insert(n.name) }
                                case let .conntrackState(set, _): stateSets.append(set)
                                case let .addressType(d, t, _):
                                    typedDirections.insert(d)
                                    if t != .local { otherTypes = true }
                                default: break
                                }
                            }
                            switch rule.target {
                            case .dnat(let to):
                                destinationSets.append(single(to.address))
                                if let p = to.ports { destinationPortSets.append(UInt128(p.first)...UInt128(p.first)) }
                            case .snat(let to):
                                sourceSets.append(single(to.address))
                                if let p = to.ports { sourcePortSets.append(UInt128(p.first)...UInt128(p.first)) }
                            case .masquerade: masquerade = true
                            default: break
                            }
                        }
                    }
                }
            }
            // Routing and locality: connected prefixes, routes, the host's addresses, 127/8.
            // (Loopback's own 127.0.0.1 is no different from the rest of 127/8: all of it is local.)
            let loopback = Prefix("127.0.0.0/8")!
            var local: [ClosedRange<UInt128>] = [interval(loopback)]
            for i in host.interfaces {
                for p in i.addresses where p.family == .ipv4 {
                    destinationSets.append(interval(p.canonical))
                    if !loopback.contains(p.address) { local.append(single(p.address)) }
                }
            }
            for route in host.extraRoutes where route.destination.family == .ipv4 { destinationSets.append(interval(route.destination)) }
            destinationSets += local
            if typedDirections.contains(.source) { sourceSets += local }
            if otherTypes {
                var typed = [single(IPAddress("0.0.0.0")!), interval(Prefix("224.0.0.0/4")!), single(IPAddress("255.255.255.255")!)]
                for i in host.interfaces { for p in i.addresses where p.family == .ipv4 && p.length < 31 { typed.append(single(p.last)) } }
                for d in typedDirections { d == .source ? (sourceSets += typed) : (destinationSets += typed) }
            }
            // MASQUERADE writes an interface's first address (loopback: the first other one).
            if masquerade { sourceSets += local.dropFirst() }
            let addresses: ClosedRange<UInt128> = 0...UInt128(UInt32.max)
            sources = Self.representatives(sourceSets, universe: addresses).map { .v4(UInt32($0)) }
            destinations = Self.representatives(destinationSets, universe: addresses).map { .v4(UInt32($0)) }
            sourcePorts = Self.representatives(sourcePortSets, universe: 0...65535).map { UInt16($0) }
            destinationPorts = Self.representatives(destinationPortSets, universe: 0...65535).map { UInt16($0) }
            // A port match under `! -p tcp` (a mutant's) also holds for SCTP, which has ports.
            if portsWithoutPortProtocol { transports.append(.sctp) }
            // States: the simulator reads a state only in conntrack matches and to run nat
            // chains for NEW alone, and never writes one; so one state per group that every
            // set and "is NEW" hold or miss alike (all five when the rules tell them apart).
            var seenStates = Set<[Bool]>()
            states = [ConntrackState.new, .established, .related, .invalid, .untracked].filter { state in
                seenStates.insert([state == .new] + stateSets.map { $0.contains(state) }).inserted
            }
            // Origins: every host interface, one name nothing mentions, a local process, and
            // the names that rules can tell from those: each exact name a rule mentions, and
            // one per wildcard prefix that no rule lists (`~` is in no name). The simulator
            // reads an in interface only in matches and in the bridge test, so an extra name
            // that matches the same patterns as a non-bridge name already there adds nothing.
            let patterns = names.map { InterfaceName($0) } + wildcards.map { InterfaceName($0, wildcard: true) }
            func signature(_ name: String) -> [Bool] { patterns.map { $0.isWildcard ? name.hasPrefix($0.name) : name == $0.name } }
            var originNames = host.interfaces.map(\.name) + ["zz~9"]
            var seenNames = Set(host.interfaces.filter { !$0.isBridge }.map { signature($0.name) } + [signature("zz~9")])
            for extra in names.sorted() + wildcards.sorted().map({ $0 + "~9" }) where !originNames.contains(extra) {
                if seenNames.insert(signature(extra)).inserted { originNames.append(extra) }
            }
            origins = originNames.map { Origin.interface($0) } + [.local]
        }

        /// Every packet of the domain, in a fixed order.
        func forEach(_ body: (Packet, Origin) -> Bool) {
            for origin in origins {
                for source in sources {
                    for destination in destinations {
                        for transport in transports {
                            let sports = transport.hasPorts ? sourcePorts : [0]
                            let dports = transport.hasPorts ? destinationPorts : [0]
                            for sport in sports {
                                for dport in dports {
                                    for state in states {
                                        let packet = Packet(source: source, destination: destination, transport: transport,
                                                            sourcePort: sport, destinationPort: dport, state: state)
                                        if !body(packet, origin) { return }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    struct BruteForce {
        var difference: Counterexample?
        var packets: Int
    }

    /// Simulates every packet of the domain through both rulesets; stops at the first difference.
    static func bruteForce(_ left: Ruleset, _ right: Ruleset, host: HostModel) -> BruteForce {
        let domain = ExhaustiveDomain([left, right], host: host)
        let l = Simulator(ruleset: left, host: host), r = Simulator(ruleset: right, host: host)
        var found: Counterexample? = nil
        var packets = 0
        domain.forEach { packet, origin in
            packets += 1
            let a = VerifierSupport.observable(l, packet, origin), b = VerifierSupport.observable(r, packet, origin)
            if a != b { found = Counterexample(packet: packet, origin: origin, left: a, right: b); return false }
            return true
        }
        return BruteForce(difference: found, packets: packets)
    }

    // MARK: The test

    struct Pair: Sendable {
        var index: Int
        var left: Ruleset
        var right: Ruleset
        var host: HostModel
        var change: String
        var equivalentByConstruction: Bool
    }

    static func pairs(count: Int) -> [Pair] {
        (0..<count).map { index in
            var r = Random.stream(VerifierSupport.seed, 0xB2, index)
            let world = World.random(&r)
            let a = randomRuleset(world, &r)
            if r.chance(35) {
                var b = a, changes: [String] = []
                for _ in 0..<(1 + r.below(2)) {
                    for _ in 0..<8 { if let (next, what) = equivalentChange(b, world, &r) { b = next; changes.append(what); break } }
                }
                return Pair(index: index, left: a, right: b, host: world.host, change: changes.joined(separator: "; "), equivalentByConstruction: true)
            }
            // One small mutation, sometimes two.
            var b = a, changes: [String] = []
            for _ in 0..<(r.chance(60) ? 1 : 2) {
                for _ in 0..<16 {
                    if let (next, what) = mutation(b, world, &r), next != b, !VerifierSupport.hasLoop(next) { b = next; changes.append(what); break }
                }
            }
            return Pair(index: index, left: a, right: b, host: world.host, change: changes.joined(separator: "; "), equivalentByConstruction: changes.isEmpty)
        }
    }

    /// What is wrong with the verifier's answer on a pair (nil: nothing).
    static func problem(_ pair: Pair, _ answer: EquivalenceResult, _ brute: BruteForce) -> String? {
        var problems: [String] = []
        if let c = answer.counterexample {
            if let refuted = VerifierSupport.refutation(of: c, left: pair.left, right: pair.right, host: pair.host) { problems.append(refuted) }
            if brute.difference == nil {
                problems.append("the verifier found \(c), but no packet of the domain differs (\(brute.packets) packets): the domain is not exhaustive")
            }
        } else if let d = brute.difference {
            problems.append("the verifier says equivalent; brute force: \(d)")
        }
        if pair.equivalentByConstruction, let d = brute.difference {
            problems.append("equivalent by construction (\(pair.change)), but brute force finds \(d): the test's construction is wrong")
        }
        return problems.isEmpty ? nil : problems.joined(separator: "\n")
    }

    /// Rules taken out of the pair while the verifier still disagrees with brute force: a
    /// small pair to report.
    static func minimized(_ pair: Pair) -> Pair {
        func fails(_ p: Pair) -> Bool { problem(p, VerifierSupport.check(p.left, p.right, host: p.host, "minimizing pair #\(p.index)"), bruteForce(p.left, p.right, host: p.host)) != nil }
        var current = pair
        current.equivalentByConstruction = false
        var progress = true
        while progress {
            progress = false
            for side in 0..<3 {
                let source = side == 1 ? current.right : current.left
                for place in VerifierSupport.places(source).reversed() {
                    var candidate = current
                    func drop(_ ruleset: Ruleset) -> Ruleset {
                        VerifierSupport.editing(ruleset, place.family, place.table, place.chain) { c in
                            if c.rules.indices.contains(place.index) { c.rules.remove(at: place.index) }
                        }
                    }
                    if side != 1 { candidate.left = drop(candidate.left) }
                    if side != 0 { candidate.right = drop(candidate.right) }
                    if fails(candidate) { current = candidate; progress = true }
                }
            }
        }
        return current
    }

    final class Results: @unchecked Sendable {
        let lock = NSLock()
        var verifierSeconds = 0.0, bruteSeconds = 0.0, packets = 0
        var equivalent = 0, different = 0, constructed = 0, classes = 0
        var failures: [(Int, String)] = []
        func add(_ body: (Results) -> Void) { lock.lock(); body(self); lock.unlock() }
    }

    @Test("the verifier agrees with exhaustive simulation on ≥ 1,000 random pairs")
    func agreesWithBruteForce() {
        let count = Self.pairCount
        print("VerifierBruteForceTests: \(VerifierSupport.seedLine), \(count) pairs")
        let pairs = Self.pairs(count: count)
        let results = Results()
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: ProcessInfo.processInfo.activeProcessorCount) { worker in
            let workers = ProcessInfo.processInfo.activeProcessorCount
            for pair in pairs where pair.index % workers == worker {
                let t0 = ContinuousClock.now
                let answer = VerifierSupport.check(pair.left, pair.right, host: pair.host, "pair #\(pair.index) (\(pair.change))")
                let t1 = ContinuousClock.now
                let brute = Self.bruteForce(pair.left, pair.right, host: pair.host)
                let t2 = ContinuousClock.now
                let problem = Self.problem(pair, answer, brute)
                if VerifierMutationTests.verbose {
                    print("  pair #\(pair.index): \(pair.equivalentByConstruction ? "built equivalent" : "mutated"), brute force "
                          + "\(brute.difference == nil ? "equivalent" : "different") (\(brute.packets) packets), verifier "
                          + String(format: "%.1f ms", Self.seconds(t1 - t0) * 1000) + ": \(pair.change)")
                }
                results.add { r in
                    r.verifierSeconds += Self.seconds(t1 - t0)
                    r.bruteSeconds += Self.seconds(t2 - t1)
                    r.packets += brute.packets
                    r.classes += answer.classes
                    if brute.difference == nil { r.equivalent += 1 } else { r.different += 1 }
                    if pair.equivalentByConstruction { r.constructed += 1 }
                    if let problem { r.failures.append((pair.index, problem)) }
                }
            }
        }
        let wall = Self.seconds(ContinuousClock.now - start)
        print(String(format: "VerifierBruteForceTests: %d pairs (%d built equivalent); brute force: %d equivalent, %d different; "
                     + "verifier %.2f s (%.1f ms/pair, %d classes), brute force %.2f s for %d packet pairs (%.2f µs/packet pair); wall %.2f s",
                     count, results.constructed, results.equivalent, results.different, results.verifierSeconds,
                     1000 * results.verifierSeconds / Double(count), results.classes, results.bruteSeconds, results.packets,
                     1e6 * results.bruteSeconds / Double(max(results.packets, 1)), wall))
        // More than one in five of each answer, so both sides of the check are exercised.
        #expect(results.equivalent > count / 5 && results.different > count / 5, "a lopsided mix: \(results.equivalent) equivalent, \(results.different) different")
        for (n, (index, problem)) in results.failures.sorted(by: { $0.0 < $1.0 }).enumerated() {
            let pair = pairs[index]
            var message = "pair #\(index) (\(VerifierSupport.seedLine)), change: \(pair.change)\nhost: \(VerifierSupport.describe(pair.host))\n\(problem)"
            if n < 3 {
                let small = Self.minimized(pair)
                let again = Self.problem(small, VerifierSupport.check(small.left, small.right, host: small.host, "minimized pair #\(index)"), Self.bruteForce(small.left, small.right, host: small.host))
                message += "\nminimized (\(again ?? "?")):\n--- left\n\(VerifierSupport.text(small.left))--- right\n\(VerifierSupport.text(small.right))"
            } else {
                message += "\n--- left\n\(VerifierSupport.text(pair.left))--- right\n\(VerifierSupport.text(pair.right))"
            }
            Issue.record("\(message)")
            if n >= 9 { Issue.record("… and \(results.failures.count - 10) more failing pairs"); break }
        }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
