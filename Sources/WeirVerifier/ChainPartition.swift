import WeirModel

/// What a base chain decides for a class of packets.
public enum ChainVerdict: Sendable, Equatable {
    /// Accepted, by a rule or the policy: the packet goes on to the next base chain or hook.
    case accept
    /// Dropped or rejected, at `location` (`table:chain:rule|return|policy:N`, as traces print it).
    case drop(at: String)
    /// Accepted by a NAT target (nat tables only), which rewrites the packet.
    case translate(Target, at: String)
}

/// Symbolic evaluation of one base chain: it splits a set of packets into classes that each get
/// one verdict, following rule order, jumps, gotos and returns exactly as the simulator does.
public struct ChainPartitioner {
    public let table: Table
    public let encoder: MatchEncoder
    private var manager: BDDManager { encoder.manager }
    /// Jumps nested deeper than this drop the packet, like the simulator (a loop).
    static let maximumDepth = 64

    public init(table: Table, encoder: MatchEncoder) {
        self.table = table
        self.encoder = encoder
    }

    /// The classes of `packets` and their verdicts in the base chain `name`. The classes are
    /// disjoint and cover `packets`.
    public func partition(baseChain name: String, packets: BDDManager.Node) -> [(packets: BDDManager.Node, verdict: ChainVerdict)] {
        guard let base = table.chain(named: name) else { return [(packets, .accept)] }
        var finished: [(BDDManager.Node, ChainVerdict)] = []
        let returned = evaluate(base, packets, baseName: name, depth: 0, into: &finished)
        if !returned.isFalse { finished.append((returned, policy(base))) }
        return finished.filter { !$0.0.isFalse }
    }

    private func policy(_ base: Chain) -> ChainVerdict {
        base.policy == .drop ? .drop(at: "\(table.name):\(base.name):policy:\(base.rules.count + 1)") : .accept
    }

    /// Runs `chain` on `packets`; terminal classes go into `finished`, and the packets that come
    /// back to the caller (a RETURN, or the end of a user chain) are returned.
    private func evaluate(_ chain: Chain, _ packets: BDDManager.Node, baseName: String, depth: Int,
                          into finished: inout [(BDDManager.Node, ChainVerdict)]) -> BDDManager.Node {
        let m = manager
        let isBase = chain.name == baseName
        var remaining = packets
        var returning = BDDManager.Node.false
        for (index, rule) in chain.rules.enumerated() {
            if remaining.isFalse { break }
            let matched = m.and(remaining, encoder.packets(matching: rule))
            if matched.isFalse { continue }
            remaining = m.minus(remaining, matched)
            let unconditional = rule.matches.isEmpty && [.accept, .drop, .return].contains(rule.target)
            let kind = unconditional ? (isBase ? "policy" : "return") : "rule"
            let location = "\(table.name):\(chain.name):\(kind):\(index + 1)"
            switch rule.target {
            case .accept:
                finished.append((matched, .accept))
            case .drop, .reject:
                finished.append((matched, .drop(at: location)))
            case .return:
                if isBase { finished.append((matched, policy(chain))) } else { returning = m.or(returning, matched) }
            case .jump(let name), .goto(let name):
                guard let target = table.chain(named: name) else {
                    remaining = m.or(remaining, matched)
                    continue
                }
                guard depth < Self.maximumDepth else {
                    finished.append((matched, .drop(at: location)))
                    continue
                }
                let back = evaluate(target, matched, baseName: baseName, depth: depth + 1, into: &finished)
                if case .jump = rule.target {
                    remaining = m.or(remaining, back)
                } else if isBase {
                    finished.append((back, policy(chain)))
                } else {
                    returning = m.or(returning, back)
                }
            case .dnat, .snat, .masquerade:
                if table.name == "nat" { finished.append((matched, .translate(rule.target, at: location))) } else { remaining = m.or(remaining, matched) }
            case .log, .checksumFill:
                remaining = m.or(remaining, matched)
            }
        }
        return m.or(returning, remaining)
    }
}
