import WeirDiagnostics
import WeirModel

/// Prints a ruleset as `iptables-save` / `ip6tables-save` (iptables 1.8.9) prints it, without the
/// `# Generated` / `# Completed` comment lines, so the text can be fed to `iptables-restore` and
/// diffed against what the kernel reports back.
///
/// Layout: one `*table` … `COMMIT` block per table of the family, in the ruleset's order; the
/// built-in chains of the table (`:INPUT ACCEPT [0:0]`, in x_tables order, ACCEPT when the model
/// lacks one), then user chains (`:NAME - [0:0]`) in the table's order, then every chain's `-A`
/// lines in the same order.
///
/// Within a rule the order is the one `iptables-save` uses whatever the model's order is:
/// `-s`, `-d`, `-i`, `-o`, `-p`, then match modules in the rule's order, then the target. All port
/// matches of a rule are printed as one `-m tcp|udp|sctp` module at the place of the first one
/// (iptables-nft merges them the same way), `--sport` before `--dport`. Normalisations the kernel
/// applies are applied here too: prefixes lose their host bits, `-s 0.0.0.0/0` and `-i +` vanish,
/// a port range `0:65535` vanishes (a module left with no option prints as a bare `-m tcp`),
/// `--log-level 4` and an empty `--log-prefix` vanish, REJECT types are spelt canonically.
///
/// The printer never fails: a rule iptables cannot express is printed as closely as possible.
/// Call `unsupported(_:family:)` first to get located errors for such rules.
public enum IptablesPrinter {
    /// The `iptables-save` text of the family's tables.
    public static func render(_ ruleset: Ruleset, family: Family) -> String {
        var sink = ByteSink(capacity: estimate(ruleset, family: family))
        defer { sink.deallocate() }
        for table in ruleset.tables where table.family == family {
            render(table, into: &sink)
        }
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    /// Appends the `iptables-save` text of the family's tables to `buffer`.
    public static func render(_ ruleset: Ruleset, family: Family, into buffer: inout [UInt8]) {
        var sink = ByteSink(capacity: estimate(ruleset, family: family))
        defer { sink.deallocate() }
        for table in ruleset.tables where table.family == family {
            render(table, into: &sink)
        }
        buffer.append(contentsOf: sink.bytes)
    }

    /// The `*table` … `COMMIT` block of one table.
    public static func render(_ table: Table) -> String {
        var sink = ByteSink(capacity: estimate(Ruleset(tables: [table]), family: table.family))
        defer { sink.deallocate() }
        render(table, into: &sink)
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    /// One rule as its `-A CHAIN …` line, without the newline.
    public static func render(_ rule: Rule, chain: String, family: Family) -> String {
        var sink = ByteSink(capacity: 256)
        defer { sink.deallocate() }
        var context = RuleContext(family: family)
        context.prefix = Array("-A \(chain)".utf8)
        appendRule(rule, context: &context, into: &sink)
        sink.removeLast()
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    /// A size guess good enough to avoid most regrowth.
    static func estimate(_ ruleset: Ruleset, family: Family) -> Int {
        var total = 0
        for table in ruleset.tables where table.family == family {
            for chain in table.chains {
                total += 64
                for rule in chain.rules { total += 32 + chain.name.utf8.count + rule.matches.count * 20 }
            }
        }
        return total
    }

    /// The chains of a table in the order `iptables-save` lists them: built-in chains in x_tables
    /// order (nil where the model has none of that name), other base chains, then user chains.
    static func listedChains(_ table: Table) -> [(name: String, chain: Chain?)] {
        var out: [(name: String, chain: Chain?)] = []
        let builtins = XtablesLayout.hooks[table.name] ?? []
        for hook in builtins {
            out.append((hook.rawValue, table.chains.first { $0.isBase && $0.name == hook.rawValue }))
        }
        for chain in table.chains where chain.isBase && !out.contains(where: { $0.name == chain.name }) {
            out.append((chain.name, chain))
        }
        for chain in table.chains where !chain.isBase {
            out.append((chain.name, chain))
        }
        return out
    }

    static func render(_ table: Table, into out: inout ByteSink) {
        out.put("*")
        out.put(table.name)
        out.put("\n")
        let chains = listedChains(table)
        for (name, chain) in chains {
            out.put(":")
            out.put(name)
            if let chain, !chain.isBase {
                out.put(" - [0:0]\n")
            } else {
                out.put(chain?.policy == .drop ? " DROP [0:0]\n" : " ACCEPT [0:0]\n")
            }
        }
        var context = RuleContext(family: table.family)
        for (name, chain) in chains {
            guard let chain, !chain.rules.isEmpty else { continue }
            context.prefix = Array("-A \(name)".utf8)
            for rule in chain.rules {
                appendRule(rule, context: &context, into: &out)
            }
        }
        out.put("COMMIT\n")
    }

    /// Chain-invariant bytes, computed once per chain.
    struct RuleContext {
        let family: Family
        var prefix: [UInt8] = []
        let defaultReject: StaticString

        init(family: Family) {
            self.family = family
            defaultReject = family == .ipv4
                ? " -j REJECT --reject-with icmp-port-unreachable"
                : " -j REJECT --reject-with icmp6-port-unreachable"
        }
    }

    @inline(__always)
    static func stateIndex(_ state: ConntrackState) -> Int {
        switch state {
        case .invalid: 0
        case .new: 1
        case .related: 2
        case .established: 3
        case .untracked: 4
        }
    }

    /// `--ctstate` lists for every subset of the states, by bit mask (bit i: `allCases[i]`).
    static let stateLists: [[UInt8]] = (0..<32).map { mask in
        Array(ConntrackState.allCases.enumerated().filter { mask & (1 << $0.offset) != 0 }
            .map(\.element.rawValue).joined(separator: ",").utf8)
    }

    @inline(__always)
    static func putNot(_ negated: Bool, into out: inout ByteSink) {
        if negated { out.put(" !") }
    }

    @inline(__always)
    static func isFullRange(_ range: PortRange) -> Bool { range.first == 0 && range.last == 65535 }

    /// Appends one rule line (with its newline).
    static func appendRule(_ rule: Rule, context: inout RuleContext, into out: inout ByteSink) {
        out.append(contentsOf: context.prefix)
        let matches = rule.matches
        let n = matches.count

        // Fixed-position matches: the first of each kind, in iptables-save's order.
        var source = -1, destination = -1, inInterface = -1, outInterface = -1, proto = -1
        var firstPort = -1
        for i in 0..<n {
            switch matches[i] {
            case .address(.source, _, _): if source < 0 { source = i }
            case .address(.destination, _, _): if destination < 0 { destination = i }
            case .inInterface: if inInterface < 0 { inInterface = i }
            case .outInterface: if outInterface < 0 { outInterface = i }
            case .protocol: if proto < 0 { proto = i }
            case .port: if firstPort < 0 { firstPort = i }
            default: break
            }
        }
        if source >= 0, case let .address(_, prefix, negated) = matches[source] {
            putAddressMatch(prefix, negated: negated, flag: " -s ", into: &out)
        }
        if destination >= 0, case let .address(_, prefix, negated) = matches[destination] {
            putAddressMatch(prefix, negated: negated, flag: " -d ", into: &out)
        }
        if inInterface >= 0, case let .inInterface(name, negated) = matches[inInterface] {
            putInterfaceMatch(name, negated: negated, flag: " -i ", into: &out)
        }
        if outInterface >= 0, case let .outInterface(name, negated) = matches[outInterface] {
            putInterfaceMatch(name, negated: negated, flag: " -o ", into: &out)
        }
        var protocolNumber: UInt8 = 0
        if proto >= 0, case let .protocol(p, negated) = matches[proto] {
            if !negated { protocolNumber = p.number }
            if p.number != 0 || negated {
                putNot(negated, into: &out)
                out.put(" -p ")
                out.append(contentsOf: IptablesNames.protocolBytes[Int(p.number)])
            }
        }

        // Match modules in the rule's order.
        var i = 0
        while i < n {
            switch matches[i] {
            case .port:
                if i == firstPort { putPortModule(matches, from: i, protocolNumber: protocolNumber, into: &out) }
            case let .addressType(direction, type, negated):
                out.put(" -m addrtype")
                var next: (AddressType, Bool)? = nil
                if i + 1 < n, case let .addressType(d2, t2, n2) = matches[i + 1], d2 != direction {
                    next = (t2, n2)
                    i += 1
                }
                if direction == .source {
                    putAddressType(" --src-type ", type, negated, into: &out)
                    if let next { putAddressType(" --dst-type ", next.0, next.1, into: &out) }
                } else {
                    if let next { putAddressType(" --src-type ", next.0, next.1, into: &out) }
                    putAddressType(" --dst-type ", type, negated, into: &out)
                }
            case let .conntrackState(states, negated):
                out.put(" -m conntrack")
                putNot(negated, into: &out)
                out.put(" --ctstate ")
                var mask = 0
                for state in states { mask |= 1 << stateIndex(state) }
                out.append(contentsOf: stateLists[mask])
            case let .comment(text):
                out.put(" -m comment --comment")
                out.putSaveString(text)
            default:
                break
            }
            i += 1
        }

        putTarget(rule.target, context: context, into: &out)
        out.append(UInt8(ascii: "\n"))
    }

    @inline(__always)
    static func putAddressMatch(_ prefix: Prefix, negated: Bool, flag: StaticString, into out: inout ByteSink) {
        if prefix.length == 0 && !negated { return }
        putNot(negated, into: &out)
        out.put(flag)
        out.putAddress(prefix.isCanonical ? prefix.address : prefix.network)
        out.append(UInt8(ascii: "/"))
        out.putDecimal(UInt32(prefix.length))
    }

    @inline(__always)
    static func putInterfaceMatch(_ name: InterfaceName, negated: Bool, flag: StaticString, into out: inout ByteSink) {
        if name.isWildcard && name.name.isEmpty && !negated { return }
        putNot(negated, into: &out)
        out.put(flag)
        out.put(name.name)
        if name.isWildcard { out.append(UInt8(ascii: "+")) }
    }

    @inline(__always)
    static func putAddressType(_ flag: StaticString, _ type: AddressType, _ negated: Bool, into out: inout ByteSink) {
        putNot(negated, into: &out)
        out.put(flag)
        out.put(type.rawValue)
    }

    /// Every port match of the rule as one module (the first of each direction counts).
    static func putPortModule(_ matches: [Match], from start: Int, protocolNumber: UInt8, into out: inout ByteSink) {
        var source: (PortRange, Bool)? = nil
        var destination: (PortRange, Bool)? = nil
        for i in start..<matches.count {
            guard case let .port(direction, range, negated) = matches[i] else { continue }
            if direction == .source { if source == nil { source = (range, negated) } }
            else if destination == nil { destination = (range, negated) }
        }
        // A negated 0:65535 matches nothing; iptables-nft drops the whole module (see `unsupported`).
        if let s = source, s.1, isFullRange(s.0) { return }
        if let d = destination, d.1, isFullRange(d.0) { return }
        switch protocolNumber {
        case TransportProtocol.udp.number: out.put(" -m udp")
        case TransportProtocol.sctp.number: out.put(" -m sctp")
        default: out.put(" -m tcp")
        }
        if let (range, negated) = source, !isFullRange(range) {
            putNot(negated, into: &out)
            out.put(" --sport ")
            out.putPorts(range, separator: UInt8(ascii: ":"))
        }
        if let (range, negated) = destination, !isFullRange(range) {
            putNot(negated, into: &out)
            out.put(" --dport ")
            out.putPorts(range, separator: UInt8(ascii: ":"))
        }
    }

    static func putNAT(_ destination: NATDestination, into out: inout ByteSink) {
        guard let ports = destination.ports else {
            out.putAddress(destination.address)
            return
        }
        if destination.address.family == .ipv6 {
            out.append(UInt8(ascii: "["))
            out.putAddress(destination.address)
            out.append(UInt8(ascii: "]"))
        } else {
            out.putAddress(destination.address)
        }
        out.append(UInt8(ascii: ":"))
        out.putPorts(ports, separator: UInt8(ascii: "-"))
    }

    static func putTarget(_ target: Target, context: RuleContext, into out: inout ByteSink) {
        switch target {
        case .accept: out.put(" -j ACCEPT")
        case .drop: out.put(" -j DROP")
        case .return: out.put(" -j RETURN")
        case .reject(let type):
            if let type {
                out.put(" -j REJECT --reject-with ")
                out.put(IptablesNames.canonicalReject(type, family: context.family) ?? type)
            } else {
                out.put(context.defaultReject)
            }
        case .jump(let name):
            out.put(" -j ")
            out.put(name)
        case .goto(let name):
            out.put(" -g ")
            out.put(name)
        case .dnat(let destination):
            out.put(" -j DNAT --to-destination ")
            putNAT(destination, into: &out)
        case .snat(let destination):
            out.put(" -j SNAT --to-source ")
            putNAT(destination, into: &out)
        case .masquerade(let ports):
            out.put(" -j MASQUERADE")
            if let ports {
                out.put(" --to-ports ")
                out.putPorts(ports, separator: UInt8(ascii: "-"))
            }
        case let .log(prefix, level):
            out.put(" -j LOG")
            if let prefix, !prefix.isEmpty {
                out.put(" --log-prefix")
                out.putSaveString(prefix)
            }
            if let level, level != IptablesNames.defaultLogLevel {
                out.put(" --log-level ")
                out.putDecimal(UInt32(level))
            }
        case .checksumFill:
            out.put(" -j CHECKSUM --checksum-fill")
        }
    }
}
