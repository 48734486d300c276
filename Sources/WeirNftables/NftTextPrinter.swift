import WeirDiagnostics
import WeirModel

/// Model → `nft -f` text (nft 1.0.6 syntax), in the `NftLayout` table layout.
///
/// Each table is written as `table F weir-T {}`, `delete table F weir-T`, then the full
/// `table F weir-T { … }`: `nft -f` runs a file as one transaction, so loading the text again
/// replaces Weir's tables atomically (never a second copy, never a moment without them) and
/// leaves every other table alone. Output is deterministic: tables and chains in the model's
/// canonical order, one rule per line with the matches in the model's order, then the
/// statement, then `comment "…"` (nft wants the comment last).
///
/// Spelling follows what `nft list ruleset` prints where it can: a port match carries its
/// protocol (`tcp dport 80`, no separate `meta l4proto tcp`), a negated state set is
/// `ct state ! established,related` (nft 1.0.6 reads `ct state != a,b` as one value, which no
/// packet has), hosts are written without `/32`. The kernel program is the one `NftLowering`
/// builds, except that nft 1.0.6 writes a port range as `cmp gte` + `cmp lte` and its own NAT
/// register layout; `NftLifting` reads both back to the same model.
///
/// `render` never refuses anything; `unsupported` lists what it cannot write faithfully (the
/// lowering's errors and warnings, plus names and strings nft's syntax cannot spell). An empty
/// list means the text is exact; CHECKSUM rules are left out (with a `#` line) either way.
public enum NftTextPrinter {
    public static func render(_ ruleset: Ruleset, family: Family? = nil) -> String {
        let tables = ruleset.tables.filter { family == nil || $0.family == family }
        var out = "# Weir nftables ruleset (nft -f). Loading it replaces "
        out += tables.isEmpty ? "nothing" : tables.map { "\($0.family.rawValue) \(NftLayout.nftTableName($0.name))" }.joined(separator: ", ")
        out += " in one transaction and leaves other tables alone.\n"
        for table in tables {
            let name = "\(table.family.rawValue) \(NftLayout.nftTableName(table.name))"
            out += "\ntable \(name) {}\n"
            out += "delete table \(name)\n"
            out += "table \(name) {\n"
            for (index, chain) in table.chains.enumerated() {
                if index > 0 { out += "\n" }
                out += "\tchain \(chain.name) {\n"
                if case let .base(hook, priority, policy) = chain.kind {
                    let type = NftLayout.chainType(table: table.name, hook: hook)
                    out += "\t\ttype \(type.rawValue) hook \(NftLayout.hookName(hook)) priority \(priority); policy \(policy.rawValue.lowercased());\n"
                }
                for line in lines(chain.rules, family: table.family) {
                    out += "\t\t" + line + "\n"
                }
                out += "\t}\n"
            }
            out += "}\n"
        }
        return out
    }

    /// The lines of a chain's rules: one per rule, and one per set group (`NftSetGroup`, the
    /// rules the lowering writes as one set lookup), at the place of the group's first rule.
    /// A CHECKSUM rule becomes a `#` line where it stands.
    static func lines(_ rules: [Rule], family: Family) -> [String] {
        var out: [String] = []
        var normalized: [Rule] = []
        var pendingComments: [Int: [String]] = [:]  // CHECKSUM lines before normalized rule #n
        for rule in rules {
            if let rule = NftLowering.normalForm(rule, family: family) {
                normalized.append(rule)
            } else {
                pendingComments[normalized.count, default: []].append(render(rule, family: family))
            }
        }
        // Each `#` line goes before the first part that holds a rule after it.
        var commented = 0
        func comments(before index: Int) {
            while commented <= index {
                out += pendingComments[commented] ?? []
                commented += 1
            }
        }
        for part in NftSetGroup.plan(normalized, family: family) {
            switch part {
            case .single(let index):
                comments(before: index)
                out.append(render(normalized[index], family: family))
            case let .group(group, indices):
                comments(before: indices.min() ?? 0)
                out.append(render(group, family: family))
            }
        }
        comments(before: normalized.count)
        return out
    }

    /// One rule's text (without indentation or newline).
    public static func render(_ rule: Rule, family: Family) -> String {
        let (words, comment) = matchWords(rule.matches, family: family)
        guard let statement = statement(rule.target, family: family) else {
            return "# left out, no nftables equivalent: " + (words + ["checksum fill"]).joined(separator: " ")
        }
        return (words + [statement] + (comment.map { ["comment " + quoted($0)] } ?? [])).joined(separator: " ")
    }

