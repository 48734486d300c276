import WeirDiagnostics
import WeirModel

/// Reads `iptables-save` / `ip6tables-save` text (iptables 1.8.9 syntax) into the model.
///
/// Accepted: blank lines and `#` comments; `*table` for raw, mangle, filter and nat; chain lines
/// `:NAME POLICY [p:b]` (any counters; `-` for user chains); rule lines `-A CHAIN …`, optionally
/// after a `[p:b]` counter prefix; `COMMIT`. Words are split with iptables-restore's quoting
/// rules. In a rule: `-s`/`--source`/`--src`, `-d`/`--destination`/`--dst`,
/// `-i`/`--in-interface`, `-o`/`--out-interface`, `-p`/`--protocol` (each optionally after `!`);
/// match modules `-m tcp|udp|sctp` (`--sport`/`--source-port`, `--dport`/`--destination-port`,
/// numbers and `N:M`, `N:`, `:M` ranges; also without `-m` after `-p tcp` as iptables allows),
/// `-m addrtype` (`--src-type`, `--dst-type`, one type each), `-m conntrack` (`--ctstate`),
/// `-m comment` (`--comment`); targets `-j`/`--jump` ACCEPT, DROP, RETURN, REJECT
/// (`--reject-with`), DNAT (`--to-destination`), SNAT (`--to-source`), MASQUERADE
/// (`--to-ports`), LOG (`--log-prefix`, `--log-level`), CHECKSUM (`--checksum-fill`) or a user
/// chain, and `-g`/`--goto` a user chain.
///
/// Anything else (other tables, modules such as `-m state`, options, targets; unknown chains;
/// bad addresses, ports or protocols; a table without `COMMIT`) is an error located at the
/// offending word. Parsing goes on with the next line, so one call reports every bad line; a
/// line with an error contributes no rule.
///
/// The result is in canonical form: built-in chains come from `XtablesLayout` (all of them, with
/// the declared policies); each rule's matches are `-s`, `-d`, `-i`, `-o`, `-p` in that order,
/// then the modules in text order (a port module gives its `--sport` then its `--dport`; a bare
/// `-m tcp` gives a `0:65535` destination port match; an addrtype module its source type then
/// its destination type); prefixes have their host bits cleared; `-s 0.0.0.0/0`, `-i +` and
/// `-p all` give no match; the default REJECT type gives `reject(with: nil)`, LOG level 4 and an
/// empty prefix give nil. Each rule's provenance is the range of its line.
public enum IptablesImporter {
    public static func parse(_ file: SourceFile, family: Family) -> (ruleset: Ruleset, diagnostics: [Diagnostic]) {
        var parser = Parser(file: file, family: family)
        parser.run()
        return (parser.ruleset, parser.bag.diagnostics)
    }
}

struct LineError: Error {
    var message: String
    var start: Int
    var end: Int

    init(_ message: String, _ token: IptablesToken) {
        self.message = message
        self.start = token.start
        self.end = token.end
    }

    init(_ message: String, start: Int, end: Int) {
        self.message = message
        self.start = start
        self.end = end
    }
}

/// A rule whose jump target can only be checked when the table is complete.
struct PendingRule {
    var rule: Rule
    var reference: (name: String, token: IptablesToken, isGoto: Bool)?
}

struct TableBuilder {
    var name: String
    var token: IptablesToken
    var builtins: [Hook]
    /// An unsupported table: its lines are skipped until COMMIT.
    var ignored: Bool
    var policies: [String: ChainPolicy] = [:]
    var userChains: [String] = []
    var userChainSet: Set<String> = []
    var rules: [String: [PendingRule]] = [:]

    func isBuiltin(_ chain: String) -> Bool { builtins.contains { $0.rawValue == chain } }
    func hasChain(_ chain: String) -> Bool { isBuiltin(chain) || userChainSet.contains(chain) }
}

struct Parser {
    let file: SourceFile
    let family: Family
    var bag = DiagnosticBag()
    var ruleset = Ruleset()
    var current: TableBuilder? = nil
    var seenTables: Set<String> = []

    init(file: SourceFile, family: Family) {
        self.file = file
        self.family = family
    }

    func range(_ token: IptablesToken) -> SourceRange { SourceRange(file: file, start: token.start, end: token.end) }

    mutating func error(_ message: String, _ token: IptablesToken) { bag.error(message, at: range(token)) }

