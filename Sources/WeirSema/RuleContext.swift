import WeirDiagnostics
import WeirModel
import WeirPolicy

/// Turns user rules into model rules: resolves `@set` and `@container` references, checks
/// what iptables can express, and expands sets into one rule per combination of elements.
struct RuleContext {
    var host: HostConfig
    var sets: [String: SetDecl]
    var containers: [Container]

    /// A rule may expand to at most this many model rules.
    static let expansionLimit = 10_000

    /// One way a match can be satisfied: the model matches it adds (an alternative of an OR).
    private typealias Alternatives = [[Match]]

    mutating func expand(_ decl: Located<RuleDecl>, chain: RuleChain, diagnostics: inout DiagnosticBag) -> [UserRule] {
        let rule = decl.value
        var families: Set<Family>? = nil  // nil: not constrained yet
        var familyRange: SourceRange? = nil  // the match that first chose the family
        var ok = true
        var factors: [Alternatives] = []
        var transport: TransportProtocol? = nil
        var portRange: SourceRange? = nil

        func constrain(_ family: Family, at range: SourceRange, diagnostics: inout DiagnosticBag) {
            if let current = families, !current.contains(family) {
                diagnostics.error("this rule mixes IPv4 and IPv6", at: range)
                ok = false
                return
            }
            if families == nil { familyRange = range }
            families = [family]
        }

        for match in rule.matches {
            let range = match.range
            switch match.value {
            case .inInterface(let operand, let negated), .outInterface(let operand, let negated):
                let isIn = if case .inInterface = match.value { true } else { false }
                guard let names = resolveInterfaces(operand, negated: negated, at: range, diagnostics: &diagnostics) else { ok = false; continue }
                factors.append(names.map { [isIn ? .inInterface($0, negated: negated) : .outInterface($0, negated: negated)] })
            case .source(let operand, let negated), .destination(let operand, let negated):
                let direction: Direction = if case .source = match.value { .source } else { .destination }
                guard let prefixes = resolveAddresses(operand, negated: negated, at: range, diagnostics: &diagnostics) else { ok = false; continue }
                let familiesHere = Set(prefixes.map(\.family))
                if familiesHere.count > 1 {
                    diagnostics.error("this match mixes IPv4 and IPv6 addresses; write one rule per family", at: range)
                    ok = false
                    continue
                }
                // No family: an empty set or a container without addresses, reported where declared.
                if let family = familiesHere.first { constrain(family, at: range, diagnostics: &diagnostics) }
                factors.append(prefixes.map { [.address(direction, $0, negated: negated)] })
            case .transport(let proto, let negated):
                if transport != nil {
                    diagnostics.error("a rule takes one 'proto'", at: range)
                    ok = false
                    continue
                }
                if !negated { transport = proto }
                if proto == .icmp { constrain(.ipv4, at: range, diagnostics: &diagnostics) }
                if proto == .icmpv6 { constrain(.ipv6, at: range, diagnostics: &diagnostics) }
                factors.append([[.protocol(proto, negated: negated)]])
            case .sourcePort(let operand, let negated), .destinationPort(let operand, let negated):
                let direction: Direction = if case .sourcePort = match.value { .source } else { .destination }
                portRange = portRange ?? range
                guard let ports = resolvePorts(operand, negated: negated, at: range, diagnostics: &diagnostics) else { ok = false; continue }
                factors.append(ports.map { [.port(direction, $0, negated: negated)] })
            case .state(let states, let negated):
                factors.append([[.conntrackState(states, negated: negated)]])
            case .sourceType(let type, let negated):
                factors.append([[.addressType(.source, type, negated: negated)]])
            case .destinationType(let type, let negated):
                factors.append([[.addressType(.destination, type, negated: negated)]])
            case .comment(let text):
                if let problem = Checker.textProblem(text, what: "comment", maxBytes: 255) {
                    diagnostics.error(problem, at: range)
                    ok = false
                }
                factors.append([[.comment(text)]])
            }
        }
        if let portRange, !(transport?.hasPorts ?? false) {
            diagnostics.error("port matches need 'proto tcp', 'proto udp' or 'proto sctp' in the same rule", at: portRange)
            ok = false
        }

        let target: Target
        switch rule.verdict.value {
        case .accept: target = .accept
        case .drop: target = .drop
        case .return: target = .return
        case .reject(let type):
            if let type {
                let known = (families ?? Set(host.families)).allSatisfy { Checker.rejectTypes[$0]!.contains(type) }
                if !known {
                    let list = (families ?? [.ipv4]).flatMap { Checker.rejectTypes[$0]!.sorted() }
                    diagnostics.error("unknown reject type '\(type)' for this rule's family (expected one of \(list.joined(separator: ", ")))", at: rule.verdict.range)
                    ok = false
                }
                if type == "tcp-reset", transport != .tcp {
                    diagnostics.error("'reject with tcp-reset' needs 'proto tcp'", at: rule.verdict.range)
                    ok = false
                }
            }
            target = .reject(with: type)
        case .log(let prefix, let level):
            if let prefix, let problem = Checker.textProblem(prefix, what: "log prefix", maxBytes: 29) {
                diagnostics.error(problem, at: rule.verdict.range)
                ok = false
            }
            target = .log(prefix: prefix, level: level)
        }

        let ruleFamilies = families.map { Array($0) } ?? host.families
        for family in ruleFamilies where !host.families.contains(family) {
            diagnostics.error("this rule is IPv6 only, which needs 'ip6tables on' in the host", at: familyRange ?? decl.range)
            ok = false
        }
        guard ok else { return [] }

        // nil when the product overflows Int (many references to large sets).
        let count = factors.reduce(Int?(1)) { product, factor in
            product.flatMap { $0.multipliedReportingOverflow(by: max(factor.count, 1)) }.flatMap { $0.overflow ? nil : $0.partialValue }
        }
        guard let count, count <= Self.expansionLimit else {
            let size = count.map(String.init) ?? "more than \(Int.max)"
            diagnostics.error("this rule expands to \(size) iptables rules (limit \(Self.expansionLimit)); split its sets", at: decl.range)
            return []
        }
        var combinations: [[Match]] = [[]]
        for factor in factors {
            combinations = combinations.flatMap { prefix in factor.map { prefix + $0 } }
        }
        return Family.allCases.filter(ruleFamilies.contains).flatMap { family in
            combinations.map { UserRule(chain: chain, family: family, rule: Rule($0, target, provenance: decl.range)) }
        }
    }

