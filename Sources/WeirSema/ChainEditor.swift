import WeirModel

/// Edits a ruleset the way `iptables -N/-I/-A/-D/-P` calls do, with Docker's "only if absent"
/// checks, so that a profile can be written as the call sequence Docker makes.
///
/// The checks scan the chain, which is cheap for the chains Docker checks (a few rules per
/// network); bulk rules whose uniqueness the caller knows go in with `appendNew`.
struct ChainEditor {
    private(set) var ruleset = Ruleset()

    /// `-N`: creates a user chain (and its built-in table) unless it exists.
    mutating func newChain(_ family: Family, _ table: String, _ chain: String) {
        ensureTable(family, table)
        ruleset.modifyTable(family, table) { t in
            if t.chain(named: chain) == nil { t.add(Chain(name: chain, kind: .user)) }
        }
    }

    /// `-P`: sets a base chain's policy.
    mutating func setPolicy(_ family: Family, _ table: String, _ chain: String, _ policy: ChainPolicy) {
        ensureTable(family, table)
        ruleset.modifyTable(family, table) { t in
            t.modifyChain(chain) { c in
                if case .base(let hook, let priority, _) = c.kind { c.kind = .base(hook: hook, priority: priority, policy: policy) }
            }
        }
    }

    func contains(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) -> Bool {
        ruleset.table(family, table)?.chain(named: chain)?.rules.contains(rule) ?? false
    }

    /// `-I chain 1` unless an identical rule is in the chain.
    mutating func insert(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) {
        add(family, table, chain, rule, atTop: true)
    }

    /// `-A` unless an identical rule is in the chain.
    mutating func append(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) {
        add(family, table, chain, rule, atTop: false)
    }

    /// `-A` of a rule the caller knows is not in the chain (no scan).
    mutating func appendNew(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) {
        ensureTable(family, table)
        var found = false
        ruleset.modifyTable(family, table) { t in
            found = t.modifyChain(chain) { $0.rules.append(rule) }
        }
        precondition(found, "profile bug: chain \(chain) used before it was created")
    }

    /// `-D`: removes the first identical rule, if any.
    mutating func delete(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) {
        ruleset.modifyTable(family, table) { t in
            t.modifyChain(chain) { c in
                if let index = c.rules.firstIndex(of: rule) { c.rules.remove(at: index) }
            }
        }
    }

    /// Deletes the rule wherever it is and inserts it at the top (Docker's "move to top").
    mutating func moveToTop(_ family: Family, _ table: String, _ chain: String, _ rule: Rule) {
        delete(family, table, chain, rule)
        insert(family, table, chain, rule)
    }

    private mutating func add(_ family: Family, _ table: String, _ chain: String, _ rule: Rule, atTop: Bool) {
        guard !contains(family, table, chain, rule) else { return }
        ensureTable(family, table)
        var found = false
        ruleset.modifyTable(family, table) { t in
            found = t.modifyChain(chain) { c in
                if atTop { c.rules.insert(rule, at: 0) } else { c.rules.append(rule) }
            }
        }
        precondition(found, "profile bug: chain \(chain) used before it was created")
    }

    private mutating func ensureTable(_ family: Family, _ table: String) {
        guard ruleset.table(family, table) == nil else { return }
        guard let empty = XtablesLayout.emptyTable(table, family: family) else {
            preconditionFailure("profile bug: \(table) is not a built-in table")
        }
        ruleset.add(empty)
    }
}
