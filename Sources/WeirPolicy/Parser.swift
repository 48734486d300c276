import WeirDiagnostics
import WeirModel

/// A hand-written recursive-descent parser for `.weir` files.
///
/// It never throws and never gives up: a statement it cannot read becomes a diagnostic, and
/// parsing resumes at the next statement. Blocks do not nest, so no input can make it recurse
/// deeply.
public struct Parser {
    private let file: SourceFile
    private var tokens: [Token]
    private var index = 0
    private var diagnostics: [Diagnostic] = []
    /// Set by a block statement whose value, not its keyword, is what later checks point at
    /// (`bridge NAME`, `subnet PREFIX`, …); `parseBlock` locates the setting there.
    private var statementRange: SourceRange? = nil

    /// Parses a whole file into a syntax tree plus every error found.
    public static func parse(_ file: SourceFile) -> (ast: PolicyAST, diagnostics: [Diagnostic]) {
        var lexer = Lexer(file: file)
        let tokens = lexer.tokenize()
        var parser = Parser(file: file, tokens: tokens)
        parser.diagnostics = lexer.diagnostics
        let items = parser.parseItems()
        return (PolicyAST(items: items), parser.diagnostics)
    }

    private init(file: SourceFile, tokens: [Token]) {
        self.file = file
        self.tokens = tokens
    }

    // MARK: Token helpers

    private var current: Token { tokens[index] }
    private var isAtEnd: Bool { current.kind == .endOfFile }

    private mutating func advance() -> Token {
        let token = tokens[index]
        if token.kind != .endOfFile { index += 1 }
        return token
    }

    private func range(_ token: Token) -> SourceRange { SourceRange(file: file, start: token.start, end: token.end) }

    /// A range inside a word token, by byte offsets into its text. An empty piece (`8080:` at the
    /// end of the file) still gets one byte to underline, but never one past the end of the file.
    private func range(_ token: Token, from offset: Int, length: Int) -> SourceRange {
        let start = token.start + offset
        return SourceRange(file: file, start: start, end: min(start + max(length, 1), max(file.bytes.count, start)))
    }

    private var isAtStatementEnd: Bool {
        switch current.kind {
        case .newline, .semicolon, .rightBrace, .endOfFile: true
        default: false
        }
    }

    private mutating func skipSeparators() {
        while current.kind == .newline || current.kind == .semicolon { index += 1 }
    }

    /// Skips the rest of a statement, including any block it opens.
    private mutating func skipStatement() {
        var depth = 0
        while !isAtEnd {
            switch current.kind {
            case .leftBrace: depth += 1
            case .rightBrace:
                if depth == 0 { return }
                depth -= 1
                if depth == 0 { index += 1; return }
            case .newline, .semicolon:
                if depth == 0 { return }
            default: break
            }
            index += 1
        }
    }

