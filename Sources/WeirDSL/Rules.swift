import WeirDiagnostics
import WeirModel
import WeirPolicy

/// A block of rules for one chain.
public struct Rules: PolicyItem {
    let chain: RuleChain, rules: [any RuleElement], site: CallSite
    public func build(into context: inout DSLContext) {
        let built = rules.compactMap { $0.rule(&context) }
        context.items.append(Located(.rules(RuleBlock(chain: Located(chain, at: site.range), rules: built)), at: site.range))
    }
}

/// `user { … }`: rules for Docker's DOCKER-USER chain.
public func UserRules(fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any RuleElement> _ rules: () -> [any RuleElement]) -> Rules {
    Rules(chain: .user, rules: rules(), site: CallSite(fileID, line, column))
}

/// `input { … }`: rules for the filter INPUT chain.
public func InputRules(fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any RuleElement> _ rules: () -> [any RuleElement]) -> Rules {
    Rules(chain: .input, rules: rules(), site: CallSite(fileID, line, column))
}

/// A rule in a rule block.
public protocol RuleElement {
    func rule(_ context: inout DSLContext) -> Located<RuleDecl>?
}

/// A match inside a rule.
public protocol MatchElement {
    func match(_ context: inout DSLContext) -> Located<RuleMatch>?
}

/// A rule: a verdict and its matches. Build it with `Accept`, `Drop`, `Reject`, `Return`, `Log`.
public struct RuleStatement: RuleElement {
    let verdict: RuleVerdict, matches: [any MatchElement], site: CallSite
    public func rule(_ context: inout DSLContext) -> Located<RuleDecl>? {
        var built: [Located<RuleMatch>] = []
        for element in matches {
            guard let match = element.match(&context) else { return nil }
            built.append(match)
        }
        return Located(RuleDecl(verdict: Located(verdict, at: site.range), matches: built), at: site.range)
    }
}

public func Accept(fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any MatchElement> _ matches: () -> [any MatchElement] = { [] }) -> RuleStatement {
    RuleStatement(verdict: .accept, matches: matches(), site: CallSite(fileID, line, column))
}
public func Drop(fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any MatchElement> _ matches: () -> [any MatchElement] = { [] }) -> RuleStatement {
    RuleStatement(verdict: .drop, matches: matches(), site: CallSite(fileID, line, column))
}
public func Return(fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any MatchElement> _ matches: () -> [any MatchElement] = { [] }) -> RuleStatement {
    RuleStatement(verdict: .return, matches: matches(), site: CallSite(fileID, line, column))
}
public func Reject(with type: String? = nil, fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any MatchElement> _ matches: () -> [any MatchElement] = { [] }) -> RuleStatement {
    RuleStatement(verdict: .reject(with: type), matches: matches(), site: CallSite(fileID, line, column))
}
public func Log(prefix: String? = nil, level: UInt8? = nil, fileID: String = #fileID, line: UInt = #line, column: UInt = #column, @ListBuilder<any MatchElement> _ matches: () -> [any MatchElement] = { [] }) -> RuleStatement {
    RuleStatement(verdict: .log(prefix: prefix, level: level), matches: matches(), site: CallSite(fileID, line, column))
}

/// One match; the functions below build them.
public struct MatchStatement: MatchElement {
    let make: (inout DSLContext, CallSite) -> RuleMatch?
    let site: CallSite
    public func match(_ context: inout DSLContext) -> Located<RuleMatch>? {
        make(&context, site).map { Located($0, at: site.range) }
    }
}

private func operand<T>(_ text: String, _ parse: (String) -> T?) -> Operand<T>? {
    text.hasPrefix("@") ? .set(String(text.dropFirst())) : parse(text).map { .value($0) }
}

/// `in [!] NAME|@set`.
public func In(_ name: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .inInterface(operand(name) { InterfaceName(iptables: $0) }!, negated: negated) }, site: CallSite(fileID, line, column))
}
/// `out [!] NAME|@set`.
public func Out(_ name: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .outInterface(operand(name) { InterfaceName(iptables: $0) }!, negated: negated) }, site: CallSite(fileID, line, column))
}
/// `from [!] PREFIX|@set`.
public func From(_ text: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { context, site in
        guard let value = operand(text, { Prefix($0) }) else { context.invalid("invalid address prefix '\(text)'", at: site); return nil }
        return .source(value, negated: negated)
    }, site: CallSite(fileID, line, column))
}
/// `to [!] PREFIX|@set`.
public func To(_ text: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { context, site in
        guard let value = operand(text, { Prefix($0) }) else { context.invalid("invalid address prefix '\(text)'", at: site); return nil }
        return .destination(value, negated: negated)
    }, site: CallSite(fileID, line, column))
}
/// `proto [!] P`.
public func Proto(_ transport: TransportProtocol, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .transport(transport, negated: negated) }, site: CallSite(fileID, line, column))
}
/// `sport [!] N|N-M|@set`.
public func SPort(_ text: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { context, site in
        guard let value = operand(text, portRange) else { context.invalid("invalid port '\(text)'", at: site); return nil }
        return .sourcePort(value, negated: negated)
    }, site: CallSite(fileID, line, column))
}
/// `dport [!] N|N-M|@set`.
public func DPort(_ text: String, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { context, site in
        guard let value = operand(text, portRange) else { context.invalid("invalid port '\(text)'", at: site); return nil }
        return .destinationPort(value, negated: negated)
    }, site: CallSite(fileID, line, column))
}
/// `state [!] S,…`.
public func State(_ states: ConntrackState..., negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .state(Set(states), negated: negated) }, site: CallSite(fileID, line, column))
}
/// `src-type [!] T`.
public func SrcType(_ type: AddressType, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .sourceType(type, negated: negated) }, site: CallSite(fileID, line, column))
}
/// `dst-type [!] T`.
public func DstType(_ type: AddressType, negated: Bool = false, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .destinationType(type, negated: negated) }, site: CallSite(fileID, line, column))
}
/// `comment "…"`.
public func Comment(_ text: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> MatchStatement {
    MatchStatement(make: { _, _ in .comment(text) }, site: CallSite(fileID, line, column))
}