    mutating func run() {
        let bytes = file.bytes
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            line(from: lineStart, to: contentEnd)
            lineStart = lineEnd + 1
        }
        if let table = current {
            if !table.ignored {
                error("table '\(table.name)' is not closed by COMMIT", table.token)
            }
            current = nil
        }
    }

    mutating func line(from start: Int, to end: Int) {
        var first = start
        while first < end && (file.bytes[first] == UInt8(ascii: " ") || file.bytes[first] == UInt8(ascii: "\t")) { first += 1 }
        guard first < end, file.bytes[first] != UInt8(ascii: "#") else { return }
        let tokens: [IptablesToken]
        switch IptablesTokenizer.tokenize(file.bytes, from: first, to: end) {
        case .success(let list): tokens = list
        case .failure(let failure):
            bag.error("unterminated double quote", at: SourceRange(file: file, start: failure.start, end: failure.start + 1))
            return
        }
        guard let head = tokens.first else { return }
        let lineRange = SourceRange(file: file, start: start, end: end)
        do {
            if head.text.hasPrefix("*") && !head.quoted {
                try tableLine(tokens)
            } else if current?.ignored == true {
                if head.text == "COMMIT" { current = nil }
            } else if head.text.hasPrefix(":") && !head.quoted {
                try chainLine(tokens)
            } else if head.text == "COMMIT" {
                try commitLine(tokens)
            } else if head.text.hasPrefix("[") || head.text.hasPrefix("-") {
                try ruleLine(tokens, line: lineRange)
            } else {
                throw LineError("unrecognised line '\(head.text)'; expected '*table', ':CHAIN POLICY', '-A CHAIN …' or 'COMMIT'", head)
            }
        } catch let failure as LineError {
            bag.error(failure.message, at: SourceRange(file: file, start: failure.start, end: failure.end))
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    static let knownUnsupportedTables: Set<String> = ["security", "broute"]

    mutating func tableLine(_ tokens: [IptablesToken]) throws {
        let head = tokens[0]
        let name = String(head.text.dropFirst())
        var nameToken = head
        nameToken.start += 1
        if var open = current {
            if !open.ignored {
                error("table '\(open.name)' is not closed by COMMIT before the next table", head)
                open.ignored = false
                commit(open)
            }
            current = nil
        }
        if tokens.count > 1 { throw LineError("unexpected '\(tokens[1].text)' after the table name", tokens[1]) }
        guard !name.isEmpty else { throw LineError("'*' needs a table name", head) }
        guard let builtins = XtablesLayout.hooks[name] else {
            current = TableBuilder(name: name, token: nameToken, builtins: [], ignored: true)
            let what = Self.knownUnsupportedTables.contains(name) ? "is not supported" : "is not an iptables table"
            throw LineError("table '\(name)' \(what) (weir supports raw, mangle, filter and nat)", nameToken)
        }
        if seenTables.contains(name) {
            current = TableBuilder(name: name, token: nameToken, builtins: builtins, ignored: true)
            throw LineError("table '\(name)' appears twice", nameToken)
        }
        seenTables.insert(name)
        current = TableBuilder(name: name, token: nameToken, builtins: builtins, ignored: false)
    }

    mutating func chainLine(_ tokens: [IptablesToken]) throws {
        let head = tokens[0]
        guard current != nil else { throw LineError("chain line outside a table (no '*table' line before it)", head) }
        var nameToken = head
        nameToken.start += 1
        nameToken.text = String(head.text.dropFirst())
        let name = nameToken.text
        guard !name.isEmpty else { throw LineError("':' needs a chain name", head) }
        guard tokens.count >= 2 else {
            throw LineError("chain '\(name)' needs a policy (ACCEPT or DROP for built-in chains, '-' for user chains)", nameToken)
        }
        let policy = tokens[1]
        if tokens.count >= 3 {
            try counters(tokens[2])
            if tokens.count > 3 { throw LineError("unexpected '\(tokens[3].text)' after the counters", tokens[3]) }
        }
        if current!.isBuiltin(name) {
            switch policy.text {
            case "ACCEPT": current!.policies[name] = .accept
            case "DROP": current!.policies[name] = .drop
            case "-": throw LineError("built-in chain '\(name)' needs a policy, ACCEPT or DROP", policy)
            default: throw LineError("policy '\(policy.text)' is not supported (only ACCEPT and DROP)", policy)
            }
        } else {
            guard policy.text == "-" else {
                throw LineError("user chain '\(name)' cannot have policy '\(policy.text)' (use '-'); '\(name)' is not a built-in chain of table '\(current!.name)'", policy)
            }
            if name.utf8.count > IptablesNames.maxChainName {
                throw LineError("chain name '\(name)' is longer than \(IptablesNames.maxChainName) bytes", nameToken)
            }
            if IptablesNames.builtinTargets.contains(name) || IptablesNames.otherTargets.contains(name) {
                throw LineError("chain name '\(name)' is the name of an iptables target", nameToken)
            }
            if !current!.userChainSet.contains(name) {
                current!.userChainSet.insert(name)
                current!.userChains.append(name)
            }
        }
    }

    func counters(_ token: IptablesToken) throws {
        let bytes = Array(token.text.utf8)
        var ok = bytes.count >= 5 && bytes.first == UInt8(ascii: "[") && bytes.last == UInt8(ascii: "]")
        if ok {
            let inner = bytes[1..<(bytes.count - 1)].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            ok = inner.count == 2 && inner.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 >= 48 && $0 <= 57 } }
        }
        if !ok { throw LineError("bad counters '\(token.text)'; expected [packets:bytes]", token) }
    }

    mutating func commitLine(_ tokens: [IptablesToken]) throws {
        guard let table = current else { throw LineError("COMMIT without a table", tokens[0]) }
        current = nil
        commit(table)
        if tokens.count > 1 { throw LineError("unexpected '\(tokens[1].text)' after COMMIT", tokens[1]) }
    }

    mutating func commit(_ builder: TableBuilder) {
        var chains: [Chain] = []
        func resolve(_ list: [PendingRule]) -> [Rule] {
            var out: [Rule] = []
            out.reserveCapacity(list.count)
            for pending in list {
                if let reference = pending.reference, !builder.userChainSet.contains(reference.name) {
                    let flag = reference.isGoto ? "-g" : "-j"
                    if builder.isBuiltin(reference.name) {
                        bag.error("\(flag) \(reference.name): cannot jump to built-in chain '\(reference.name)'", at: range(reference.token))
                    } else {
                        bag.error("\(flag) \(reference.name): no chain or target '\(reference.name)' in table '\(builder.name)'", at: range(reference.token))
                    }
                    continue
                }
                out.append(pending.rule)
            }
            return out
        }
        for hook in builder.builtins {
            let name = hook.rawValue
            chains.append(Chain(
                name: name,
                kind: .base(hook: hook, priority: XtablesLayout.priority(table: builder.name, hook: hook), policy: builder.policies[name] ?? .accept),
                rules: resolve(builder.rules[name] ?? [])))
        }
        for name in builder.userChains {
            chains.append(Chain(name: name, kind: .user, rules: resolve(builder.rules[name] ?? [])))
        }
        ruleset.add(Table(family: family, name: builder.name, chains: chains))
    }

    static let otherCommands: Set<String> = [
        "-I", "--insert", "-D", "--delete", "-R", "--replace", "-N", "--new-chain", "-X", "--delete-chain",
        "-F", "--flush", "-P", "--policy", "-Z", "--zero", "-E", "--rename-chain", "-L", "--list", "-S",
        "--list-rules", "-C", "--check",
    ]

    mutating func ruleLine(_ tokens: [IptablesToken], line: SourceRange) throws {
        guard current != nil else { throw LineError("rule outside a table (no '*table' line before it)", tokens[0]) }
        var index = 0
        if tokens[0].text.hasPrefix("[") {
            try counters(tokens[0])
            index = 1
        }
        guard index < tokens.count else { throw LineError("counters must be followed by '-A CHAIN'", tokens[0]) }
        let command = tokens[index]
        guard command.text == "-A" || command.text == "--append" else {
            if Self.otherCommands.contains(command.text) {
                throw LineError("command '\(command.text)' is not supported in iptables-save text; only '-A' rules are", command)
            }
            throw LineError("expected '-A CHAIN', found '\(command.text)'", command)
        }
        index += 1
        guard index < tokens.count else { throw LineError("'\(command.text)' needs a chain name", command) }
        let chainToken = tokens[index]
        guard current!.hasChain(chainToken.text) else {
            throw LineError("chain '\(chainToken.text)' is not declared in table '\(current!.name)'", chainToken)
        }
        var rule = RuleParser(tokens: tokens, index: index + 1, family: family, command: command)
        try rule.parse()
        guard let target = rule.target else {
            throw LineError("rule has no target (-j or -g); weir needs one", command)
        }
        let built = Rule(rule.matches(), target, provenance: line)
        current!.rules[chainToken.text, default: []].append(PendingRule(rule: built, reference: rule.reference))
    }
}