    /// A negated reference to a set of several elements would need "none of" semantics,
    /// which plain iptables rules cannot express without ipset.
    private func negationProblem(count: Int, negated: Bool, name: String) -> String? {
        negated && count > 1 ? "'!@\(name)' negates a set of \(count) elements, which iptables cannot express without ipset; negate single elements or split the rule" : nil
    }

    private func resolveInterfaces(_ operand: Operand<InterfaceName>, negated: Bool, at range: SourceRange, diagnostics: inout DiagnosticBag) -> [InterfaceName]? {
        switch operand {
        case .value(let name):
            if let problem = Checker.interfaceNameProblem(name.name, wildcard: name.isWildcard) {
                diagnostics.error(problem, at: range)
                return nil
            }
            return [name]
        case .set(let setName):
            guard let set = sets[setName] else {
                diagnostics.error("unknown set '@\(setName)'", at: range)
                return nil
            }
            guard set.kind.value == .interfaces else {
                diagnostics.error("set '@\(setName)' holds \(set.kind.value.rawValue), not interfaces", at: range)
                return nil
            }
            if let problem = negationProblem(count: set.elements.count, negated: negated, name: setName) {
                diagnostics.error(problem, at: range)
                return nil
            }
            return set.elements.compactMap { if case .interface(let name) = $0.value { name } else { nil } }
        }
    }

    private func resolveAddresses(_ operand: Operand<Prefix>, negated: Bool, at range: SourceRange, diagnostics: inout DiagnosticBag) -> [Prefix]? {
        switch operand {
        case .value(let prefix):
            if !prefix.isCanonical {
                diagnostics.error("address \(prefix) has host bits set (did you mean \(prefix.canonical)?)", at: range)
                return nil
            }
            return [prefix]
        case .set(let name):
            var prefixes: [Prefix]
            if let set = sets[name] {
                guard set.kind.value == .addresses else {
                    diagnostics.error("set '@\(name)' holds \(set.kind.value.rawValue), not addresses", at: range)
                    return nil
                }
                prefixes = set.elements.compactMap { if case .address(let prefix) = $0.value { prefix } else { nil } }
            } else if let container = containers.first(where: { $0.name == name }) {
                prefixes = container.endpoints.flatMap { $0.addresses.values.map { Prefix(host: $0) } }.sorted()
                prefixes = prefixes.filter { host.families.contains($0.family) }
            } else {
                diagnostics.error("unknown set or container '@\(name)'", at: range)
                return nil
            }
            if let problem = negationProblem(count: prefixes.count, negated: negated, name: name) {
                diagnostics.error(problem, at: range)
                return nil
            }
            return prefixes
        }
    }

    private func resolvePorts(_ operand: Operand<PortRange>, negated: Bool, at range: SourceRange, diagnostics: inout DiagnosticBag) -> [PortRange]? {
        switch operand {
        case .value(let ports):
            return [ports]
        case .set(let name):
            guard let set = sets[name] else {
                diagnostics.error("unknown set '@\(name)'", at: range)
                return nil
            }
            guard set.kind.value == .ports else {
                diagnostics.error("set '@\(name)' holds \(set.kind.value.rawValue), not ports", at: range)
                return nil
            }
            if let problem = negationProblem(count: set.elements.count, negated: negated, name: name) {
                diagnostics.error(problem, at: range)
                return nil
            }
            return set.elements.compactMap { if case .port(let ports) = $0.value { ports } else { nil } }
        }
    }
}
