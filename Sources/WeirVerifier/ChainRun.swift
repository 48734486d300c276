import WeirModel
import WeirSimulator

/// A chain's rules bucketed by what decides them on a path: a positive exact out interface
/// (fixed on every path that runs a chain after routing), else a positive exact destination
/// address, filed under the interface the host routes it to (a path whose current
/// destinations all route elsewhere cannot match it). A path then looks only at the rules that
/// can match it, in rule order — Docker's per-port rules would otherwise be tried on every
/// path.
struct ChainIndex {
    var byOutput: [Int: [Int]] = [:]
    var byRoute: [Int: [Int]] = [:]
    var destinationKeyed: [Int] = []
    var unkeyed: [Int] = []

    /// False on every possible host, where a destination's route is a choice.
    let routesKnown: Bool

    init(_ chain: Chain, traversal: SymbolicTraversal) {
        let space = traversal.space
        routesKnown = traversal.host != nil
        for (index, rule) in chain.rules.enumerated() {
            var output: Int?
            var destination: IPAddress?
            for match in rule.matches {
                switch match {
                case let .outInterface(name, false) where !name.isWildcard && output == nil:
                    output = space.interfaceClass(name.name)
                case let .address(.destination, prefix, false) where prefix.length == prefix.family.bitWidth && destination == nil:
                    destination = prefix.address
                default:
                    break
                }
            }
            if let output {
                byOutput[output, default: []].append(index)
            } else if let destination {
                // An address of the other family matches no packet: filed under no route at all.
                if let route = destination.family == space.family ? traversal.routeClass(destination) : -2 {
                    byRoute[route, default: []].append(index)
                }
                destinationKeyed.append(index)
            } else {
                unkeyed.append(index)
            }
        }
    }

    /// The rules that can match on a path with out interface `output` whose current
    /// destinations route to `route` (nil: not known), in order.
    func candidates(output: Int, route: Int?) -> [Int] {
        let keyed = routesKnown ? route.map { byRoute[$0] ?? [] } ?? destinationKeyed : destinationKeyed
        return Self.merge(Self.merge(unkeyed, byOutput[output] ?? []), keyed)
    }

    static func merge(_ a: [Int], _ b: [Int]) -> [Int] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [Int] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] < b[j]) { out.append(a[i]); i += 1 } else { out.append(b[j]); j += 1 }
        }
        return out
    }
}

/// A run of a chain's rules that act alike (`ChainRun.blocks`): the union of their matches on a
/// path, named by its first rule; a block of one rule has its exact values, if any.
struct Block {
    var rule: Int
    var set: BDDManager.Node
    var key: ExactKey?
}

/// The values a rule's positive matches fix exactly — protocol, addresses of full length,
/// single ports — on the fields it fixes. Matches read the current header, which has one value
/// per field, so two rules that fix the same fields to different values match no packet in
/// common.
struct ExactKey {
    struct Fields: OptionSet, Hashable {
        let rawValue: UInt8
        static let transportProtocol = Fields(rawValue: 1)
        static let source = Fields(rawValue: 2)
        static let destination = Fields(rawValue: 4)
        static let sourcePort = Fields(rawValue: 8)
        static let destinationPort = Fields(rawValue: 16)
    }

    let fields: Fields
    /// The fixed values, in the order of `Fields`' bits.
    let values: [UInt128]

    init?(_ rule: Rule) {
        var found: [(Fields, UInt128)] = []
        for match in rule.matches {
            switch match {
            case let .protocol(transport, false):
                found.append((.transportProtocol, UInt128(transport.number)))
            case let .address(direction, prefix, false) where prefix.length == prefix.family.bitWidth:
                found.append((direction == .source ? .source : .destination, prefix.address.bits))
            case let .port(direction, range, false) where range.first == range.last:
                found.append((direction == .source ? .sourcePort : .destinationPort, UInt128(range.first)))
            default:
                continue
            }
        }
        // A field fixed twice (to equal or different values) is left to the BDDs.
        let fields = found.reduce(Fields()) { $0.union($1.0) }
        guard !found.isEmpty, fields.rawValue.nonzeroBitCount == found.count else { return nil }
        self.fields = fields
        values = found.sorted { $0.0.rawValue < $1.0.rawValue }.map(\.1)
    }
}

