import WeirDiagnostics
import WeirModel

/// Model → nf_tables program, following `NftLayout`.
///
/// Every rule the backend cannot express is reported as a located error (at the rule's
/// provenance), never dropped silently; the program then simply lacks that rule, so a caller
/// must not load a program whose diagnostics hold an error. CHECKSUM rules are the one
/// deliberate omission: nf_tables has no equivalent, so they are left out with a warning.
///
/// The round-trip law: for every ruleset `m` that lowers without errors,
/// `NftLifting.lift(lower(m).program).ruleset == normalForm(m)`, and `normalForm(m) == m` for
/// every model in the normal form the iptables importer also produces (see `normalForm`) whose
/// set groups are in key order.
public enum NftLowering {
    public static func lower(_ ruleset: Ruleset) -> (program: NftRuleset, diagnostics: [Diagnostic]) {
        var bag = DiagnosticBag()
        var program = NftRuleset()
        for table in ruleset.tables {
            program.tables.append(lower(table, into: &bag))
        }
        return (program, bag.diagnostics)
    }

    static func lower(_ table: Table, into bag: inout DiagnosticBag) -> NftTable {
        let tableAnchor = table.chains.lazy.compactMap { $0.rules.first?.provenance }.first
        let nftName = NftLayout.nftTableName(table.name)
        let tableLabel = "table \(table.family.rawValue) \(table.name)"
        if let problem = nameProblem(nftName) {
            bag.error("nft table name '\(nftName)' \(problem)", at: tableAnchor)
        }
        let reaching = hooksReaching(table)
        var result = NftTable(family: table.family, name: nftName)
        for chain in table.chains {
            let anchor = chain.rules.first?.provenance ?? tableAnchor
            var base: NftBaseChain? = nil
            if let problem = nameProblem(chain.name) {
                bag.error("chain name '\(chain.name)' \(problem) (\(tableLabel))", at: anchor)
            }
            if case let .base(hook, priority, policy) = chain.kind {
                let type = NftLayout.chainType(table: table.name, hook: hook)
                if type == .nat && hook == .forward {
                    bag.error("nat chains cannot hook forward; base chain '\(chain.name)' of \(tableLabel) does", at: anchor)
                }
                if type == .nat && priority <= -200 {
                    bag.error("base chain '\(chain.name)' of \(tableLabel) has priority \(priority); nat chains need a priority above -200 (conntrack)", at: anchor)
                }
                if let p = Int32(exactly: priority) {
                    base = NftBaseChain(type: type, hook: hook, priority: p, policy: policy)
                } else {
                    bag.error("base chain '\(chain.name)' of \(tableLabel) has priority \(priority), outside nf_tables' 32-bit range", at: anchor)
                    base = NftBaseChain(type: type, hook: hook, priority: priority < 0 ? .min : .max, policy: policy)
                }
            }
            var nftChain = NftChain(name: chain.name, base: base)
            let lowerer = NftRuleLowerer(table: table, chain: chain, hooks: reaching[chain.name] ?? [])
            let before = bag.diagnostics.count
            let lowered = chain.rules.map { lowerer.lower($0, into: &bag) }
            if !bag.diagnostics[before...].contains(where: { $0.severity == .error }) {
                nftChain.rules = lowerer.grouping(chain.rules, lowered: lowered, sets: &result.sets)
            } else {
                nftChain.rules = lowered.compactMap { $0 }
            }
            result.chains.append(nftChain)
        }
        return result
    }

    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > NftLayout.maxName { return "is longer than \(NftLayout.maxName) bytes" }
        if name.utf8.contains(0) { return "contains a NUL byte" }
        return nil
    }

    /// The hooks whose base chains reach each chain of a table by jumps and gotos.
    static func hooksReaching(_ table: Table) -> [String: Set<Hook>] {
        var edges: [String: [String]] = [:]
        for chain in table.chains {
            for rule in chain.rules {
                switch rule.target {
                case .jump(let name), .goto(let name): edges[chain.name, default: []].append(name)
                default: break
                }
            }
        }
        var result: [String: Set<Hook>] = [:]
        for chain in table.chains {
            guard let hook = chain.hook else { continue }
            var stack = [chain.name]
            while let name = stack.popLast() {
                guard result[name, default: []].insert(hook).inserted else { continue }
                stack.append(contentsOf: edges[name] ?? [])
            }
        }
        return result
    }

    /// The form of a model that the nftables backend preserves exactly: lowering a ruleset and
    /// lifting it back gives `normalForm` of it. It differs from the input only where nf_tables
    /// cannot tell two spellings apart (or orders), and is the identity on models in the iptables importer's
    /// canonical form with comments last:
    ///
    /// * prefixes have their host bits cleared; a non-negated `/0` address match and a
    ///   non-negated bare-wildcard (`+`) interface match are dropped (they match everything);
    /// * a rule's comment moves after its other matches (nft keeps it in the rule's user data);
    /// * REJECT types are spelled canonically, and the default (port unreachable) is `nil`;
    /// * LOG level 4 (the kernel's default, which it always reports back) is `nil`, and an empty
    ///   log prefix is `nil`;
    /// * CHECKSUM rules are removed;
    /// * the rules of every set group (`NftSetGroup`) are in the group's key order, the order
    ///   the kernel lists its set's elements in (reordering them changes nothing: a packet
    ///   matches at most one of them).
    public static func normalForm(_ ruleset: Ruleset) -> Ruleset {
        var result = Ruleset()
        for var table in ruleset.tables {
            let family = table.family
            for chain in table.chains {
                table.modifyChain(chain.name) { chain in
                    let rules = chain.rules.compactMap { normalForm($0, family: family) }
                    chain.rules = NftSetGroup.segments(rules, family: family).flatMap { segment -> [Rule] in
                        switch segment {
                        case .rule(let rule): [rule]
                        case .group(let group): group.members.map(\.rule)
                        }
                    }
                }
            }
            result.add(table)
        }
        return result
    }

    static func normalForm(_ rule: Rule, family: Family) -> Rule? {
        if rule.target == .checksumFill { return nil }
        var matches: [Match] = []
        var comments: [Match] = []
        for match in rule.matches {
            switch match {
            case let .address(direction, prefix, negated):
                if prefix.length == 0 && !negated { continue }
                matches.append(.address(direction, prefix.canonical, negated: negated))
            case let .inInterface(name, negated), let .outInterface(name, negated):
                if name.isWildcard && name.name.isEmpty && !negated { continue }
                matches.append(match)
            case .comment:
                comments.append(match)
            default:
                matches.append(match)
            }
        }
        var target = rule.target
        switch target {
        case .reject(let type):
            if let kind = NftRejectKind.kind(type, family: family) { target = kind.target(family: family) }
        case let .log(prefix, level):
            target = .log(prefix: prefix?.isEmpty == true ? nil : prefix, level: level == NftLayout.defaultLogLevel ? nil : level)
        default:
            break
        }
        return Rule(matches + comments, target, provenance: rule.provenance)
    }
}