/// The options of one `-A` line.
struct RuleParser {
    let tokens: [IptablesToken]
    var index: Int
    let family: Family
    let command: IptablesToken

    var source: Match? = nil
    var destination: Match? = nil
    var inInterface: Match? = nil
    var outInterface: Match? = nil
    var proto: Match? = nil
    var sawSource = false, sawDestination = false, sawIn = false, sawOut = false, sawProtocol = false
    /// The non-negated protocol, if any (0 for `-p all`).
    var protocolNumber: UInt8? = nil

    enum ModuleKind: Equatable { case ports, addrtype, conntrack, comment }

    struct Module {
        var kind: ModuleKind
        var token: IptablesToken
        var sourcePort: (PortRange, Bool)? = nil
        var destinationPort: (PortRange, Bool)? = nil
        var sourceType: (AddressType, Bool)? = nil
        var destinationType: (AddressType, Bool)? = nil
        var states: (Set<ConntrackState>, Bool)? = nil
        var comment: String? = nil
    }
    var modules: [Module] = []

    var targetName: String? = nil
    var targetToken: IptablesToken? = nil
    var target: Target? = nil
    var reference: (name: String, token: IptablesToken, isGoto: Bool)? = nil
    var seenTargetOptions: Set<String> = []

    var negation: IptablesToken? = nil