/// What a base chain decides for a class of packets.
enum ChainVerdict: Equatable {
    /// Accepted, by a rule or the policy: the packet goes on to the next base chain or hook.
    case accept
    /// Dropped or rejected (where is not observable; the simulator's trace tells).
    case drop
    /// Accepted by SNAT or MASQUERADE (nat tables only), with the packets already rewritten.
    case translated
    /// Accepted by DNAT (nat tables only), with the packets already rewritten; their new
    /// destinations route to the interface class `route` (nil: not known).
    case destinationTranslated(route: Int?)
}

/// One base chain run on one path, with the simulator's semantics (`Simulator.run`): rules in
/// order, jumps to depth `tableChainCount` (deeper drops, like a loop), gotos in place,
/// RETURN, policies; NAT targets end the base chain in the nat table and do nothing elsewhere,
/// except MASQUERADE, which drops outside nat.
struct ChainRun {
    let traversal: SymbolicTraversal
    let table: Table
    let path: SymbolicTraversal.Path
    /// Gotos followed on one path before it counts as a loop (and drops).
    static let gotoLimit = 64

    /// What a batch of a run's DNATs shares: the route of their new destinations and whether
    /// they write the port too (the same fields, which `SymbolicTraversal.rewrite` needs).
    struct DNATBatch: Hashable {
        var route: Int?
        var writesPort: Bool
    }

    var manager: BDDManager { traversal.manager }

    func run(_ base: Chain) -> [(BDDManager.Node, ChainVerdict)] {
        var finished: [(BDDManager.Node, ChainVerdict)] = []
        let back = evaluate(base, path.packets, depth: 0, gotos: 0, into: &finished)
        if !back.isFalse { finished.append((back, policy(base))) }
        return finished.filter { !$0.0.isFalse }
    }

    /// What a target does to the packets its rule matches, as far as the rules after it see.
    enum Effect {
        /// Nothing: they go on to the next rule (LOG, CHECKSUM, DNAT/SNAT outside nat).
        case none
        /// They leave the chain, whichever rule of a block with this target matched them.
        case ends
        /// They jump or go to a chain (what comes back depends on the rule's position).
        case calls
    }

    static func rewrites(_ target: Target) -> Bool {
        switch target {
        case .dnat, .snat, .masquerade: true
        default: false
        }
    }

    static func effect(of target: Target, in table: Table) -> Effect {
        switch target {
        case .accept, .drop, .reject, .return, .masquerade: .ends
        case .dnat, .snat: table.name == "nat" ? .ends : .none
        case .log, .checksumFill: .none
        case .jump(let name), .goto(let name): table.chain(named: name) == nil ? .none : .calls
        }
    }

    func policy(_ base: Chain) -> ChainVerdict {
        base.policy == .drop ? .drop : .accept
    }

    /// Runs `chain`; ended classes go to `finished`, and the packets that fall off its end or
    /// return are returned (at depth 0 the base chain's policy then applies).
    ///
    /// Rules are taken in runs of pairwise disjoint blocks (`blocks`): no packet matches two
    /// blocks of a run, so each block takes its packets from what reaches the run (the blocks
    /// with one target together), and the run is carved out of the rest once — one DNAT per
    /// published port is then one pass, not one subtraction per port from an ever more carved
    /// set, and Docker's per-bridge isolation jumps are one jump.
    func evaluate(_ chain: Chain, _ packets: BDDManager.Node, depth: Int, gotos: Int,
                  into finished: inout [(BDDManager.Node, ChainVerdict)]) -> BDDManager.Node {
        let m = manager
        var remaining = packets
        var returning = BDDManager.Node.false
        let blocks = self.blocks(of: chain)
        var start = 0
        while start < blocks.count, !remaining.isFalse {
            let (end, covered) = run(from: start, of: blocks)
            let reaching = remaining
            remaining = m.minus(remaining, covered)
            let run = blocks[start..<end]
            if run.contains(where: { Self.effect(of: chain.rules[$0.rule].target, in: table) == .calls }) {
                settle(run, of: chain, reaching, depth: depth, gotos: gotos, finished: &finished, remaining: &remaining, returning: &returning)
            } else {
                let effect = effectOfRun(run, of: chain, reaching)
                finished += effect.finished
                returning = m.or(returning, effect.returning)
            }
            start = end
        }
        return m.or(returning, remaining)
    }

