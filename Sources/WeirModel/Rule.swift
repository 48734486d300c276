import WeirDiagnostics

/// One rule: all `matches` must hold for `target` to apply.
///
/// Matches are kept in one canonical order so that equal rules compare equal however they
/// were written: addresses (source, destination), interfaces (in, out), protocol, ports
/// (source, destination), then every other match in the order given.
///
/// `provenance` points back at the policy text the rule came from; it is not part of the
/// rule's meaning, so equality and hashing ignore it.
public struct Rule: Sendable, Hashable, CustomStringConvertible {
    public private(set) var matches: [Match]
    public var target: Target
    public var provenance: SourceRange?

    public init(_ matches: [Match], _ target: Target, provenance: SourceRange? = nil) {
        self.matches = Rule.canonicalOrder(matches)
        self.target = target
        self.provenance = provenance
    }

    static func rank(_ match: Match) -> Int {
        switch match {
        case .address(.source, _, _): 0
        case .address(.destination, _, _): 1
        case .inInterface: 2
        case .outInterface: 3
        case .protocol: 4
        case .port(.source, _, _): 5
        case .port(.destination, _, _): 6
        default: 7
        }
    }

    static func canonicalOrder(_ matches: [Match]) -> [Match] {
        // Already canonical in the common case: skip the sort.
        var previous = 0
        var sorted = true
        for match in matches {
            let r = rank(match)
            if r < previous { sorted = false; break }
            previous = r
        }
        if sorted { return matches }
        return matches.enumerated().sorted { a, b in
            let (ra, rb) = (rank(a.element), rank(b.element))
            return ra != rb ? ra < rb : a.offset < b.offset
        }.map(\.element)
    }

    public static func == (lhs: Rule, rhs: Rule) -> Bool {
        lhs.target == rhs.target && lhs.matches == rhs.matches
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(matches)
        hasher.combine(target)
    }

    /// A debugging form; backends have their own printers.
    public var description: String { "\(matches) -> \(target)" }
}
