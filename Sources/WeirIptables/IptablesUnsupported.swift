import WeirDiagnostics
import WeirModel

extension IptablesPrinter {
    /// Errors for everything in the family's tables that `render` cannot print faithfully or that
    /// `iptables-restore` would refuse. `render` never drops or rejects anything itself, so a
    /// caller must check this list (empty means the text is exact) before using the output.
    ///
    /// Rule errors are located at `rule.provenance`; table and chain errors at the provenance of
    /// their first rule (or unlocated). Reported:
    /// * tables other than raw, mangle, filter, nat; base chains that are not the table's
    ///   built-in chains (name, hook and priority must match `XtablesLayout`); bad chain names;
    /// * a rule with two matches of one of `-s`, `-d`, `-i`, `-o`, `-p`, or with two port matches
    ///   of one direction; `-i` in OUTPUT/POSTROUTING or `-o` in INPUT/PREROUTING;
    /// * an address, NAT address or prefix of the other family; `! -s 0.0.0.0/0`; protocol 0;
    /// * a port match without a non-negated tcp, udp or sctp protocol match; a negated `0:65535`;
    /// * interface names that are empty, too long or contain spaces or control bytes;
    /// * address types the kernel refuses for IPv6 (BROADCAST, BLACKHOLE, PROHIBIT, THROW, NAT,
    ///   XRESOLVE); an empty conntrack state set; comments or log prefixes that are too long or hold a
    ///   newline or NUL; log levels above 7;
    /// * an unknown REJECT type; `tcp-reset` without `-p tcp`; a jump or goto to a chain the table
    ///   lacks or to a built-in chain; NAT targets outside the nat table; NAT and MASQUERADE ports
    ///   without a tcp, udp or sctp protocol match; CHECKSUM outside the mangle table.
    public static func unsupported(_ ruleset: Ruleset, family: Family) -> [Diagnostic] {
        var bag = DiagnosticBag()
        for table in ruleset.tables where table.family == family {
            check(table, into: &bag)
        }
        return bag.diagnostics
    }

    static func check(_ table: Table, into bag: inout DiagnosticBag) {
        let tableAnchor = table.chains.lazy.compactMap { $0.rules.first?.provenance }.first
        guard let builtins = XtablesLayout.hooks[table.name] else {
            bag.error("iptables has no table '\(table.name)' (only raw, mangle, filter and nat)", at: tableAnchor)
            return
        }
        let chainNames = Set(table.chains.map(\.name))
        for chain in table.chains {
            let anchor = chain.rules.first?.provenance ?? tableAnchor
            if case let .base(hook, priority, _) = chain.kind {
                if !builtins.contains(hook) || chain.name != hook.rawValue {
                    bag.error("base chain '\(chain.name)' on hook \(hook.rawValue) is not a built-in chain of iptables table '\(table.name)'", at: anchor)
                } else if priority != XtablesLayout.priority(table: table.name, hook: hook) {
                    bag.error("base chain '\(chain.name)' of table '\(table.name)' has priority \(priority); iptables fixes it at \(XtablesLayout.priority(table: table.name, hook: hook))", at: anchor)
                }
            } else {
                if let problem = chainNameProblem(chain.name) {
                    bag.error("user chain name '\(chain.name)' \(problem)", at: anchor)
                }
                if builtins.contains(where: { $0.rawValue == chain.name }) {
                    bag.error("user chain '\(chain.name)' has the name of a built-in chain", at: anchor)
                }
            }
            for rule in chain.rules {
                check(rule, chain: chain, table: table, chainNames: chainNames, into: &bag)
            }
        }
    }