    /// The run of pairwise disjoint blocks from `start`: where it ends, and the union of its
    /// sets. Blocks of one rule whose exact values (`ExactKey`) on the same fields differ are
    /// disjoint without a BDD operation, so a run of per-port rules is found whatever their
    /// order, and its union is made once at the end (the other side of a check then gets the
    /// same node); a block without such a key is checked against the union so far.
    func run(from start: Int, of blocks: [Block]) -> (end: Int, covered: BDDManager.Node) {
        let m = manager
        var end = start + 1
        var keyed: (fields: ExactKey.Fields, values: Set<[UInt128]>)? = blocks[start].key.map { ($0.fields, [$0.values]) }
        var covered: BDDManager.Node?  // the union so far, once a block is checked by BDD
        while end < blocks.count {
            let block = blocks[end]
            if covered == nil, let key = block.key, key.fields == keyed?.fields, keyed?.values.insert(key.values).inserted == true {
                end += 1
                continue
            }
            let soFar = covered ?? manager.or(blocks[start..<end].map(\.set))
            guard m.and(soFar, block.set).isFalse else {
                covered = soFar
                break
            }
            covered = m.or(soFar, block.set)
            end += 1
        }
        return (end, covered ?? manager.or(blocks[start..<end].map(\.set)))
    }

    /// What a run that calls no chain does to the packets reaching it: the classes it ends and
    /// the packets it returns. It depends only on which blocks (set and target) the run has,
    /// not on their order — they are disjoint —, so it is computed once for runs with the same
    /// blocks and reaching packets: the other side of a check lists the same per-port rules in
    /// another order (an nft map's elements in key order).
    func effectOfRun(_ run: ArraySlice<Block>, of chain: Chain, _ reaching: BDDManager.Node) -> SymbolicCache.RunEffect {
        let key = SymbolicCache.RunKey(table: table.name, output: path.output, reaching: reaching,
                                       blocks: Set(run.map { SymbolicCache.RunKey.Member(set: $0.set, target: chain.rules[$0.rule].target) }))
        if let known = traversal.cache.runs[key] { return known }
        var finished: [(BDDManager.Node, ChainVerdict)] = []
        var remaining = BDDManager.Node.false, returning = BDDManager.Node.false
        settle(run, of: chain, reaching, depth: 0, gotos: 0, finished: &finished, remaining: &remaining, returning: &returning)
        let effect = SymbolicCache.RunEffect(finished: finished, returning: returning)
        traversal.cache.runs[key] = effect
        return effect
    }

