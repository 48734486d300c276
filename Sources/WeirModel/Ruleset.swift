/// A netfilter hook.
public enum Hook: String, Sendable, Hashable, CaseIterable, Comparable {
    case prerouting = "PREROUTING", input = "INPUT", forward = "FORWARD", output = "OUTPUT", postrouting = "POSTROUTING"

    public static func < (lhs: Hook, rhs: Hook) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A base chain's verdict for packets that reach its end.
public enum ChainPolicy: String, Sendable, Hashable {
    case accept = "ACCEPT", drop = "DROP"
}

/// The kind of a chain: attached to a hook, or called from other chains.
public enum ChainKind: Sendable, Hashable {
    /// Attached to `hook`; chains on one hook run in ascending `priority`.
    case base(hook: Hook, priority: Int, policy: ChainPolicy)
    /// Entered only by jump or goto.
    case user
}

/// An ordered list of rules.
public struct Chain: Sendable, Hashable {
    public var name: String
    public var kind: ChainKind
    public var rules: [Rule]

    public init(name: String, kind: ChainKind, rules: [Rule] = []) {
        self.name = name
        self.kind = kind
        self.rules = rules
    }

    public var isBase: Bool { if case .base = kind { true } else { false } }

    public var hook: Hook? { if case .base(let hook, _, _) = kind { hook } else { nil } }

    public var policy: ChainPolicy? { if case .base(_, _, let policy) = kind { policy } else { nil } }
}

/// A table: a namespace of chains in one family.
public struct Table: Sendable, Hashable {
    public var family: Family
    public var name: String
    /// Chains in canonical order: base chains by hook, then user chains by name.
    public private(set) var chains: [Chain]

    public init(family: Family, name: String, chains: [Chain] = []) {
        self.family = family
        self.name = name
        self.chains = []
        for chain in chains { add(chain) }
    }

    /// Adds a chain at its canonical place (replacing one of the same name).
    public mutating func add(_ chain: Chain) {
        if let index = chains.firstIndex(where: { $0.name == chain.name }) {
            chains[index] = chain
            return
        }
        let index = chains.firstIndex { Self.chainOrder(chain, before: $0) } ?? chains.endIndex
        chains.insert(chain, at: index)
    }

    public func chain(named name: String) -> Chain? { chains.first { $0.name == name } }

    public func index(ofChain name: String) -> Int? { chains.firstIndex { $0.name == name } }

    /// Edits a chain in place; returns false when there is none of that name.
    @discardableResult
    public mutating func modifyChain(_ name: String, _ body: (inout Chain) -> Void) -> Bool {
        guard let index = index(ofChain: name) else { return false }
        body(&chains[index])
        return true
    }

    static func chainOrder(_ a: Chain, before b: Chain) -> Bool {
        switch (a.hook, b.hook) {
        case let (x?, y?): x < y
        case (_?, nil): true
        case (nil, _?): false
        case (nil, nil): a.name < b.name
        }
    }
}

/// The whole firewall: tables in canonical order (family, then table name rank).
public struct Ruleset: Sendable, Hashable {
    public private(set) var tables: [Table]

    public init(tables: [Table] = []) {
        self.tables = []
        for table in tables { add(table) }
    }

    /// Adds a table at its canonical place (replacing one of the same family and name).
    public mutating func add(_ table: Table) {
        if let index = tables.firstIndex(where: { $0.family == table.family && $0.name == table.name }) {
            tables[index] = table
            return
        }
        let index = tables.firstIndex { Self.tableOrder(table, before: $0) } ?? tables.endIndex
        tables.insert(table, at: index)
    }

    public func table(_ family: Family, _ name: String) -> Table? {
        tables.first { $0.family == family && $0.name == name }
    }

    /// Edits a table in place; returns false when there is none.
    @discardableResult
    public mutating func modifyTable(_ family: Family, _ name: String, _ body: (inout Table) -> Void) -> Bool {
        guard let index = tables.firstIndex(where: { $0.family == family && $0.name == name }) else { return false }
        body(&tables[index])
        return true
    }

    /// The tables of one family.
    public func tables(of family: Family) -> [Table] { tables.filter { $0.family == family } }

    /// The families that have at least one table.
    public var families: [Family] { Family.allCases.filter { f in tables.contains { $0.family == f } } }

    /// The order netfilter's own tools list tables in: raw, mangle, filter, nat, others by name.
    static let tableRank = ["raw": 0, "mangle": 1, "filter": 2, "nat": 3]

    static func tableOrder(_ a: Table, before b: Table) -> Bool {
        if a.family != b.family { return a.family < b.family }
        let (ra, rb) = (tableRank[a.name] ?? 9, tableRank[b.name] ?? 9)
        return ra != rb ? ra < rb : a.name < b.name
    }
}