    /// A set group's rule: the shared matches, the key looked up in an anonymous set (one
    /// element per line), and the shared statement — or, for a DNAT map, `dnat … to KEY map`.
    static func render(_ group: NftSetGroup, family: Family) -> String {
        var (words, comment) = matchWords(group.rest, family: family)
        let ip = family == .ipv4 ? "ip" : "ip6"
        let key = group.fields.map { field in
            switch field {
            case .address(let direction): "\(ip) \(direction == .source ? "saddr" : "daddr")"
            case .l4proto: "meta l4proto"
            case .destinationPort: "th dport"
            }
        }.joined(separator: " . ")
        let elements = group.members.map { member in
            var values: [String] = []
            for match in member.rule.matches {
                switch match {
                case let .address(direction, prefix, false) where prefix.length == family.bitWidth && group.fields.contains(.address(direction)):
                    values.append("\(prefix.network)")
                case let .protocol(proto, false) where group.fields.contains(.l4proto):
                    values.append(protocolName(proto))
                case let .port(.destination, range, false) where group.fields.contains(.destinationPort):
                    values.append(String(range.first))
                default:
                    break
                }
            }
            var text = values.joined(separator: " . ")
            if case let .dnat(to) = member.rule.target, case .dnatMap = group.action {
                text += " : \(to.address)" + (to.ports.map { " . \($0.first)" } ?? "")
            }
            return text
        }
        let set = "{\n\t\t\t" + elements.joined(separator: ",\n\t\t\t") + "\n\t\t}"
        switch group.action {
        case .shared(let target):
            words.append(key + " " + set)
            words.append(statement(target, family: family) ?? "")
        case .dnatMap:
            words.append("dnat \(ip) to \(key) map \(set)")
        }
        if let comment { words.append("comment " + quoted(comment)) }
        return words.joined(separator: " ")
    }

    /// The words of a rule's matches (in the model's order), and its comment.
    static func matchWords(_ matches: [Match], family: Family) -> (words: [String], comment: String?) {
        var words: [String] = []
        let hasPorts = matches.contains { if case .port = $0 { true } else { false } }
        // The protocol a port match or a NAT port is written with.
        var portProtocol: TransportProtocol? = nil
        var comment: String? = nil
        for match in matches {
            switch match {
            case let .address(direction, prefix, negated):
                if prefix.length == 0 && !negated { continue }
                let key = "\(family == .ipv4 ? "ip" : "ip6") \(direction == .source ? "saddr" : "daddr")"
                words.append(key + (negated ? " != " : " ") + address(prefix))
            case let .inInterface(name, negated), let .outInterface(name, negated):
                if name.isWildcard && name.name.isEmpty && !negated { continue }
                let key = if case .inInterface = match { "iifname" } else { "oifname" }
                words.append(key + (negated ? " != " : " ") + quoted(name.name + (name.isWildcard ? "*" : "")))
            case let .protocol(proto, negated):
                if !negated && portProtocol == nil {
                    portProtocol = proto
                    if hasPorts && proto.hasPorts { continue }  // `tcp dport …` says it
                }
                words.append("meta l4proto " + (negated ? "!= " : "") + protocolName(proto))
            case let .port(direction, range, negated):
                let proto = portProtocol.map(protocolName) ?? "th"
                words.append("\(proto) \(direction == .source ? "sport" : "dport")" + (negated ? " != " : " ") + range.description)
            case let .conntrackState(states, negated):
                let list = states.sorted().map { $0.rawValue.lowercased() }.joined(separator: ",")
                words.append("ct state " + (negated ? "! " : "") + list)
            case let .addressType(direction, type, negated):
                words.append("fib \(direction == .source ? "saddr" : "daddr") type " + (negated ? "!= " : "") + addressTypeName(type))
            case .comment(let text):
                comment = text
            }
        }
        return (words, comment)
    }

    /// A target's statement; nil for CHECKSUM, which nftables has none for.
    static func statement(_ target: Target, family: Family) -> String? {
        switch target {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .jump(let chain): return "jump \(chain)"
        case .goto(let chain): return "goto \(chain)"
        case .reject(let type):
            if let kind = NftRejectKind.kind(type, family: family), kind != NftRejectKind.defaultKind(family) {
                return "reject with \(kind.nftText)"
            }
            return "reject"
        case let .log(prefix, level):
            var text = "log"
            if let prefix, !prefix.isEmpty { text += " prefix " + quoted(prefix) }
            if let level { text += " level " + logLevelName(level) }
            return text
        case .dnat(let destination), .snat(let destination):
            let verb = if case .dnat = target { "dnat" } else { "snat" }
            var text = "\(verb) to "
            if let ports = destination.ports {
                text += (destination.address.family == .ipv6 ? "[\(destination.address)]" : "\(destination.address)") + ":\(ports)"
            } else {
                text += "\(destination.address)"
            }
            return text
        case .masquerade(let ports):
            return ports.map { "masquerade to :\($0)" } ?? "masquerade"
        case .checksumFill:
            return nil
        }
    }

