import CMalloc
import Foundation
import WeirModel
import WeirSimulator

/// What an observer of the host can tell about a packet's fate: delivered to a local process,
/// forwarded or sent out an interface, dropped, or unroutable — and, when it got through, its
/// final addresses and ports (after NAT). Where a ruleset decided it is not observable.
public struct ObservableOutcome: Sendable, Hashable, CustomStringConvertible {
    public enum Fate: Sendable, Hashable, CustomStringConvertible {
        case deliveredLocally
        case forwarded(String)
        case sent(String)
        case dropped
        case unroutable

        public var description: String {
            switch self {
            case .deliveredLocally: "delivered locally"
            case .forwarded(let interface): "forwarded out \(interface)"
            case .sent(let interface): "sent out \(interface)"
            case .dropped: "dropped"
            case .unroutable: "unroutable"
            }
        }

        /// Whether the packet leaves the ruleset's hands, so its final header is observable.
        public var getsThrough: Bool {
            switch self {
            case .deliveredLocally, .forwarded, .sent: true
            case .dropped, .unroutable: false
            }
        }
    }

    public var fate: Fate
    /// The final header, when the packet gets through; nil otherwise.
    public var packet: Packet?

    public init(fate: Fate, packet: Packet?) {
        self.fate = fate
        self.packet = fate.getsThrough ? packet : nil
    }

    /// The observable part of a simulator traversal.
    public init(_ traversal: Traversal) {
        switch traversal.outcome {
        case .deliveredLocally: self.init(fate: .deliveredLocally, packet: traversal.packet)
        case .forwarded(let out): self.init(fate: .forwarded(out), packet: traversal.packet)
        case .sent(let out): self.init(fate: .sent(out), packet: traversal.packet)
        case .dropped: self.init(fate: .dropped, packet: nil)
        case .unroutable: self.init(fate: .unroutable, packet: nil)
        }
    }

    public var description: String {
        guard let packet else { return fate.description }
        return "\(fate) as \(packet)"
    }
}

/// One packet two rulesets treat differently, with what each does to it.
public struct Counterexample: Sendable, CustomStringConvertible {
    /// The packet as it arrives (state included).
    public var packet: Packet
    /// Where it arrives: an interface, or a local process.
    public var origin: Origin
    public var left: ObservableOutcome
    public var right: ObservableOutcome
    /// When the check was for every possible host: a host on which the two differ (the
    /// outcomes are the simulator's on it).
    public var host: HostModel?

    public init(packet: Packet, origin: Origin, left: ObservableOutcome, right: ObservableOutcome, host: HostModel? = nil) {
        self.packet = packet
        self.origin = origin
        self.left = left
        self.right = right
        self.host = host
    }

    public var description: String {
        let from = switch origin {
        case .interface(let name): "IN=\(name)"
        case .local: "from a local process"
        }
        return "\(from) \(packet) STATE=\(packet.state.rawValue): left \(left); right \(right)"
    }
}

/// The answer of an equivalence check.
public struct EquivalenceResult: Sendable {
    /// Nil when the rulesets are equivalent.
    public var counterexample: Counterexample?
    /// How many outcome classes the two rulesets split all packets into (both families, both sides).
    public var classes: Int
    /// Wall time of the check.
    public var seconds: Double

    public var equivalent: Bool { counterexample == nil }

    public init(counterexample: Counterexample?, classes: Int, seconds: Double) {
        self.counterexample = counterexample
        self.classes = classes
        self.seconds = seconds
    }
}

/// Proves two rulesets equivalent on a host — every packet (each family, every interface it
/// can arrive on or a local process, every address, protocol, port and conntrack state) gets the
/// same `ObservableOutcome` under the simulator's semantics — or finds a packet that does not.
/// With no host, on every possible host: routes, local and broadcast addresses and whether the
/// host forwards are free (`PacketSpace.HostChoices`), and a counterexample comes with a host
/// it holds on.
public enum Verifier {
    public static func check(_ left: Ruleset, _ right: Ruleset, host: HostModel?) -> EquivalenceResult {
        let clock = ContinuousClock.now
        var classes = 0
        for family in Family.allCases {
            let expected = expectedNodes(family, left, right)
            // A large check's tables are its peak: first give back the heap pages that reading
            // the rulesets left free (glibc keeps them otherwise).
            if expected >= bigCheck { malloc_trim(0) }
            let manager = BDDManager(expectedNodes: expected)
            let space = PacketSpace(family: family, rulesets: [left, right], host: host)
            let cache = SymbolicCache()
            let l = SymbolicTraversal(ruleset: left, host: host, space: space, manager: manager, cache: cache).classes()
            let r = SymbolicTraversal(ruleset: right, host: host, space: space, manager: manager, cache: cache).classes()
            classes += l.count + r.count
            if let found = OutcomeComparison.firstDifference(l, r, rulesets: (left, right), space: space, manager: manager) {
                return EquivalenceResult(counterexample: found, classes: classes, seconds: clock.duration(to: .now).seconds)
            }
        }
        return EquivalenceResult(counterexample: nil, classes: classes, seconds: clock.duration(to: .now).seconds)
    }

    /// A check expected to make this many nodes trims the heap before it starts.
    static let bigCheck = 1 << 20

    /// About how many BDD nodes checking a family takes: Docker-style rulesets of 1k–50k
    /// published ports make 100–180 nodes per rule of the two sides (a guess, which only sizes
    /// the tables to start with).
    static func expectedNodes(_ family: Family, _ left: Ruleset, _ right: Ruleset) -> Int {
        let rules = [left, right].flatMap(\.tables).filter { $0.family == family }.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
        return rules * 110
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