    private mutating func error(_ message: String, at range: SourceRange, notes: [Diagnostic] = []) {
        diagnostics.append(.error(message, at: range, notes: notes))
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .word: "'\(token.text)'"
        case .string: "a string"
        case .leftBrace: "'{'"
        case .rightBrace: "'}'"
        case .comma: "','"
        case .equals: "'='"
        case .bang: "'!'"
        case .semicolon: "';'"
        case .newline: "end of line"
        case .endOfFile: "end of file"
        }
    }

    /// Reports anything left before the statement's end and skips it.
    private mutating func finishStatement(_ what: String) {
        guard !isAtStatementEnd else { return }
        error("unexpected \(describe(current)) after \(what)", at: range(current))
        skipStatement()
    }

    /// The next token as a word, or an error naming what was expected.
    private mutating func expectWord(_ what: String) -> Token? {
        guard current.kind == .word else {
            error("expected \(what), found \(describe(current))", at: range(current))
            return nil
        }
        return advance()
    }

    // MARK: Items

    private mutating func parseItems() -> [Located<Item>] {
        var items: [Located<Item>] = []
        while true {
            skipSeparators()
            if isAtEnd { return items }
            let token = current
            guard token.kind == .word else {
                if token.kind == .rightBrace {
                    error("unmatched '}'", at: range(token))
                    index += 1
                } else {
                    error("expected a declaration, found \(describe(token))", at: range(token))
                    skipStatement()
                    if current.kind == .rightBrace { index += 1 }
                }
                continue
            }
            let before = diagnostics.count
            let item: Item?
            switch token.text {
            case "include": index += 1; item = parseInclude(token)
            case "docker": index += 1; item = parseDocker(token)
            case "host": index += 1; item = parseHost()
            case "network": index += 1; item = parseNetwork()
            case "container": index += 1; item = parseContainer()
            case "set": index += 1; item = parseSet()
            case "user", "input": index += 1; item = parseRuleBlock(token)
            default:
                error("expected a declaration (include, docker, host, network, container, set, user, input), found '\(token.text)'", at: range(token))
                skipStatement()
                if current.kind == .rightBrace { index += 1 }
                continue
            }
            if let item {
                items.append(Located(item, at: range(token)))
            } else if diagnostics.count == before {
                error("invalid '\(token.text)' declaration", at: range(token))
            }
            if item == nil { skipStatement(); if current.kind == .rightBrace { index += 1 } }
        }
    }

    private mutating func parseInclude(_ keyword: Token) -> Item? {
        guard current.kind == .string else {
            error("expected a quoted path after 'include', found \(describe(current))", at: range(current))
            return nil
        }
        let path = advance()
        guard !path.text.isEmpty else {
            error("include path is empty", at: range(path))
            return nil
        }
        finishStatement("the include path")
        return .include(Located(path.text, at: range(path)))
    }

    private mutating func parseDocker(_ keyword: Token) -> Item? {
        guard let profile = expectWord("a Docker profile after 'docker' (classic)") else { return nil }
        finishStatement("the Docker profile")
        return .docker(Located(profile.text, at: range(profile)))
    }

    /// `NAME {` … `}`, calling `statement` for each statement inside.
    private mutating func parseBlock<S>(kind: String, name: Token?, _ statement: (inout Parser, Token) -> S?) -> [Located<S>]? {
        let what = name.map { "\(kind) '\($0.text)'" } ?? kind
        guard current.kind == .leftBrace else {
            error("expected '{' to open \(what), found \(describe(current))", at: range(current))
            return nil
        }
        let open = advance()
        var settings: [Located<S>] = []
        while true {
            skipSeparators()
            switch current.kind {
            case .rightBrace:
                index += 1
                return settings
            case .endOfFile:
                error("expected '}' to close \(what)", at: range(current), notes: [.note("block opened here", at: range(open))])
                return settings
            case .word:
                let keyword = advance()
                let before = diagnostics.count
                statementRange = nil
                if let setting = statement(&self, keyword) {
                    settings.append(Located(setting, at: statementRange ?? range(keyword)))
                } else {
                    if diagnostics.count == before { error("invalid '\(keyword.text)' statement", at: range(keyword)) }
                    skipStatement()
                }
            default:
                error("expected a statement in \(what), found \(describe(current))", at: range(current))
                if current.kind == .leftBrace { skipStatement() } else { index += 1; skipStatement() }
            }
        }
    }

    private mutating func parseName(_ what: String) -> Located<String>? {
        guard let token = expectWord("\(what) name") else { return nil }
        guard let bad = token.text.utf8.firstIndex(where: { !Self.isNameByte($0) }) else {
            return Located(token.text, at: range(token))
        }
        let offset = token.text.utf8.distance(from: token.text.utf8.startIndex, to: bad)
        error("invalid character in \(what) name '\(token.text)' (use letters, digits, '_', '-' and '.')", at: range(token, from: offset, length: 1))
        return nil
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    // MARK: host

    private mutating func parseHost() -> Item? {
        guard let name = parseName("host") else { return nil }
        guard let settings = parseBlock(kind: "host", name: tokens[index - 1], { $0.parseHostStatement($1) }) else { return nil }
        return .host(HostDecl(name: name, settings: settings))
    }

    private mutating func parseHostStatement(_ keyword: Token) -> HostSetting? {
        switch keyword.text {
        case "interface":
            guard let name = expectWord("an interface name") else { return nil }
            var addresses: [Located<Prefix>] = []
            while current.kind == .word, current.text == "address" {
                index += 1
                guard let prefix = parsePrefixWord() else { return nil }
                addresses.append(prefix)
            }
            finishStatement("the interface")
            return .interface(name: Located(name.text, at: range(name)), addresses: addresses)
        case "forward-policy":
            guard let word = expectWord("'drop' or 'accept'") else { return nil }
            guard let policy = ChainPolicy(rawValue: word.text.uppercased()) else {
                error("expected 'drop' or 'accept', found '\(word.text)'", at: range(word))
                return nil
            }
            finishStatement("the forward policy")
            return .forwardPolicy(policy)
        case "userland-proxy":
            guard let value = parseSwitch() else { return nil }
            finishStatement("'userland-proxy'")
            return .userlandProxy(value)
        case "ip6tables":
            guard let value = parseSwitch() else { return nil }
            finishStatement("'ip6tables'")
            return .ip6tables(value)
        default:
            error("unknown host setting '\(keyword.text)' (expected interface, forward-policy, userland-proxy, ip6tables)", at: range(keyword))
            return nil
        }
    }

    private mutating func parseSwitch() -> Bool? {
        guard let word = expectWord("'on' or 'off'") else { return nil }
        switch word.text {
        case "on": return true
        case "off": return false
        default:
            error("expected 'on' or 'off', found '\(word.text)'", at: range(word))
            return nil
        }
    }

    // MARK: network

    private mutating func parseNetwork() -> Item? {
        guard let name = parseName("network") else { return nil }
        guard let settings = parseBlock(kind: "network", name: tokens[index - 1], { $0.parseNetworkStatement($1) }) else { return nil }
        return .network(NetworkDecl(name: name, settings: settings))
    }

    private mutating func parseNetworkStatement(_ keyword: Token) -> NetworkSetting? {
        let setting: NetworkSetting
        switch keyword.text {
        case "bridge":
            guard let name = expectWord("a bridge device name") else { return nil }
            setting = .bridge(name.text)
            statementRange = range(name)
        case "subnet":
            guard let prefix = parsePrefixWord() else { return nil }
            setting = .subnet(prefix.value)
            statementRange = prefix.range
        case "gateway":
            guard let address = parseAddressWord() else { return nil }
            setting = .gateway(address.value)
            statementRange = address.range
        case "snat-source":
            guard let address = parseAddressWord() else { return nil }
            setting = .snatSource(address.value)
            statementRange = address.range
        case "icc":
            guard let value = parseSwitch() else { return nil }
            setting = .icc(value)
        case "internal":
            guard let value = parseSwitch() else { return nil }
            setting = .internal(value)
        case "masquerade":
            guard let value = parseSwitch() else { return nil }
            setting = .masquerade(value)
        case "gateway-mode":
            guard let word = expectWord("'nat' or 'routed'") else { return nil }
            guard let mode = GatewayMode(rawValue: word.text) else {
                error("unknown gateway mode '\(word.text)' (expected nat or routed)", at: range(word))
                return nil
            }
            setting = .gatewayMode(mode)
        default:
            error("unknown network setting '\(keyword.text)' (expected bridge, subnet, gateway, icc, internal, masquerade, gateway-mode, snat-source)", at: range(keyword))
            return nil
        }
        finishStatement("'\(keyword.text)'")
        return setting
    }

    // MARK: container

    private mutating func parseContainer() -> Item? {
        guard let name = parseName("container") else { return nil }
        guard let settings = parseBlock(kind: "container", name: tokens[index - 1], { $0.parseContainerStatement($1) }) else { return nil }
        return .container(ContainerDecl(name: name, settings: settings))
    }

    private mutating func parseContainerStatement(_ keyword: Token) -> ContainerSetting? {
        switch keyword.text {
        case "network":
            guard let network = parseName("network") else { return nil }
            var addresses: [Located<IPAddress>] = []
            while current.kind == .word, current.text == "address" {
                index += 1
                guard let address = parseAddressWord() else { return nil }
                addresses.append(address)
            }
            if addresses.isEmpty {
                error("expected 'address' after the network name (containers need a fixed address)", at: range(current))
                return nil
            }
            finishStatement("the container's addresses")
            return .attachment(network: network, addresses: addresses)
        case "publish":
            guard let word = expectWord("a port mapping like 8080:80/tcp") else { return nil }
            guard let spec = parsePublish(word) else { return nil }
            finishStatement("the port mapping")
            return .publish(spec)
        default:
            error("unknown container setting '\(keyword.text)' (expected network, publish)", at: range(keyword))
            return nil
        }
    }

    /// `[HOSTIP:]HOSTPORT[-END]:PORT[-END][/PROTO]`, with IPv6 host addresses in brackets.
    private mutating func parsePublish(_ token: Token) -> PublishSpec? {
        let bytes = Array(token.text.utf8)
        var end = bytes.count
        var transport = Located(TransportProtocol.tcp, at: range(token))
        if let slash = bytes.lastIndex(of: UInt8(ascii: "/")) {
            let name = String(decoding: bytes[(slash + 1)...], as: UTF8.self)
            let protoRange = range(token, from: slash + 1, length: bytes.count - slash - 1)
            guard let proto = TransportProtocol(name: name), proto.hasPorts else {
                error("unknown protocol '\(name)' in port mapping (expected tcp, udp or sctp)", at: protoRange)
                return nil
            }
            transport = Located(proto, at: protoRange)
            end = slash
        }
        var start = 0
        var hostAddress: Located<IPAddress>? = nil
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close < end,
                  close + 1 < end, bytes[close + 1] == UInt8(ascii: ":") else {
                error("expected ']:' after the bracketed IPv6 host address", at: range(token, from: 0, length: 1))
                return nil
            }
            let text = String(decoding: bytes[1..<close], as: UTF8.self)
            guard let address = IPAddress(text), address.family == .ipv6 else {
                error("invalid IPv6 address '\(text)'", at: range(token, from: 1, length: close - 1))
                return nil
            }
            hostAddress = Located(address, at: range(token, from: 1, length: close - 1))
            start = close + 2
        }
        let parts = bytes[start..<end].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var offset = start
        var fields: [(text: String, offset: Int)] = []
        for part in parts {
            fields.append((String(decoding: part, as: UTF8.self), offset))
            offset += part.count + 1
        }
        if fields.count == 3, hostAddress == nil {
            let (text, at) = fields.removeFirst()
            guard let address = IPAddress(text), address.family == .ipv4 else {
                let hint = text.isEmpty ? "empty host address" : "invalid host address '\(text)'"
                error(hint + " (IPv6 host addresses go in brackets: [::1]:8080:80)", at: range(token, from: at, length: text.utf8.count))
                return nil
            }
            hostAddress = Located(address, at: range(token, from: at, length: text.utf8.count))
        }
        guard fields.count == 2 else {
            if fields.count == 1 {
                error("a port mapping needs a host port and a container port, like 8080:80", at: range(token))
            } else {
                error("too many ':' in port mapping '\(token.text)' (IPv6 host addresses go in brackets)", at: range(token))
            }
            return nil
        }
        guard let hostPorts = parsePortRange(fields[0].text, token: token, offset: fields[0].offset),
              let containerPorts = parsePortRange(fields[1].text, token: token, offset: fields[1].offset) else { return nil }
        return PublishSpec(hostAddress: hostAddress, hostPorts: hostPorts, containerPorts: containerPorts, transport: transport)
    }

    /// `N` or `N-M`, each 1–65535.
    private mutating func parsePortRange(_ text: String, token: Token, offset: Int) -> Located<PortRange>? {
        let whole = range(token, from: offset, length: text.utf8.count)
        let pieces = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        var ports: [UInt16] = []
        var at = offset
        for piece in pieces {
            let pieceRange = range(token, from: at, length: piece.utf8.count)
            guard !piece.isEmpty, piece.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                error(piece.isEmpty ? "expected a port number" : "expected a port number, found '\(piece)'", at: pieceRange)
                return nil
            }
            guard piece.utf8.count <= 5, let value = Int(piece), value >= 1, value <= 65535 else {
                error("port \(piece) is outside 1-65535", at: pieceRange)
                return nil
            }
            ports.append(UInt16(value))
            at += piece.utf8.count + 1
        }
        if ports.count == 2, ports[1] < ports[0] {
            error("port range \(text) is reversed", at: whole)
            return nil
        }
        return Located(PortRange(ports[0], ports.last!), at: whole)
    }

    private mutating func parsePrefixWord() -> Located<Prefix>? {
        guard let token = expectWord("an address prefix like 172.17.0.0/16") else { return nil }
        guard let prefix = Prefix(token.text) else {
            error("invalid address prefix '\(token.text)'", at: range(token))
            return nil
        }
        return Located(prefix, at: range(token))
    }

    private mutating func parseAddressWord() -> Located<IPAddress>? {
        guard let token = expectWord("an IP address") else { return nil }
        guard let address = IPAddress(token.text) else {
            error("invalid IP address '\(token.text)'", at: range(token))
            return nil
        }
        return Located(address, at: range(token))
    }

    // MARK: set

    private mutating func parseSet() -> Item? {
        guard let name = parseName("set") else { return nil }
        guard let kindWord = expectWord("the set's kind (addresses, ports, interfaces)") else { return nil }
        guard let kind = SetKind(rawValue: kindWord.text) else {
            error("unknown set kind '\(kindWord.text)' (expected addresses, ports, interfaces)", at: range(kindWord))
            return nil
        }
        guard current.kind == .leftBrace else {
            error("expected '{' to open set '\(name.value)', found \(describe(current))", at: range(current))
            return nil
        }
        let open = advance()
        var elements: [Located<SetElement>] = []
        var expectElement = true
        while true {
            while current.kind == .newline { index += 1 }
            switch current.kind {
            case .rightBrace:
                index += 1
                finishStatement("the set")
                return .set(SetDecl(name: name, kind: Located(kind, at: range(kindWord)), elements: elements))
            case .comma where !expectElement:
                index += 1
                expectElement = true
            case .word where expectElement:
                let token = advance()
                guard let element = parseSetElement(token, kind: kind) else { return nil }
                elements.append(Located(element, at: range(token)))
                expectElement = false
            case .endOfFile:
                error("expected '}' to close set '\(name.value)'", at: range(current), notes: [.note("set opened here", at: range(open))])
                return nil
            default:
                error("expected \(expectElement ? "a set element" : "',' or '}'") in set '\(name.value)', found \(describe(current))", at: range(current))
                return nil
            }
        }
    }

    private mutating func parseSetElement(_ token: Token, kind: SetKind) -> SetElement? {
        switch kind {
        case .addresses:
            guard let prefix = Prefix(token.text) else {
                error("invalid address prefix '\(token.text)'", at: range(token))
                return nil
            }
            return .address(prefix)
        case .ports:
            return parsePortRange(token.text, token: token, offset: 0).map { .port($0.value) }
        case .interfaces:
            return .interface(InterfaceName(iptables: token.text))
        }
    }

    // MARK: rules

    private mutating func parseRuleBlock(_ keyword: Token) -> Item? {
        let chain = RuleChain(rawValue: keyword.text)!
        guard let rules = parseBlock(kind: "'\(keyword.text)' block", name: nil, { $0.parseRule($1) }) else { return nil }
        return .rules(RuleBlock(chain: Located(chain, at: range(keyword)), rules: rules))
    }

    private mutating func parseRule(_ verb: Token) -> RuleDecl? {
        let verdict: RuleVerdict
        // Where checks of the verdict point: its argument when it has one (the reject type,
        // the log prefix), else the verb.
        var verdictRange = range(verb)
        switch verb.text {
        case "accept": verdict = .accept
        case "drop": verdict = .drop
        case "return": verdict = .return
        case "reject":
            var with: String? = nil
            if current.kind == .word, current.text == "with" {
                index += 1
                guard let type = expectWord("an ICMP reject type") else { return nil }
                with = type.text
                verdictRange = range(type)
            }
            verdict = .reject(with: with)
        case "log":
            var prefix: String? = nil
            var level: UInt8? = nil
            while current.kind == .word, current.text == "prefix" || current.text == "level" {
                let option = advance()
                if option.text == "prefix" {
                    guard current.kind == .string else {
                        error("expected a quoted log prefix, found \(describe(current))", at: range(current))
                        return nil
                    }
                    let string = advance()
                    prefix = string.text
                    verdictRange = range(string)
                } else {
                    guard let word = expectWord("a log level 0-7") else { return nil }
                    guard let value = UInt8(word.text), value <= 7 else {
                        error("log level '\(word.text)' is outside 0-7", at: range(word))
                        return nil
                    }
                    level = value
                }
            }
            verdict = .log(prefix: prefix, level: level)
        default:
            error("expected a rule verdict (accept, drop, reject, return, log), found '\(verb.text)'", at: range(verb))
            return nil
        }
        var matches: [Located<RuleMatch>] = []
        while !isAtStatementEnd {
            var negated = false
            if current.kind == .bang {
                index += 1
                negated = true
                if current.kind == .bang { error("double negation", at: range(current)); return nil }
            }
            guard let keyword = expectWord("a match (in, out, from, to, proto, sport, dport, state, src-type, dst-type, comment)") else { return nil }
            guard let match = parseMatch(keyword, negated: negated) else { return nil }
            matches.append(Located(match, at: SourceRange(file: file, start: keyword.start, end: tokens[index - 1].end)))
        }
        return RuleDecl(verdict: Located(verdict, at: verdictRange), matches: matches)
    }

    private mutating func parseMatch(_ keyword: Token, negated negatedBefore: Bool) -> RuleMatch? {
        var negated = negatedBefore
        if current.kind == .bang {
            if negated { error("double negation", at: range(current)); return nil }
            index += 1
            negated = true
        }
        switch keyword.text {
        case "in", "out":
            guard let word = expectWord("an interface name or @set after '\(keyword.text)'") else { return nil }
            let operand = setReference(word) ?? .value(InterfaceName(iptables: word.text))
            return keyword.text == "in" ? .inInterface(operand, negated: negated) : .outInterface(operand, negated: negated)
        case "from", "to":
            guard let word = expectWord("an address prefix or @set after '\(keyword.text)'") else { return nil }
            let operand: Operand<Prefix>
            if let reference: Operand<Prefix> = setReference(word) {
                operand = reference
            } else {
                guard let prefix = Prefix(word.text) else {
                    error("invalid address prefix '\(word.text)'", at: range(word))
                    return nil
                }
                operand = .value(prefix)
            }
            return keyword.text == "from" ? .source(operand, negated: negated) : .destination(operand, negated: negated)
        case "proto":
            guard let word = expectWord("a protocol after 'proto'") else { return nil }
            guard let proto = TransportProtocol(name: word.text) else {
                error("unknown protocol '\(word.text)' (expected tcp, udp, sctp, icmp, icmpv6 or a number 1-255)", at: range(word))
                return nil
            }
            return .transport(proto, negated: negated)
        case "sport", "dport":
            guard let word = expectWord("a port, port range or @set after '\(keyword.text)'") else { return nil }
            let operand: Operand<PortRange>
            if let reference: Operand<PortRange> = setReference(word) {
                operand = reference
            } else {
                guard let ports = parsePortRange(word.text, token: word, offset: 0) else { return nil }
                operand = .value(ports.value)
            }
            return keyword.text == "sport" ? .sourcePort(operand, negated: negated) : .destinationPort(operand, negated: negated)
        case "state":
            var states = Set<ConntrackState>()
            repeat {
                if current.kind == .comma { index += 1 }
                guard let word = expectWord("a conntrack state (new, established, related, invalid, untracked)") else { return nil }
                guard let state = ConntrackState(rawValue: word.text.uppercased()) else {
                    error("unknown conntrack state '\(word.text)' (expected new, established, related, invalid, untracked)", at: range(word))
                    return nil
                }
                states.insert(state)
            } while current.kind == .comma
            return .state(states, negated: negated)
        case "src-type", "dst-type":
            guard let word = expectWord("an address type such as local after '\(keyword.text)'") else { return nil }
            guard let type = AddressType(rawValue: word.text.uppercased()) else {
                error("unknown address type '\(word.text)' (expected local, unicast, broadcast, multicast, …)", at: range(word))
                return nil
            }
            return keyword.text == "src-type" ? .sourceType(type, negated: negated) : .destinationType(type, negated: negated)
        case "comment":
            if negated { error("a comment cannot be negated", at: range(keyword)); return nil }
            guard current.kind == .string else {
                error("expected a quoted comment, found \(describe(current))", at: range(current))
                return nil
            }
            return .comment(advance().text)
        default:
            error("unknown match '\(keyword.text)' (expected in, out, from, to, proto, sport, dport, state, src-type, dst-type, comment)", at: range(keyword))
            return nil
        }
    }

    private mutating func setReference<T>(_ word: Token) -> Operand<T>? {
        guard word.text.hasPrefix("@") else { return nil }
        return .set(String(word.text.dropFirst()))
    }
}