    // MARK: Spelling

    static func address(_ prefix: Prefix) -> String {
        prefix.length == prefix.family.bitWidth ? "\(prefix.network)" : "\(prefix.network)/\(prefix.length)"
    }

    static func quoted(_ text: String) -> String { "\"" + text + "\"" }

    static func protocolName(_ proto: TransportProtocol) -> String {
        switch proto.number {
        case 1: "icmp"
        case 6: "tcp"
        case 17: "udp"
        case 58: "ipv6-icmp"
        case 132: "sctp"
        default: String(proto.number)
        }
    }

    /// nft's `fib … type` names; nft 1.0.6 cannot parse `throw`, `nat` and `xresolve`, so those are numbers.
    static func addressTypeName(_ type: AddressType) -> String {
        switch type {
        case .throw, .nat, .xresolve: String(NftEncoding.rtn(type))
        default: type.rawValue.lowercased()
        }
    }

    static let logLevels = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"]

    static func logLevelName(_ level: UInt8) -> String {
        level < 8 ? logLevels[Int(level)] : String(level)
    }

    // MARK: What cannot be written

    /// Everything `render` cannot write faithfully for the tables of `family` (all when nil):
    /// the lowering's diagnostics (errors for what nf_tables cannot express, warnings for the
    /// CHECKSUM rules left out), and errors for table and chain names that are not nft
    /// identifiers (or are nft keywords), and for interface names, comments and log prefixes
    /// with a quote, backslash or control character (or, for interfaces, a `*`), which nft
    /// 1.0.6's strings cannot carry.
    public static func unsupported(_ ruleset: Ruleset, family: Family? = nil) -> [Diagnostic] {
        let selected = Ruleset(tables: ruleset.tables.filter { family == nil || $0.family == family })
        var bag = DiagnosticBag()
        bag.append(contentsOf: NftLowering.lower(selected).diagnostics)
        for table in selected.tables {
            let tableAnchor = table.chains.lazy.compactMap { $0.rules.first?.provenance }.first
            let tableName = NftLayout.nftTableName(table.name)
            if !isIdentifier(tableName) {
                bag.error("table name '\(tableName)' cannot be written in nft syntax (an identifier of letters, digits, '_', '-', '.', '/', not a keyword)", at: tableAnchor)
            }
            for chain in table.chains {
                let place = "(table \(table.family.rawValue) \(table.name), chain \(chain.name))"
                if !isIdentifier(chain.name) {
                    bag.error("chain name '\(chain.name)' cannot be written in nft syntax (an identifier of letters, digits, '_', '-', '.', '/', not a keyword) (table \(table.family.rawValue) \(table.name))",
                              at: chain.rules.first?.provenance ?? tableAnchor)
                }
                for rule in chain.rules {
                    func check(_ text: String, _ what: String, interface: Bool = false) {
                        if let problem = stringProblem(text, interface: interface) {
                            bag.error("\(what) '\(text)' \(problem), which nft's text syntax cannot carry \(place)", at: rule.provenance)
                        }
                    }
                    for match in rule.matches {
                        switch match {
                        case let .inInterface(name, _), let .outInterface(name, _): check(name.name, "interface name", interface: true)
                        case .comment(let text): check(text, "comment")
                        default: break
                        }
                    }
                    if case let .log(prefix?, _) = rule.target { check(prefix, "log prefix") }
                }
            }
        }
        return bag.diagnostics
    }

