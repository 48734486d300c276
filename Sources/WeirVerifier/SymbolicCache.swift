import WeirModel
import WeirSimulator

/// What symbolic traversals compute once: match sets, chain indexes and rule blocks, NAT
/// rewrites. One cache serves traversals with the same host, packet space and BDD manager;
/// chains are identified by content, so two rulesets share what they have in common.
public final class SymbolicCache {
    var sets: [Match: BDDManager.Node] = [:]
    var ruleSets: [MatchesKey: BDDManager.Node] = [:]
    var indexes: [Int: ChainIndex] = [:]
    var blocks: [BlockKey: [Block]] = [:]
    var routes: [IPAddress: Int] = [:]
    var writes: [WriteKey: BDDManager.Node] = [:]
    var rewrites: [RewriteKey: BDDManager.Node?] = [:]
    var written: [WrittenKey: BDDManager.Node] = [:]
    var runs: [RunKey: RunEffect] = [:]
    private var chains: [ChainKey: Int] = [:]
    private var context: Context?

    public init() {}

    /// What the cached sets depend on besides the rules: one space, host and manager.
    struct Context: Equatable {
        var family: Family
        var interfaces: [String]
        var writtenAddresses: [IPAddress]
        var hostInterfaces: [HostModel.Interface]?
        var hostRoutes: [HostModel.Route]?
        var forwards: Bool?
        var bridgeNetfilter: Bool?
        var manager: ObjectIdentifier

        init(space: PacketSpace, host: HostModel?, manager: BDDManager) {
            family = space.family
            interfaces = space.interfaces
            writtenAddresses = space.writtenAddresses
            hostInterfaces = host?.interfaces
            hostRoutes = host?.extraRoutes
            forwards = host?.ipForward
            bridgeNetfilter = host?.bridgeNetfilter
            self.manager = ObjectIdentifier(manager)
        }
    }

    /// Ties the cache to its first traversal's context; another context is a programming error.
    func bind(to context: Context) {
        if let bound = self.context {
            precondition(bound == context, "a SymbolicCache is shared only by traversals of one space, host and manager")
        } else {
            self.context = context
        }
    }

    /// A chain's contents, with what of its table a run of it depends on.
    struct ChainKey: Hashable {
        var table: String
        var chainNames: Set<String>
        var chain: Chain
    }

    func chainID(_ key: ChainKey) -> Int {
        if let known = chains[key] { return known }
        chains[key] = chains.count
        return chains.count - 1
    }

    /// A NAT rule's rewrite of the packets reaching it (MASQUERADE depends on the out interface).
    struct RewriteKey: Hashable {
        var reaching: BDDManager.Node
        var set: BDDManager.Node
        var target: Target
        var output: Int
    }

    /// A rule's matches on a path, with the interfaces the path fixes that they read (-1: the
    /// in-interface is not fixed).
    struct MatchesKey: Hashable {
        var matches: [Match]
        var input: Int?
        var output: Int?
    }

    /// A run of disjoint blocks that calls no chain, on the packets reaching it
    /// (`ChainRun.effectOfRun`); NAT depends on the table and MASQUERADE on the out interface.
    struct RunKey: Hashable {
        /// A block of the run (`Block`), by its set and target.
        struct Member: Hashable {
            var set: BDDManager.Node
            var target: Target
        }

        var table: String
        var output: Int
        var reaching: BDDManager.Node
        var blocks: Set<Member>
    }

    /// What such a run ends (each class with its verdict) and returns.
    struct RunEffect {
        var finished: [(BDDManager.Node, ChainVerdict)]
        var returning: BDDManager.Node
    }

    /// A set with fields written (`SymbolicTraversal.written`).
    struct WrittenKey: Hashable {
        var set: BDDManager.Node
        var writes: [WriteKey]
    }

    /// A field (named by its flag) written with a value.
    struct WriteKey: Hashable {
        var flag: Int
        var value: UInt128
    }
    private var unrewritten: [UnrewrittenKey: Bool] = [:]

    private struct UnrewrittenKey: Hashable {
        var packets: BDDManager.Node
        var flag: Int
    }

    /// Whether no packet of a set has the field rewritten.
    func isUnrewritten(_ packets: BDDManager.Node, _ field: PacketSpace.Rewritable, manager: BDDManager) -> Bool {
        let key = UnrewrittenKey(packets: packets, flag: field.flag)
        if let known = unrewritten[key] { return known }
        let answer = manager.and(packets, manager.variable(field.flag)).isFalse
        unrewritten[key] = answer
        return answer
    }

    /// What a chain's blocks depend on: the chain and what the path fixes.
    struct BlockKey: Hashable {
        var chain: Int
        var input: Int?
        var output: Int
        var route: Int?
    }
}

/// A traversal's chains by name, as `SymbolicCache` identifies their contents.
final class ChainIDs {
    struct Name: Hashable {
        var table: String
        var chain: String
    }

    var ids: [Name: Int] = [:]
}