    /// The blocks of one run on the packets reaching it: what they end goes to `finished`, what
    /// returns to `returning`, and what comes back from a jump to `remaining` (it goes on after
    /// the run: it matches no later block of it).
    func settle(_ run: ArraySlice<Block>, of chain: Chain, _ reaching: BDDManager.Node, depth: Int, gotos: Int,
                finished: inout [(BDDManager.Node, ChainVerdict)], remaining: inout BDDManager.Node, returning: inout BDDManager.Node) {
        let m = manager
        // Disjoint blocks with the same target act as one: a jump's returning packets, too,
        // match no other block of the run.
        var groups: [(rule: Int, sets: [BDDManager.Node])] = []
        var byTarget: [Target: Int] = [:]
        for block in run {
            let target = chain.rules[block.rule].target
            if let g = byTarget[target] {
                groups[g].sets.append(block.set)
            } else {
                byTarget[target] = groups.count
                groups.append((block.rule, [block.set]))
            }
        }
        // The run's DNATs, batched by what their new destinations route to and the fields
        // they write: each batch is rewritten in one pass (`destinationTranslated`).
        var batches: [DNATBatch: [(set: BDDManager.Node, to: NATDestination)]] = [:]
        var batchOrder: [DNATBatch] = []
        for group in groups {
            let set = manager.or(group.sets)
            let rule = chain.rules[group.rule]
            if table.name == "nat", case .dnat(let to) = rule.target {
                let batch = DNATBatch(route: traversal.routeClass(to.address), writesPort: to.ports != nil)
                if batches[batch] == nil { batchOrder.append(batch) }
                batches[batch, default: []].append((set, to))
                continue
            }
            if table.name == "nat", Self.rewrites(rule.target) {
                if let rewritten = traversal.translated(reaching, set, by: rule.target, on: path) {
                    if !rewritten.isFalse { finished.append((rewritten, .translated)) }
                } else {
                    finished.append((m.and(reaching, set), .drop))
                }
                continue
            }
            let matched = m.and(reaching, set)
            if matched.isFalse { continue }
            switch rule.target {
            case .accept:
                finished.append((matched, .accept))
            case .drop, .reject:
                finished.append((matched, .drop))
            case .return:
                returning = m.or(returning, matched)
            case .jump(let name):
                guard let target = table.chain(named: name) else { continue }  // no effect: not in a block
                guard depth < table.chains.count else {
                    finished.append((matched, .drop))
                    continue
                }
                // What comes back goes on after the run: it matches no later block of it.
                let back = evaluate(target, matched, depth: depth + 1, gotos: gotos, into: &finished)
                remaining = m.or(remaining, back)
            case .goto(let name):
                guard let target = table.chain(named: name) else { continue }  // no effect: not in a block
                guard gotos < Self.gotoLimit else {
                    finished.append((matched, .drop))
                    continue
                }
                // The goto'd chain replaces this one: what comes back of it leaves this chain too.
                let back = evaluate(target, matched, depth: depth, gotos: gotos + 1, into: &finished)
                returning = m.or(returning, back)
            case .dnat, .snat:
                continue  // outside nat: no effect, not in a block; in nat: translated above
            case .masquerade:
                finished.append((matched, .drop))  // outside nat
            case .log, .checksumFill:
                continue  // no effect: not in a block
            }
        }
        for batch in batchOrder {
            let rewritten = traversal.destinationTranslated(reaching, batches[batch]!)
            if !rewritten.isFalse { finished.append((rewritten, .destinationTranslated(route: batch.route))) }
        }
    }

    /// The chain's rules that can match on this path (`ChainIndex`), as blocks in order: a
    /// maximal sequence of rules with the same target that ends the chain (which of them
    /// matched a packet makes no difference), or one rule that calls a chain. Rules without
    /// effect (LOG, CHECKSUM, NAT outside nat, jumps to no chain) and blocks no packet of the
    /// path matches are left out. A block's set is the union of its rules' matches; it names
    /// its first rule.
    func blocks(of chain: Chain) -> [Block] {
        // They depend on the path only through what it fixes.
        let key = SymbolicCache.BlockKey(chain: traversal.chainID(table, chain), input: path.input, output: path.output,
                                         route: traversal.host == nil ? nil : path.route)
        if let known = traversal.cache.blocks[key] { return known }
        let candidates = traversal.index(table, chain).candidates(output: path.output, route: path.route)
        var blocks: [Block] = []
        var k = 0
        while k < candidates.count {
            let index = candidates[k]
            let rule = chain.rules[index]
            k += 1
            let effect = Self.effect(of: rule.target, in: table)
            if effect == .none { continue }
            var sets = [traversal.packets(matching: rule, on: path)]
            if effect == .ends {
                while k < candidates.count, chain.rules[candidates[k]].target == rule.target {
                    sets.append(traversal.packets(matching: chain.rules[candidates[k]], on: path))
                    k += 1
                }
            }
            let set = manager.or(sets)
            if !set.isFalse { blocks.append(Block(rule: index, set: set, key: sets.count == 1 ? ExactKey(rule) : nil)) }
        }
        traversal.cache.blocks[key] = blocks
        return blocks
    }
}