    static func stringProblem(_ text: String, interface: Bool) -> String? {
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\"") { return "contains a double quote" }
            if byte == UInt8(ascii: "\\") { return "contains a backslash" }
            if byte < 0x20 || byte == 0x7f { return "contains a control character" }
            if interface && byte == UInt8(ascii: "*") { return "contains '*' (nft's wildcard mark)" }
        }
        return nil
    }

    /// Whether nft 1.0.6 reads `name` as one identifier: a letter or `_`, then letters, digits
    /// and `_ - . /`, and not one of its keywords (which `nft -f` would parse as syntax).
    public static func isIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        guard isLetter(first) || first == UInt8(ascii: "_") else { return false }
        for b in bytes.dropFirst() {
            guard isLetter(b) || (b >= 48 && b <= 57) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "/") else { return false }
        }
        return !keywords.contains(name)
    }

    /// nft 1.0.6's keywords (its parser's token strings). Some only act as keywords in some
    /// places, but a name that is one is refused to stay safe.
    static let keywords: Set<String> = [
        "junk", "newline", "colon", "semicolon", "comma", "vmap", "include", "define", "redefine", "undefine", "fib",
        "socket", "transparent", "wildcard", "cgroupv2", "tproxy", "osf", "synproxy", "mss", "wscale", "typeof", "hook",
        "hooks", "device", "devices", "table", "tables", "chain", "chains", "rule", "rules", "sets", "set", "element",
        "map", "maps", "flowtable", "handle", "ruleset", "trace", "inet", "netdev", "add", "update", "replace", "create",
        "insert", "delete", "get", "list", "reset", "flush", "rename", "describe", "import", "export", "monitor", "all",
        "accept", "drop", "continue", "jump", "goto", "return", "to", "constant", "interval", "dynamic", "auto-merge",
        "timeout", "gc-interval", "elements", "expires", "policy", "memory", "performance", "size", "flow", "offload",
        "meter", "meters", "flowtables", "number", "string", "ll", "nh", "th", "bridge", "ether", "saddr", "daddr", "type",
        "vlan", "id", "cfi", "dei", "pcp", "arp", "htype", "ptype", "hlen", "plen", "operation", "ip", "version",
        "hdrlength", "dscp", "ecn", "length", "frag-off", "ttl", "protocol", "checksum", "ptr", "value", "lsrr", "rr",
        "ssrr", "ra", "icmp", "code", "seq", "gateway", "mtu", "igmp", "mrt", "options", "ip6", "priority", "flowlabel",
        "nexthdr", "hoplimit", "icmpv6", "param-problem", "max-delay", "ah", "reserved", "spi", "esp", "comp", "flags",
        "cpi", "port", "udp", "sport", "dport", "udplite", "csumcov", "tcp", "ackseq", "doff", "window", "urgptr",
        "option", "echo", "eol", "mptcp", "nop", "sack", "sack0", "sack1", "sack2", "sack3", "sack-permitted",
        "fastopen", "md5sig", "timestamp", "count", "left", "right", "tsval", "tsecr", "subtype", "dccp", "sctp", "chunk",
        "data", "init", "init-ack", "heartbeat", "heartbeat-ack", "abort", "shutdown", "shutdown-ack", "error",
        "cookie-echo", "cookie-ack", "ecne", "cwr", "shutdown-complete", "asconf-ack", "forward-tsn", "asconf", "tsn",
        "stream", "ssn", "ppid", "init-tag", "a-rwnd", "num-outbound-streams", "num-inbound-streams", "initial-tsn",
        "cum-tsn-ack", "num-gap-ack-blocks", "num-dup-tsns", "lowest-tsn", "seqno", "new-cum-tsn", "vtag", "rt", "rt0",
        "rt2", "srh", "seg-left", "addr", "last-entry", "tag", "sid", "hbh", "frag", "reserved2", "more-fragments", "dst",
        "mh", "meta", "mark", "iif", "iifname", "iiftype", "oif", "oifname", "oiftype", "skuid", "skgid", "nftrace",
        "rtclassid", "ibriport", "obriport", "ibrname", "obrname", "pkttype", "cpu", "iifgroup", "oifgroup", "cgroup",
        "time", "classid", "nexthop", "ct", "l3proto", "proto-src", "proto-dst", "zone", "direction", "event",
        "expectation", "expiration", "helper", "label", "state", "status", "original", "reply", "counter", "name",
        "packets", "bytes", "avgpkt", "counters", "quotas", "limits", "synproxys", "helpers", "log", "prefix", "group",
        "snaplen", "queue-threshold", "level", "limit", "rate", "burst", "over", "until", "quota", "used", "secmark",
        "secmarks", "second", "minute", "hour", "day", "week", "reject", "with", "icmpx", "snat", "dnat", "masquerade",
        "redirect", "random", "fully-random", "persistent", "queue", "num", "bypass", "fanout", "dup", "fwd", "numgen",
        "inc", "mod", "offset", "jhash", "symhash", "seed", "position", "index", "comment", "xml", "json", "vm",
        "notrack", "exists", "missing", "exthdr", "ipsec", "reqid", "spnum", "in", "out", "xt",
        // Not in the token list (scanned as words) but still read as syntax in a chain body.
        "filter", "nat", "route", "policy", "prerouting", "input", "forward", "output", "postrouting", "ingress", "egress",
    ]
}