/// Lowers the rules of one chain.
struct NftRuleLowerer {
    let table: Table
    let chain: Chain
    /// The hooks that reach this chain (its own for a base chain).
    let hooks: Set<Hook>

    init(table: Table, chain: Chain, hooks: Set<Hook>) {
        self.table = table
        self.chain = chain
        self.hooks = hooks
    }

    var family: Family { table.family }

    func lower(_ rule: Rule, into bag: inout DiagnosticBag) -> NftRule? {
        let at = rule.provenance
        let place = "(table \(family.rawValue) \(table.name), chain \(chain.name))"
        let errorsBefore = bag.diagnostics.count
        func error(_ message: String) {
            bag.error(message + " " + place, at: at)
        }

        if rule.target == .checksumFill {
            bag.append(Diagnostic(.warning, "CHECKSUM --checksum-fill has no nftables equivalent; the rule is left out of the nftables ruleset (Docker's nftables backend omits it too) \(place)", at: at))
            return nil
        }

        var expressions: [any NftExpression] = []
        var comment: String? = nil
        var commentCount = 0
        var portProtocol: TransportProtocol? = nil  // the first non-negated protocol match
        var sawProtocol = false

        for match in rule.matches {
            switch match {
            case let .address(direction, prefix, negated):
                if prefix.family != family {
                    error("\(prefix.family == .ipv4 ? "IPv4" : "IPv6") address \(prefix) in an \(family.rawValue) table")
                    continue
                }
                if prefix.length == 0 {
                    if negated { error("'!= \(prefix)' matches no packet; nftables rules cannot keep it") }
                    continue
                }
                let offset = NftEncoding.addressOffset(direction, family: family)
                let bytes = NftEncoding.addressBytes(prefix.network)
                let op: CmpExpression.Operator = negated ? .neq : .eq
                if prefix.length % 8 == 0 {
                    let n = prefix.length / 8
                    expressions.append(PayloadExpression(.network, offset: offset, length: UInt32(n)))
                    expressions.append(CmpExpression(op, Array(bytes[0..<n])))
                } else {
                    expressions.append(PayloadExpression(.network, offset: offset, length: UInt32(bytes.count)))
                    expressions.append(BitwiseExpression(mask: NftEncoding.prefixMask(length: prefix.length, byteCount: bytes.count)))
                    expressions.append(CmpExpression(op, bytes))
                }
            case let .inInterface(name, negated), let .outInterface(name, negated):
                let isIn = if case .inInterface = match { true } else { false }
                let key: MetaExpression.Key = isIn ? .iifname : .oifname
                if name.name.utf8.count > NftLayout.maxInterface {
                    error("interface name '\(name)' is longer than \(NftLayout.maxInterface) bytes")
                    continue
                }
                if name.name.utf8.contains(0) {
                    error("interface name '\(name.name)' contains a NUL byte")
                    continue
                }
                if name.name.isEmpty {
                    if !name.isWildcard { error("empty interface name") }
                    else if negated { error("'\(isIn ? "iifname" : "oifname") != *' matches no packet; nftables rules cannot keep it") }
                    continue
                }
                expressions.append(MetaExpression(key))
                expressions.append(CmpExpression(negated ? .neq : .eq, NftEncoding.interfaceBytes(name)))
            case let .protocol(proto, negated):
                sawProtocol = true
                if !negated && portProtocol == nil { portProtocol = proto }
                expressions.append(MetaExpression(.l4proto))
                expressions.append(CmpExpression(negated ? .neq : .eq, [proto.number]))
            case let .port(direction, range, negated):
                guard let proto = portProtocol, proto.hasPorts else {
                    error(sawProtocol
                        ? "port match needs a non-negated tcp, udp or sctp protocol match before it"
                        : "port match without a tcp, udp or sctp protocol match")
                    continue
                }
                expressions.append(PayloadExpression(.transport, offset: direction == .source ? 0 : 2, length: 2))
                if range.isSingle {
                    expressions.append(CmpExpression(negated ? .neq : .eq, NftEncoding.portBytes(range.first)))
                } else {
                    expressions.append(RangeExpression(negated ? .neq : .eq, from: NftEncoding.portBytes(range.first), to: NftEncoding.portBytes(range.last)))
                }
            case let .conntrackState(states, negated):
                if states.isEmpty {
                    error("conntrack state match with no states")
                    continue
                }
                expressions.append(CtExpression(.state))
                expressions.append(BitwiseExpression(mask: NftEncoding.hostU32(NftEncoding.ctStateMask(states))))
                expressions.append(CmpExpression(negated ? .eq : .neq, NftEncoding.hostU32(0)))
            case let .addressType(direction, type, negated):
                expressions.append(FibExpression(flags: direction == .source ? .saddr : .daddr, result: .addressType))
                expressions.append(CmpExpression(negated ? .neq : .eq, NftEncoding.hostU32(NftEncoding.rtn(type))))
            case .comment(let text):
                commentCount += 1
                if commentCount == 2 { error("an nftables rule carries one comment; this rule has several") }
                if text.utf8.count > NftLayout.maxComment {
                    error("comment is longer than \(NftLayout.maxComment) bytes, the most nft keeps")
                } else if text.utf8.contains(0) {
                    error("comment contains a NUL byte")
                }
                comment = text
            }
        }

        func natAllowed(_ name: String, hooks allowed: Set<Hook>) {
            if table.name != "nat" { error("\(name) needs a nat chain; only the nat table's chains are") }
            let wrong = hooks.subtracting(allowed)
            if !wrong.isEmpty {
                let list = wrong.sorted().map(\.rawValue).joined(separator: ", ")
                let okList = allowed.sorted().map(\.rawValue).joined(separator: " or ")
                error("\(name) is only valid in \(okList); this chain is reached from \(list)")
            }
        }
        func needsPortProtocol(_ name: String) -> Bool {
            if portProtocol?.hasPorts == true { return true }
            error("\(name) with ports needs a tcp, udp or sctp protocol match")
            return false
        }

        switch rule.target {
        case .accept: expressions.append(ImmediateExpression.verdict(.accept))
        case .drop: expressions.append(ImmediateExpression.verdict(.drop))
        case .return: expressions.append(ImmediateExpression.verdict(.return))
        case .jump(let name), .goto(let name):
            let isJump = rule.target == .jump(name)
            if let target = table.chain(named: name) {
                if target.isBase { error("\(isJump ? "jump" : "goto") \(name): nftables cannot jump to a base chain") }
            } else {
                error("\(isJump ? "jump" : "goto") \(name): the table has no chain '\(name)'")
            }
            expressions.append(ImmediateExpression.verdict(isJump ? .jump(name) : .goto(name)))
        case .reject(let type):
            if let kind = NftRejectKind.kind(type, family: family) {
                if kind.type == .tcpReset && portProtocol != .tcp { error("reject with tcp reset needs a tcp protocol match") }
                let allowed: Set<Hook> = [.input, .forward, .output]
                let wrong = hooks.subtracting(allowed)
                if !wrong.isEmpty {
                    error("reject is only valid in input, forward and output; this chain is reached from \(wrong.sorted().map(\.rawValue).joined(separator: ", "))")
                }
                expressions.append(RejectExpression(kind.type, code: kind.code))
            } else {
                error("unknown \(family.rawValue) reject type '\(type ?? "")'")
            }
        case let .log(prefix, level):
            if let prefix {
                if prefix.utf8.count > NftLayout.maxLogPrefix { error("log prefix is longer than \(NftLayout.maxLogPrefix) bytes") }
                if prefix.utf8.contains(0) { error("log prefix contains a NUL byte") }
            }
            if let level, level > 7 { error("log level \(level) is not a syslog level (0-7)") }
            expressions.append(LogExpression(prefix: prefix?.isEmpty == true ? nil : prefix, level: UInt32(level ?? NftLayout.defaultLogLevel)))
        case .dnat(let destination), .snat(let destination):
            let isDNAT = if case .dnat = rule.target { true } else { false }
            let name = isDNAT ? "dnat" : "snat"
            natAllowed(name, hooks: isDNAT ? [.prerouting, .output] : [.postrouting, .input])
            if destination.address.family != family {
                error("\(name) to \(destination.address), an address of the other family")
            }
            expressions.append(ImmediateExpression(.data(NftEncoding.addressBytes(destination.address)), into: .r1))
            var flags: NatExpression.Flags = .mapIPs
            var protoMin: NftRegister? = nil
            var protoMax: NftRegister? = nil
            if let ports = destination.ports, needsPortProtocol(name) {
                flags.insert(.protoSpecified)
                expressions.append(ImmediateExpression(.data(NftEncoding.portBytes(ports.first)), into: .r2))
                protoMin = .r2
                protoMax = .r2
                if !ports.isSingle {
                    let r3 = NftRegister(kernel: 3)
                    expressions.append(ImmediateExpression(.data(NftEncoding.portBytes(ports.last)), into: r3))
                    protoMax = r3
                }
            }
            expressions.append(NatExpression(isDNAT ? .dnat : .snat, family: family, addressMin: .r1, addressMax: .r1,
                                             protoMin: protoMin, protoMax: protoMax, flags: flags))
        case .masquerade(let ports):
            natAllowed("masquerade", hooks: [.postrouting])
            if let ports, needsPortProtocol("masquerade") {
                expressions.append(ImmediateExpression(.data(NftEncoding.portBytes(ports.first)), into: .r1))
                if ports.isSingle {
                    expressions.append(MasqExpression(protoMin: .r1, protoMax: .r1))
                } else {
                    expressions.append(ImmediateExpression(.data(NftEncoding.portBytes(ports.last)), into: .r2))
                    expressions.append(MasqExpression(protoMin: .r1, protoMax: .r2))
                }
            } else {
                expressions.append(MasqExpression())
            }
        case .checksumFill:
            break  // left out above
        }
        let failed = bag.diagnostics[errorsBefore...].contains { $0.severity == .error }
        return failed ? nil : NftRule(expressions, comment: comment, provenance: rule.provenance)
    }
}