    init(tokens: [IptablesToken], index: Int, family: Family, command: IptablesToken) {
        self.tokens = tokens
        self.index = index
        self.family = family
        self.command = command
    }

    var familyName: String { family == .ipv4 ? "IPv4" : "IPv6" }

    mutating func value(for option: IptablesToken) throws -> IptablesToken {
        index += 1
        guard index < tokens.count else { throw LineError("option '\(option.text)' needs a value", option) }
        return tokens[index]
    }

    /// Takes the pending `!`, if any.
    mutating func takeNegation() -> Bool {
        defer { negation = nil }
        return negation != nil
    }

    func refuseNegation(_ option: IptablesToken) throws {
        if let negation { throw LineError("'!' cannot negate '\(option.text)'", negation) }
    }

    static let portOptions: [String: Direction] = [
        "--sport": .source, "--source-port": .source, "--dport": .destination, "--destination-port": .destination,
    ]
    static let unsupportedPortOptions: Set<String> = ["--tcp-flags", "--syn", "--tcp-option", "--chunk-types"]
    static let addrtypeOptions: Set<String> = ["--src-type", "--dst-type"]
    static let unsupportedAddrtypeOptions: Set<String> = ["--limit-iface-in", "--limit-iface-out"]
    static let unsupportedConntrackOptions: Set<String> = [
        "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst", "--ctorigsrcport",
        "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport", "--ctstatus", "--ctexpire", "--ctdir",
    ]
    static let unsupportedTargetOptions: [String: Set<String>] = [
        "LOG": ["--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "--log-macdecode"],
        "DNAT": ["--random", "--persistent", "--random-fully"],
        "SNAT": ["--random", "--persistent", "--random-fully"],
        "MASQUERADE": ["--random", "--random-fully"],
    ]

    mutating func parse() throws {
        while index < tokens.count {
            let token = tokens[index]
            switch token.text {
            case "!":
                if let negation { throw LineError("'!' given twice", negation) }
                negation = token
            case "-s", "--source", "--src":
                guard !sawSource else { throw LineError("option '\(token.text)' given twice", token) }
                sawSource = true
                let negated = takeNegation()
                source = try address(.source, negated: negated, option: token, value: value(for: token))
            case "-d", "--destination", "--dst":
                guard !sawDestination else { throw LineError("option '\(token.text)' given twice", token) }
                sawDestination = true
                let negated = takeNegation()
                destination = try address(.destination, negated: negated, option: token, value: value(for: token))
            case "-i", "--in-interface":
                guard !sawIn else { throw LineError("option '\(token.text)' given twice", token) }
                sawIn = true
                let negated = takeNegation()
                if let name = try interface(value(for: token), negated: negated) { inInterface = .inInterface(name, negated: negated) }
            case "-o", "--out-interface":
                guard !sawOut else { throw LineError("option '\(token.text)' given twice", token) }
                sawOut = true
                let negated = takeNegation()
                if let name = try interface(value(for: token), negated: negated) { outInterface = .outInterface(name, negated: negated) }
            case "-p", "--protocol":
                guard !sawProtocol else { throw LineError("option '\(token.text)' given twice", token) }
                sawProtocol = true
                let negated = takeNegation()
                let text = try value(for: token)
                guard let number = IptablesNames.parseProtocol(text.text) else {
                    throw LineError("unknown protocol '\(text.text)'", text)
                }
                if number == 0 {
                    if negated { throw LineError("'! -p \(text.text)' matches nothing", text) }
                } else {
                    proto = .protocol(TransportProtocol(number: number), negated: negated)
                }
                if !negated { protocolNumber = number }
            case "-m", "--match":
                try refuseNegation(token)
                try module(value(for: token))
            case "-j", "--jump", "-g", "--goto":
                try refuseNegation(token)
                try targetOption(token, value: value(for: token))
            case "-c", "--set-counters":
                throw LineError("option '\(token.text)' is not supported (put counters as [packets:bytes] before -A)", token)
            default:
                if token.text.hasPrefix("-") {
                    try moduleOrTargetOption(token)
                } else {
                    throw LineError("unexpected '\(token.text)'", token)
                }
            }
            index += 1
        }
        if let negation { throw LineError("'!' is not followed by an option", negation) }
        for module in modules {
            switch module.kind {
            case .addrtype where module.sourceType == nil && module.destinationType == nil:
                throw LineError("-m addrtype needs --src-type or --dst-type", module.token)
            case .conntrack where module.states == nil:
                throw LineError("-m conntrack needs --ctstate", module.token)
            case .comment where module.comment == nil:
                throw LineError("-m comment needs --comment", module.token)
            default:
                break
            }
        }
        try finishTarget()
    }

    func address(_ direction: Direction, negated: Bool, option: IptablesToken, value: IptablesToken) throws -> Match? {
        let text = value.text
        if text.contains(",") {
            throw LineError("address lists ('\(text)') are not supported; iptables would make one rule per address", value)
        }
        guard let prefix = Prefix(text) else {
            throw LineError("bad \(familyName) address or prefix '\(text)'", value)
        }
        guard prefix.family == family else {
            throw LineError("\(prefix.family == .ipv4 ? "IPv4" : "IPv6") address '\(text)' in \(family == .ipv4 ? "iptables" : "ip6tables") text", value)
        }
        if prefix.length == 0 {
            if negated { throw LineError("'! \(option.text) \(text)' matches nothing and iptables refuses it", value) }
            return nil
        }
        return .address(direction, prefix.canonical, negated: negated)
    }

    func interface(_ value: IptablesToken, negated: Bool) throws -> InterfaceName? {
        let text = value.text
        guard !text.isEmpty else { throw LineError("empty interface name", value) }
        guard text.utf8.count <= IptablesNames.maxInterface else {
            throw LineError("interface name '\(text)' is longer than \(IptablesNames.maxInterface) bytes", value)
        }
        if text == "+" && !negated { return nil }
        return InterfaceName(iptables: text)
    }

    mutating func module(_ value: IptablesToken) throws {
        let name = value.text
        switch name {
        case "tcp", "udp", "sctp":
            let wanted = IptablesNames.parseProtocol(name)!
            guard protocolNumber == wanted else {
                throw LineError("-m \(name) needs -p \(name) before it", value)
            }
            if modules.contains(where: { $0.kind == .ports }) {
                throw LineError("second port match module '-m \(name)'; iptables merges them, write one module", value)
            }
            modules.append(Module(kind: .ports, token: value))
        case "addrtype":
            modules.append(Module(kind: .addrtype, token: value))
        case "conntrack":
            modules.append(Module(kind: .conntrack, token: value))
        case "comment":
            modules.append(Module(kind: .comment, token: value))
        case "state":
            throw LineError("match module 'state' is not supported; use '-m conntrack --ctstate'", value)
        default:
            throw LineError("match module '\(name)' is not supported", value)
        }
    }

    func lastModule(_ kind: ModuleKind) -> Int? { modules.lastIndex { $0.kind == kind } }

    mutating func moduleOrTargetOption(_ option: IptablesToken) throws {
        let name = option.text
        if let targetName, try targetArgument(option, target: targetName) { return }
        if let direction = Self.portOptions[name] {
            var at = lastModule(.ports)
            if at == nil {
                guard let number = protocolNumber, TransportProtocol(number: number).hasPorts else {
                    throw LineError("option '\(name)' needs -p tcp, -p udp or -p sctp before it", option)
                }
                modules.append(Module(kind: .ports, token: option))
                at = modules.count - 1
            }
            let negated = takeNegation()
            let text = try value(for: option)
            let range = try ports(text)
            if direction == .source {
                guard modules[at!].sourcePort == nil else { throw LineError("option '\(name)' given twice", option) }
                modules[at!].sourcePort = (range, negated)
            } else {
                guard modules[at!].destinationPort == nil else { throw LineError("option '\(name)' given twice", option) }
                modules[at!].destinationPort = (range, negated)
            }
            return
        }
        if Self.addrtypeOptions.contains(name) {
            guard let at = lastModule(.addrtype) else { throw LineError("option '\(name)' needs -m addrtype before it", option) }
            let negated = takeNegation()
            let text = try value(for: option)
            if text.text.contains(",") {
                throw LineError("address type lists ('\(text.text)') are not supported; use one type", text)
            }
            guard let type = AddressType(rawValue: text.text.uppercased()) else {
                throw LineError("unknown address type '\(text.text)'", text)
            }
            if family == .ipv6 && IptablesNames.addressTypesNotForIPv6.contains(type) {
                throw LineError("address type \(type.rawValue) cannot be matched in ip6tables", text)
            }
            if name == "--src-type" {
                guard modules[at].sourceType == nil else { throw LineError("option '\(name)' given twice", option) }
                modules[at].sourceType = (type, negated)
            } else {
                guard modules[at].destinationType == nil else { throw LineError("option '\(name)' given twice", option) }
                modules[at].destinationType = (type, negated)
            }
            return
        }
        if name == "--ctstate" {
            guard let at = lastModule(.conntrack) else { throw LineError("option '--ctstate' needs -m conntrack before it", option) }
            guard modules[at].states == nil else { throw LineError("option '--ctstate' given twice", option) }
            let negated = takeNegation()
            let text = try value(for: option)
            var states: Set<ConntrackState> = []
            for part in text.text.split(separator: ",", omittingEmptySubsequences: false) {
                let upper = part.uppercased()
                if let state = ConntrackState(rawValue: upper) {
                    states.insert(state)
                } else if upper == "SNAT" || upper == "DNAT" {
                    throw LineError("conntrack state '\(part)' is not supported", text)
                } else {
                    throw LineError("unknown conntrack state '\(part)'", text)
                }
            }
            modules[at].states = (states, negated)
            return
        }
        if name == "--comment" {
            guard let at = lastModule(.comment) else { throw LineError("option '--comment' needs -m comment before it", option) }
            guard modules[at].comment == nil else { throw LineError("option '--comment' given twice", option) }
            try refuseNegation(option)
            let text = try value(for: option)
            guard text.text.utf8.count <= IptablesNames.maxComment else {
                throw LineError("comment is longer than \(IptablesNames.maxComment) bytes", text)
            }
            modules[at].comment = text.text
            return
        }
        if Self.unsupportedPortOptions.contains(name), let module = modules.last(where: { $0.kind == .ports }) {
            throw LineError("option '\(name)' of -m \(module.token.text.hasPrefix("-") ? "tcp" : module.token.text) is not supported", option)
        }
        if Self.unsupportedAddrtypeOptions.contains(name), lastModule(.addrtype) != nil {
            throw LineError("option '\(name)' of -m addrtype is not supported", option)
        }
        if Self.unsupportedConntrackOptions.contains(name), lastModule(.conntrack) != nil {
            throw LineError("option '\(name)' of -m conntrack is not supported", option)
        }
        if name == "--state" {
            throw LineError("option '--state' belongs to '-m state', which is not supported; use '-m conntrack --ctstate'", option)
        }
        throw LineError("unknown option '\(name)'", option)
    }

    func ports(_ token: IptablesToken) throws -> PortRange {
        func number(_ text: Substring) -> UInt16? {
            guard !text.isEmpty, text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return UInt16(text)
        }
        let parts = token.text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 1 {
            guard let port = number(parts[0]) else {
                throw LineError("bad port '\(token.text)' (expected a number 0-65535 or a range N:M)", token)
            }
            return PortRange(port)
        }
        let low = parts[0].isEmpty ? 0 : number(parts[0])
        let high = parts[1].isEmpty ? 65535 : number(parts[1])
        guard let low, let high else {
            throw LineError("bad port range '\(token.text)' (expected N:M with numbers 0-65535)", token)
        }
        guard low <= high else { throw LineError("invalid port range '\(token.text)' (min > max)", token) }
        return PortRange(low, high)
    }

    mutating func targetOption(_ option: IptablesToken, value: IptablesToken) throws {
        if let targetToken { throw LineError("rule has a second target; the first is '\(targetToken.text)'", option) }
        let isGoto = option.text == "-g" || option.text == "--goto"
        let name = value.text
        targetToken = value
        if IptablesNames.builtinTargets.contains(name) {
            if isGoto { throw LineError("-g needs a user chain, not the target '\(name)'", value) }
            targetName = name
            return
        }
        if IptablesNames.otherTargets.contains(name) {
            throw LineError("target '\(name)' is not supported", value)
        }
        guard !name.isEmpty else { throw LineError("empty target name", value) }
        target = isGoto ? .goto(name) : .jump(name)
        reference = (name, value, isGoto)
    }

    /// Handles an option of the current target; false when the option is not one of its.
    mutating func targetArgument(_ option: IptablesToken, target name: String) throws -> Bool {
        let known: [String: Set<String>] = [
            "REJECT": ["--reject-with"],
            "DNAT": ["--to-destination"],
            "SNAT": ["--to-source"],
            "MASQUERADE": ["--to-ports"],
            "LOG": ["--log-prefix", "--log-level"],
            "CHECKSUM": ["--checksum-fill"],
        ]
        if Self.unsupportedTargetOptions[name]?.contains(option.text) == true {
            throw LineError("option '\(option.text)' of \(name) is not supported", option)
        }
        guard known[name]?.contains(option.text) == true else { return false }
        try refuseNegation(option)
        guard seenTargetOptions.insert(option.text).inserted else {
            throw LineError("option '\(option.text)' given twice", option)
        }
        switch option.text {
        case "--reject-with":
            let text = try value(for: option)
            guard let canonical = IptablesNames.canonicalReject(text.text, family: family) else {
                throw LineError("unknown \(family == .ipv4 ? "iptables" : "ip6tables") REJECT type '\(text.text)'", text)
            }
            if canonical == "tcp-reset" && protocolNumber != TransportProtocol.tcp.number {
                throw LineError("REJECT --reject-with tcp-reset needs -p tcp", text)
            }
            target = .reject(with: canonical == IptablesNames.defaultReject(family) ? nil : canonical)
        case "--to-destination", "--to-source":
            let text = try value(for: option)
            let destination = try natDestination(text)
            target = option.text == "--to-destination" ? .dnat(destination) : .snat(destination)
        case "--to-ports":
            let text = try value(for: option)
            target = .masquerade(ports: try natPorts(text.text[...], token: text))
        case "--log-prefix":
            let text = try value(for: option)
            guard text.text.utf8.count <= IptablesNames.maxLogPrefix else {
                throw LineError("log prefix is longer than \(IptablesNames.maxLogPrefix) bytes", text)
            }
            if case let .log(_, level) = target {
                target = .log(prefix: text.text.isEmpty ? nil : text.text, level: level)
            } else {
                target = .log(prefix: text.text.isEmpty ? nil : text.text, level: nil)
            }
        case "--log-level":
            let text = try value(for: option)
            var level: UInt8? = nil
            if let n = UInt8(text.text), n <= 7, text.text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                level = n
            } else if let n = IptablesNames.logLevels[text.text.lowercased()] {
                level = n
            }
            guard let level else { throw LineError("bad log level '\(text.text)' (expected 0-7 or a syslog level name)", text) }
            let prefix: String? = if case let .log(prefix, _) = target { prefix } else { nil }
            target = .log(prefix: prefix, level: level == IptablesNames.defaultLogLevel ? nil : level)
        case "--checksum-fill":
            target = .checksumFill
        default:
            return false
        }
        return true
    }