    static func chainNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > IptablesNames.maxChainName { return "is longer than \(IptablesNames.maxChainName) bytes" }
        if name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") }) {
            return "contains a space, quote or control character"
        }
        if name.hasPrefix("-") || name.hasPrefix("!") { return "starts with '-' or '!'" }
        if IptablesNames.builtinTargets.contains(name) || IptablesNames.otherTargets.contains(name) {
            return "is the name of an iptables target"
        }
        return nil
    }

    static func check(_ rule: Rule, chain: Chain, table: Table, chainNames: Set<String>, into bag: inout DiagnosticBag) {
        let at = rule.provenance
        let family = table.family
        func error(_ message: String) { bag.error(message + " (chain \(chain.name), table \(table.name))", at: at) }

        // How often each single-use option occurs (a fixed array: this runs for every rule).
        let keys = ["-s", "-d", "-i", "-o", "-p", "--sport", "--dport"]
        var seen = [Int](repeating: 0, count: keys.count)
        func count(_ key: String) { seen[keys.firstIndex(of: key)!] += 1 }
        var portsCapable = false
        var protocolNumber: UInt8? = nil
        var hasPorts = false
        for match in rule.matches {
            switch match {
            case let .address(direction, prefix, negated):
                count(direction == .source ? "-s" : "-d")
                if prefix.family != family {
                    error("\(prefix.family == .ipv4 ? "IPv4" : "IPv6") address \(prefix) in an \(family == .ipv4 ? "iptables" : "ip6tables") rule")
                }
                if prefix.length == 0 && negated {
                    error("'! \(direction == .source ? "-s" : "-d") \(prefix)' matches nothing and iptables refuses it")
                }
            case let .inInterface(name, _), let .outInterface(name, _):
                let isIn: Bool
                if case .inInterface = match { isIn = true } else { isIn = false }
                count(isIn ? "-i" : "-o")
                if let problem = interfaceProblem(name) { error("interface name '\(name)' \(problem)") }
                if let hook = chain.hook {
                    if isIn && (hook == .output || hook == .postrouting) {
                        error("-i cannot be used in the \(hook.rawValue) chain")
                    } else if !isIn && (hook == .input || hook == .prerouting) {
                        error("-o cannot be used in the \(hook.rawValue) chain")
                    }
                }
            case let .protocol(p, negated):
                count("-p")
                if p.number == 0 { error("protocol 0 cannot be matched by iptables (-p 0 means any protocol)") }
                if !negated && protocolNumber == nil {
                    protocolNumber = p.number
                    portsCapable = p.hasPorts
                }
            case let .port(direction, range, negated):
                hasPorts = true
                count(direction == .source ? "--sport" : "--dport")
                if negated && isFullRange(range) {
                    error("negated port range 0:65535 matches nothing and iptables cannot keep it")
                }
            case let .conntrackState(states, _):
                if states.isEmpty { error("conntrack state match with no states") }
            case let .addressType(_, type, _):
                if family == .ipv6 && IptablesNames.addressTypesNotForIPv6.contains(type) {
                    error("address type \(type.rawValue) cannot be matched in ip6tables")
                }
            case let .comment(text):
                if let problem = stringProblem(text, max: IptablesNames.maxComment) { error("comment \(problem)") }
            }
        }
        for (key, n) in zip(keys, seen) where n > 1 {
            let what = key.hasPrefix("--") ? "\(key) port matches" : "\(key) matches"
            error("rule has \(n) \(what); iptables allows one per rule")
        }
        if hasPorts && !portsCapable {
            error("port match needs a non-negated tcp, udp or sctp protocol match in the same rule")
        }

        let natTables = "nat"
        switch rule.target {
        case .accept, .drop, .return:
            break
        case .reject(let type):
            if let type {
                if let canonical = IptablesNames.canonicalReject(type, family: family) {
                    if canonical == "tcp-reset" && protocolNumber != TransportProtocol.tcp.number {
                        error("REJECT --reject-with tcp-reset needs -p tcp")
                    }
                } else {
                    error("unknown \(family == .ipv4 ? "iptables" : "ip6tables") REJECT type '\(type)'")
                }
            }
        case .jump(let name), .goto(let name):
            let flag = rule.target == .jump(name) ? "-j" : "-g"
            if let target = table.chain(named: name) {
                if target.isBase { error("\(flag) \(name): cannot jump to a built-in chain") }
            } else if !chainNames.contains(name) {
                error("\(flag) \(name): table '\(table.name)' has no chain '\(name)'")
            }
        case .dnat(let destination), .snat(let destination):
            let name = if case .dnat = rule.target { "DNAT" } else { "SNAT" }
            if table.name != natTables { error("\(name) can only be used in the nat table") }
            if destination.address.family != family {
                error("\(name) to \(destination.address), an address of the other family")
            }
            if destination.ports != nil && !portsCapable {
                error("\(name) with a port needs a tcp, udp or sctp protocol match")
            }
        case .masquerade(let ports):
            if table.name != natTables { error("MASQUERADE can only be used in the nat table") }
            if ports != nil && !portsCapable {
                error("MASQUERADE --to-ports needs a tcp, udp or sctp protocol match")
            }
        case let .log(prefix, level):
            if let prefix, let problem = stringProblem(prefix, max: IptablesNames.maxLogPrefix) {
                error("log prefix \(problem)")
            }
            if let level, level > 7 { error("log level \(level) is not a syslog level (0-7)") }
        case .checksumFill:
            if table.name != "mangle" { error("CHECKSUM can only be used in the mangle table") }
        }
    }

    static func interfaceProblem(_ name: InterfaceName) -> String? {
        if name.name.isEmpty && !name.isWildcard { return "is empty" }
        let length = name.name.utf8.count + (name.isWildcard ? 1 : 0)
        if length > IptablesNames.maxInterface { return "is longer than \(IptablesNames.maxInterface) bytes" }
        if name.name.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") || $0 == UInt8(ascii: "\\") }) {
            return "contains a space, quote, backslash or non-ASCII byte"
        }
        return nil
    }

    static func stringProblem(_ text: String, max: Int) -> String? {
        if text.utf8.count > max { return "is longer than \(max) bytes" }
        if text.utf8.contains(where: { $0 == 0 || $0 == 0x0a || $0 == 0x0d }) { return "contains a newline or NUL" }
        return nil
    }
}
