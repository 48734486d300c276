/// The built-in tables of x_tables (iptables) and their base chains, with the priorities the
/// kernel registers them at (`NF_IP_PRI_*`). Every backend and the simulator use these, so an
/// iptables table is just a set of base chains at these priorities.
public enum XtablesLayout {
    /// Hooks of each built-in table, in listing order.
    public static let hooks: [String: [Hook]] = [
        "raw": [.prerouting, .output],
        "mangle": [.prerouting, .input, .forward, .output, .postrouting],
        "filter": [.input, .forward, .output],
        "nat": [.prerouting, .input, .output, .postrouting],
    ]

    /// The priority of a built-in table's chain on a hook.
    public static func priority(table: String, hook: Hook) -> Int {
        switch table {
        case "raw": -300
        case "mangle": -150
        case "nat": (hook == .prerouting || hook == .output) ? -100 : 100
        case "filter": 0
        default: 0
        }
    }

    /// A built-in table with all its base chains, empty, with policy ACCEPT.
    public static func emptyTable(_ name: String, family: Family) -> Table? {
        guard let list = hooks[name] else { return nil }
        return Table(family: family, name: name, chains: list.map {
            Chain(name: $0.rawValue, kind: .base(hook: $0, priority: priority(table: name, hook: $0), policy: .accept))
        })
    }
}