    func natPorts(_ text: Substring, token: IptablesToken) throws -> PortRange {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        func number(_ s: Substring) -> UInt16? {
            guard !s.isEmpty, s.utf8.count <= 5, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return UInt16(s)
        }
        guard let low = number(parts[0]), let high = parts.count == 2 ? number(parts[1]) : low else {
            throw LineError("bad port or port range '\(text)' in '\(token.text)' (expected N or N-M)", token)
        }
        guard low <= high else { throw LineError("invalid port range '\(text)' (min > max)", token) }
        return PortRange(low, high)
    }

    func natDestination(_ token: IptablesToken) throws -> NATDestination {
        let text = token.text
        var addressText: Substring
        var portText: Substring? = nil
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw LineError("bad NAT address '\(text)' (missing ']')", token)
            }
            addressText = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw LineError("bad NAT address '\(text)'", token) }
                portText = rest.dropFirst()
            }
        } else if family == .ipv4, let colon = text.firstIndex(of: ":") {
            addressText = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            addressText = text[...]
        }
        if addressText.contains("-") {
            throw LineError("NAT address ranges ('\(addressText)') are not supported", token)
        }
        guard let address = IPAddress(addressText), !addressText.contains("/") else {
            throw LineError("bad \(familyName) NAT address '\(addressText)'", token)
        }
        guard address.family == family else {
            throw LineError("\(address.family == .ipv4 ? "IPv4" : "IPv6") NAT address '\(addressText)' in \(family == .ipv4 ? "iptables" : "ip6tables") text", token)
        }
        var ports: PortRange? = nil
        if let portText { ports = try natPorts(portText, token: token) }
        return NATDestination(address: address, ports: ports)
    }

    mutating func finishTarget() throws {
        guard let targetName, let targetToken else { return }
        switch targetName {
        case "ACCEPT": target = .accept
        case "DROP": target = .drop
        case "RETURN": target = .return
        case "REJECT": if target == nil { target = .reject(with: nil) }
        case "DNAT": if target == nil { throw LineError("DNAT needs --to-destination", targetToken) }
        case "SNAT": if target == nil { throw LineError("SNAT needs --to-source", targetToken) }
        case "MASQUERADE": if target == nil { target = .masquerade(ports: nil) }
        case "LOG": if target == nil { target = .log(prefix: nil, level: nil) }
        case "CHECKSUM": if target == nil { throw LineError("CHECKSUM needs --checksum-fill", targetToken) }
        default: break
        }
        switch target {
        case .dnat(let d), .snat(let d):
            if d.ports != nil, !(protocolNumber.map { TransportProtocol(number: $0).hasPorts } ?? false) {
                throw LineError("\(targetName) with a port needs -p tcp, -p udp or -p sctp", targetToken)
            }
        case .masquerade(let ports?):
            _ = ports
            if !(protocolNumber.map { TransportProtocol(number: $0).hasPorts } ?? false) {
                throw LineError("MASQUERADE --to-ports needs -p tcp, -p udp or -p sctp", targetToken)
            }
        default: break
        }
    }

    /// The matches in canonical order.
    func matches() -> [Match] {
        var out: [Match] = []
        out.reserveCapacity(5 + modules.count * 2)
        if let source { out.append(source) }
        if let destination { out.append(destination) }
        if let inInterface { out.append(inInterface) }
        if let outInterface { out.append(outInterface) }
        if let proto { out.append(proto) }
        for module in modules {
            switch module.kind {
            case .ports:
                if let (range, negated) = module.sourcePort { out.append(.port(.source, range, negated: negated)) }
                if let (range, negated) = module.destinationPort { out.append(.port(.destination, range, negated: negated)) }
                if module.sourcePort == nil && module.destinationPort == nil {
                    out.append(.port(.destination, PortRange(0, 65535)))
                }
            case .addrtype:
                if let (type, negated) = module.sourceType { out.append(.addressType(.source, type, negated: negated)) }
                if let (type, negated) = module.destinationType { out.append(.addressType(.destination, type, negated: negated)) }
            case .conntrack:
                if let (states, negated) = module.states { out.append(.conntrackState(states, negated: negated)) }
            case .comment:
                if let comment = module.comment { out.append(.comment(comment)) }
            }
        }
        return out
    }
}