extension NftRuleLowerer {
    /// The chain's nft rules with every set group (`NftSetGroup`) written as one rule that looks
    /// its key up in a new anonymous set of the table (appended to `sets`). `lowered[i]` is rule
    /// `i` lowered alone (nil for a CHECKSUM rule); the chain must have lowered without errors.
    func grouping(_ rules: [Rule], lowered: [NftRule?], sets: inout [NftSet]) -> [NftRule] {
        var normalized: [Rule] = []
        var origin: [Int] = []
        for (index, rule) in rules.enumerated() {
            guard let rule = NftLowering.normalForm(rule, family: family), lowered[index] != nil else { continue }
            normalized.append(rule)
            origin.append(index)
        }
        var out: [NftRule] = []
        for part in NftSetGroup.plan(normalized, family: family) {
            switch part {
            case .single(let index):
                out.append(lowered[origin[index]]!)
            case let .group(group, indices):
                if let grouped = rule(for: group, sets: &sets) {
                    out.append(grouped)
                } else {
                    out += indices.map { lowered[origin[$0]]! }
                }
            }
        }
        return out
    }

    /// The rule that stands for `group`: the shared matches, the key loads into consecutive
    /// registers from `reg 1` on, a lookup into the group's new set, and the action — the
    /// members' shared statement (taken from the first member's lowering), or for a DNAT map
    /// `nat dnat` from the data the lookup loads into `reg 1` on.
    /// Nil if a part does not lower (it does whenever every member lowered alone).
    func rule(for group: NftSetGroup, sets: inout [NftSet]) -> NftRule? {
        var scratch = DiagnosticBag()
        let first = group.members[0].rule
        guard let firstLowered = lower(first, into: &scratch),
              let matchesOnly = lower(Rule(first.matches, .accept), into: &scratch),
              let restOnly = lower(Rule(group.rest, .accept), into: &scratch) else { return nil }
        let matchCount = matchesOnly.expressions.count - 1
        var expressions = Array(restOnly.expressions.dropLast())

        var word = 0
        for field in group.fields {
            let register = NftRegister(kernel: UInt32(8 + word))
            switch field {
            case .address(let direction):
                let width = UInt32(family.bitWidth / 8)
                expressions.append(PayloadExpression(.network, offset: NftEncoding.addressOffset(direction, family: family), length: width, into: register))
            case .l4proto:
                expressions.append(MetaExpression(.l4proto, into: register))
            case .destinationPort:
                expressions.append(PayloadExpression(.transport, offset: 2, length: 2, into: register))
            }
            word += NftSetGroup.padded(NftSetGroup.width(field, family: family)) / 4
        }

        let isMap = if case .dnatMap = group.action { true } else { false }
        let ordinal = sets.filter { $0.name.hasPrefix(isMap ? "__map" : "__set") }.count
        let name = (isMap ? "__map" : "__set") + String(ordinal)
        let setID = UInt32(sets.count + 1)
        let addressType: UInt32 = family == .ipv4 ? NftSetGroup.TypeID.ipv4Address : NftSetGroup.TypeID.ipv6Address
        var set = NftSet(name: name, flags: [.anonymous, .constant], keyType: NftSetGroup.keyType(group.fields, family: family),
                         keyLength: UInt32(NftSetGroup.keyLength(group.fields, family: family)),
                         elements: group.members.map { NftSetElement(key: $0.key, data: $0.data) }, provenance: first.provenance)
        switch group.action {
        case .shared:
            expressions.append(LookupExpression(set: name, source: .r1, setID: setID))
            expressions += firstLowered.expressions.dropFirst(matchCount)
        case .dnatMap(let withPorts):
            set.flags.insert(.map)
            let addressBytes = UInt32(family.bitWidth / 8)
            set.dataType = withPorts ? addressType << NftSetGroup.TypeID.concatShift | NftSetGroup.TypeID.inetService : addressType
            set.dataLength = withPorts ? addressBytes + 4 : addressBytes
            expressions.append(LookupExpression(set: name, source: .r1, destination: .r1, setID: setID))
            let port: NftRegister? = withPorts ? NftRegister(kernel: 8 + addressBytes / 4) : nil
            var flags: NatExpression.Flags = .mapIPs
            if withPorts { flags.insert(.protoSpecified) }
            expressions.append(NatExpression(.dnat, family: family, addressMin: .r1, addressMax: .r1, protoMin: port, protoMax: port, flags: flags))
        }
        sets.append(set)
        return NftRule(expressions, comment: firstLowered.comment, provenance: first.provenance)
    }
}

extension NftSetGroup {
    /// nft's data type ids (`enum datatypes`), which the kernel keeps opaque and nft reads to
    /// print elements; a concatenation shifts each id in by `concatShift` bits.
    enum TypeID {
        static let ipv4Address: UInt32 = 7
        static let ipv6Address: UInt32 = 8
        static let inetProtocol: UInt32 = 12
        static let inetService: UInt32 = 13
        static let concatShift: UInt32 = 6
        /// `NFT_DATA_VERDICT`: the data type of a verdict map.
        static let verdict: UInt32 = 0xffff_ff00
    }

    /// The key's data type id.
    static func keyType(_ fields: [Field], family: Family) -> UInt32 {
        fields.reduce(0) { type, field in
            let id: UInt32 = switch field {
            case .address: family == .ipv4 ? TypeID.ipv4Address : TypeID.ipv6Address
            case .l4proto: TypeID.inetProtocol
            case .destinationPort: TypeID.inetService
            }
            return type << TypeID.concatShift | id
        }
    }
}
