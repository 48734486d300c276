import WeirDiagnostics
import WeirModel

/// nf_tables program → model: the inverse of `NftLowering`, for reading back what the kernel
/// holds (Weir's own tables, iptables-nft's, or anything written with `nft`).
///
/// Each rule runs through a small register machine: loads (`meta`, `payload`, `ct`, `fib`,
/// `immediate` data) put a symbolic value into their destination register (clobbering the
/// 4-byte registers they overlap), `bitwise` masks it, and `cmp`/`range` turn a register into a
/// match. Every equivalent encoding is accepted:
///
/// * interface compares of any length: a NUL inside the compared bytes means an exact name
///   (iptables-nft compares `strlen + 1` bytes, nft 16), no NUL a prefix (`eth+`);
/// * prefixes as a short payload load (whole bytes) or a longer load with a `bitwise` mask;
/// * port ranges as `range eq/neq` or as `cmp gte` / `cmp lte` (also `gt`/`lt`, and one bound
///   alone), which nft 1.0.6 emits;
/// * `ct state` as `bitwise` + `cmp neq/eq 0`, or a single state compared `eq`/`neq` directly;
/// * `meta l4proto`, or `payload` `ip protocol` (IPv4), for the protocol;
/// * registers in either numbering (`NftRegister` normalises);
/// * `meta nfproto` / `meta protocol` guards of the table's own family (dropped);
/// * `counter`s (ignored);
/// * iptables-nft's xt blobs (`NftXtables`);
/// * `lookup`s into sets of the table (below).
///
/// # Set lookups
///
/// A positive `lookup` into a set (named or anonymous) is lifted by **expanding** the rule: one
/// model rule per element, each with the element's match in place of the lookup and
/// everything else of the rule unchanged, in ascending key order, at the rule's position. The
/// elements of a set are disjoint (the kernel keeps distinct keys and non-overlapping
/// intervals, and the lifter checks it), so a packet matches at most one element, hence at
/// most one of the expanded rules fires: the expansion is exact, also for targets that do not
/// end the chain (LOG, a jump that returns), which would otherwise run more than once. Several
/// lookups in one rule expand to the product of their elements (at most `maxExpansion`
/// rules), first lookup outermost.
///
/// What a key becomes depends on what the register holds:
///
/// * `meta iifname/oifname`: a 16-byte name is an exact interface; an interval from
///   `P` + NULs to `P` + 0xff… (nft's `"br-*"`) is the wildcard `P+`;
/// * a full `ip`/`ip6 saddr/daddr` load: an address, or an interval split into the fewest
///   prefixes that cover it exactly (a CIDR interval is one prefix);
/// * a transport port load (after a tcp/udp/sctp match, or after the protocol field of the
///   same key): a port or a port range;
/// * `meta l4proto` (or `ip protocol`): a protocol, an interval each protocol in it;
/// * anything a `cmp eq` of the key would lift to (the key is compared as `cmp eq` would).
///
/// A **concatenated** key (`ip daddr . meta l4proto . th dport`, longer than what the source
/// register holds) is read field by field from consecutive registers, each field padded to 4
/// bytes; each field of an element becomes its own match (a ranged element — pipapo — the
/// product of its fields' ranges). An element whose padding is not zero matches no packet
/// (the kernel zero-pads every load) and lifts to nothing.
///
/// A **map** lookup (a destination register) also loads each element's value: a vmap's
/// verdict becomes the expanded rule's target; a data map's data is a constant in the
/// destination registers, so `dnat ip to ip daddr . th dport map { … }` lifts to one DNAT rule
/// per element (a constant spanning several registers is read at any of them, as the kernel
/// does). A lookup without a destination into a map tests membership only.
///
/// An inverted lookup (`!= @set`), a catch-all map element (it applies only when no other
/// element does), a set the table does not have, a set whose elements overlap or are
/// malformed, a data map loaded into the verdict register (or the reverse), and a set updated
/// from the packet path (`timeout`, `dynamic`) are errors. A lookup into an empty set matches
/// nothing: the rule lifts to no model rule, with a warning.
///
/// Table names map back with `NftLayout.modelTableName`; base chains keep hook, priority and
/// policy (the chain type is implied by the table). A rule that cannot be lifted is left out
/// and reported as an error naming the nft table, chain and 1-based rule index (located at
/// the rule's provenance when it has one); lifting never traps on malformed input.
public enum NftLifting {
    /// Why a rule has no model meaning.
    public typealias Failure = NftXtables.Failure

    public static func lift(_ program: NftRuleset) -> (ruleset: Ruleset, diagnostics: [Diagnostic]) {
        var bag = DiagnosticBag()
        var ruleset = Ruleset()
        var origin: [String: String] = [:]  // "family name" of a lifted table → its nft name
        for nftTable in program.tables {
            let name = NftLayout.modelTableName(nftTable.name)
            let key = "\(nftTable.family.rawValue) \(name)"
            if let first = origin[key] {
                bag.error("tables \(nftTable.family.rawValue) \(first) and \(nftTable.family.rawValue) \(nftTable.name) both lift to table '\(name)'; keeping the first", at: nil)
                continue
            }
            origin[key] = nftTable.name
            var table = Table(family: nftTable.family, name: name)
            var sets: RuleLifter.SetTable = [:]
            for set in nftTable.sets {
                guard sets[set.name] == nil else {
                    bag.error("table \(nftTable.family.rawValue) \(nftTable.name) has two sets named '\(set.name)'; keeping the first", at: nil)
                    continue
                }
                sets[set.name] = Result { () throws(NftSet.Malformed) in try set.normalized() }
            }
            for nftChain in nftTable.chains {
                let kind: ChainKind = nftChain.base.map { .base(hook: $0.hook, priority: Int($0.priority), policy: $0.policy) } ?? .user
                if table.chain(named: nftChain.name) != nil {
                    bag.error("table \(nftTable.family.rawValue) \(nftTable.name) has two chains named '\(nftChain.name)'; keeping the first", at: nil)
                    continue
                }
                var chain = Chain(name: nftChain.name, kind: kind)
                for (index, nftRule) in nftChain.rules.enumerated() {
                    let lifter = RuleLifter(family: nftTable.family, sets: sets)
                    let place = "table \(nftTable.family.rawValue) \(nftTable.name), chain \(nftChain.name), rule \(index + 1)"
                    switch lifter.liftExpanding(nftRule) {
                    case .success(let expansion):
                        chain.rules.append(contentsOf: expansion.rules)
                        if expansion.rules.isEmpty {
                            let names = expansion.emptySets.map { "'\($0)'" }.joined(separator: ", ")
                            bag.append(Diagnostic(.warning, "\(place): looks up the empty set \(names), so it matches no packet; it lifts to no rule",
                                                  at: nftRule.provenance))
                        }
                    case .failure(let failure):
                        bag.error("\(place): \(failure.message)", at: nftRule.provenance)
                    }
                }
                table.add(chain)
            }
            ruleset.add(table)
        }
        return (ruleset, bag.diagnostics)
    }

    /// Lifts one rule of a table of `family`; the failure says why it has no model meaning.
    /// A rule with a set lookup needs its table's sets (`lift(_:family:sets:)`).
    public static func lift(_ rule: NftRule, family: Family) -> Result<Rule, Failure> {
        let lifter = RuleLifter(family: family)
        return lifter.lift(rule)
    }

    /// Lifts one rule of a table of `family` with sets `sets`: one model rule, or one per
    /// element (combination) of the sets it looks up — none when a set is empty.
    public static func lift(_ rule: NftRule, family: Family, sets: [NftSet]) -> Result<[Rule], Failure> {
        var table: RuleLifter.SetTable = [:]
        for set in sets where table[set.name] == nil {
            table[set.name] = Result { () throws(NftSet.Malformed) in try set.normalized() }
        }
        return RuleLifter(family: family, sets: table).liftExpanding(rule).map(\.rules)
    }

    /// The most model rules one nft rule may expand into (the product of its sets' elements).
    public static let maxExpansion = 1 << 20
}

/// The register machine that lifts one rule.
struct RuleLifter {
    typealias Failure = NftXtables.Failure

    indirect enum Value: CustomStringConvertible {
        case meta(MetaExpression.Key)
        case payload(PayloadExpression.Base, offset: UInt32, length: UInt32)
        case ct(CtExpression.Key)
        case fib(FibExpression.Flags, FibExpression.Result)
        case data([UInt8])
        case masked(Value, mask: [UInt8])

        var description: String {
            switch self {
            case .meta(let key): "meta \(key.name)"
            case let .payload(base, offset, length): "payload \(length)b @ \(base.name) header + \(offset)"
            case .ct(let key): "ct \(key.name)"
            case let .fib(flags, result): FibExpression(flags: flags, result: result).description
            case .data(let bytes): "immediate data \(bytes.nftWords)"
            case let .masked(inner, mask): "(\(inner)) & \(mask.nftWords)"
            }
        }
    }

    struct Slot {
        var value: Value
        /// Bytes written.
        var width: Int
    }

    /// A port compared with bounds (`cmp gte/gt/lte/lt`), collected until the register changes.
    struct PortBounds {
        var register: UInt32
        var direction: Direction
        var low: UInt16
        var high: UInt16
    }

    /// A table's sets by name, normalised (or why they cannot be).
    typealias SetTable = [String: Result<NftSet, NftSet.Malformed>]

    let family: Family
    let sets: SetTable
    var registers: [UInt32: Slot] = [:]
    var matches: [Match] = []
    var target: Target? = nil
    var portProtocol: TransportProtocol? = nil
    var bounds: PortBounds? = nil
    /// Set after a lookup into an empty set: the rule matches nothing, and this state is only
    /// carried on to check the rest of the rule.
    var vacuous = false

    init(family: Family, sets: SetTable = [:]) {
        self.family = family
        self.sets = sets
    }

    /// What one rule lifts to.
    struct Expansion {
        /// One rule, or one per element combination of the rule's lookups.
        var rules: [Rule]
        /// The empty sets looked up (when they make `rules` empty).
        var emptySets: [String]
    }

    /// Lifts a rule that must come out as exactly one model rule.
    func lift(_ rule: NftRule) -> Result<Rule, Failure> {
        liftExpanding(rule).flatMap { expansion in
            guard expansion.rules.count == 1 else {
                return .failure(Failure("the rule lifts to \(expansion.rules.count) model rules, not one"))
            }
            return .success(expansion.rules[0])
        }
    }

    /// Lifts a rule, expanding its set lookups: the machine runs once per element combination
    /// (a copy of the state per element at each lookup).
    func liftExpanding(_ rule: NftRule) -> Result<Expansion, Failure> {
        do throws(Failure) {
            // Registers 1…7 of the 4-byte numbering do not exist (and cannot even be printed).
            for (index, expression) in rule.expressions.enumerated() {
                if let bad = Self.registers(of: expression).first(where: { (1...7).contains($0.index32) }) {
                    throw Failure("expression \(index + 1) ('\(type(of: expression).kind)') uses register number \(bad.index32), which is neither NFT_REG_1…4 nor NFT_REG32_00…15")
                }
            }
            var states = [self]
            var emptySets: [String] = []
            for (index, expression) in rule.expressions.enumerated() {
                do throws(Failure) {
                    if let lookup = expression as? LookupExpression {
                        var next: [RuleLifter] = []
                        // Every state reads the same registers, so the first tells the product.
                        if let first = states.first, states.count * max(1, try first.elements(of: lookup).count) > NftLifting.maxExpansion {
                            throw Failure("the rule's set lookups expand to more than \(NftLifting.maxExpansion) rules")
                        }
                        for state in states {
                            let members = try state.elements(of: lookup)
                            if state.vacuous || members.isEmpty {
                                if members.isEmpty && !emptySets.contains(lookup.set) { emptySets.append(lookup.set) }
                                var copy = state
                                copy.vacuous = true
                                next.append(copy)
                                continue
                            }
                            guard next.count + members.count <= NftLifting.maxExpansion else {
                                throw Failure("the rule's set lookups expand to more than \(NftLifting.maxExpansion) rules")
                            }
                            for member in members {
                                var copy = state
                                do throws(Failure) {
                                    try copy.apply(member, lookup)
                                } catch {
                                    throw Failure("element \(member): \(error.message)")
                                }
                                next.append(copy)
                            }
                        }
                        states = next
                    } else {
                        for i in states.indices { try states[i].step(expression) }
                    }
                } catch {
                    throw Failure("expression \(index + 1) \(expression): \(error.message)")
                }
            }
            var rules: [Rule] = []
            for var state in states {
                let lifted = try state.finish(rule)
                if !state.vacuous { rules.append(lifted) }
            }
            return .success(Expansion(rules: rules, emptySets: rules.isEmpty ? emptySets : []))
        } catch {
            return .failure(error)
        }
    }

    /// The model rule of a state that has run every expression.
    mutating func finish(_ rule: NftRule) throws(Failure) -> Rule {
        try flushBounds()
        guard let target else {
            throw Failure("the rule has no verdict or action; the model needs one")
        }
        var matches = self.matches
        if let comment = rule.comment { matches.append(.comment(comment)) }
        return Rule(matches, target, provenance: rule.provenance)
    }

    // MARK: Registers

    /// The registers an expression of a known kind names.
    static func registers(of expression: any NftExpression) -> [NftRegister] {
        switch expression {
        case let e as MetaExpression: [e.destination]
        case let e as PayloadExpression: [e.destination]
        case let e as CtExpression: [e.destination]
        case let e as FibExpression: [e.destination]
        case let e as BitwiseExpression: [e.source, e.destination]
        case let e as CmpExpression: [e.source]
        case let e as RangeExpression: [e.source]
        case let e as ImmediateExpression: [e.destination]
        case let e as NatExpression: [e.addressMin, e.addressMax, e.protoMin, e.protoMax].compactMap { $0 }
        case let e as MasqExpression: [e.protoMin, e.protoMax].compactMap { $0 }
        case let e as LookupExpression: [e.source] + [e.destination].compactMap { $0 }
        default: []
        }
    }

    mutating func write(_ register: NftRegister, _ value: Value, width: Int) throws(Failure) {
        let index = register.index32
        guard index >= 8, index <= 23 else {
            throw Failure("writes register \(register), not a data register")
        }
        let words = UInt32(max(1, (width + 3) / 4))
        guard index + words - 1 <= 23 else { throw Failure("writes past the last register") }
        if let bounds, bounds.register >= index && bounds.register < index + words { try flushBounds() }
        for (other, slot) in registers {
            let otherWords = UInt32(max(1, (slot.width + 3) / 4))
            if other < index + words && index < other + otherWords { registers[other] = nil }
        }
        registers[index] = Slot(value: value, width: width)
    }

    func read(_ register: NftRegister) throws(Failure) -> Slot {
        guard let slot = registers[register.index32] else {
            throw Failure("reads register \(register), which holds nothing")
        }
        return slot
    }

    // MARK: Expressions

    mutating func step(_ expression: any NftExpression) throws(Failure) {
        if target != nil, !(expression is CounterExpression) {
            throw Failure(Self.isAction(expression)
                ? "a second action; the model has one per rule"
                : "comes after the rule's action; the model has one action, last")
        }
        switch expression {
        case is CounterExpression:
            break
        case let meta as MetaExpression:
            let width: Int = switch meta.key {
            case .iifname, .oifname: 16
            case .l4proto, .nfproto: 1
            case .protocol: 2
            default: 4
            }
            try write(meta.destination, .meta(meta.key), width: width)
        case let payload as PayloadExpression:
            try write(payload.destination, .payload(payload.base, offset: payload.offset, length: payload.length), width: Int(payload.length))
        case let ct as CtExpression:
            try write(ct.destination, .ct(ct.key), width: 4)
        case let fib as FibExpression:
            try write(fib.destination, .fib(fib.flags, fib.result), width: 4)
        case let bitwise as BitwiseExpression:
            let slot = try read(bitwise.source)
            guard bitwise.xor.count == bitwise.mask.count else { throw Failure("mask and xor differ in length") }
            guard bitwise.xor.allSatisfy({ $0 == 0 }) else { throw Failure("xor with a non-zero value, which no model match produces") }
            guard bitwise.mask.count == slot.width else {
                throw Failure("masks \(bitwise.mask.count) bytes of a \(slot.width)-byte value")
            }
            let value: Value
            if case let .masked(inner, mask) = slot.value {
                value = .masked(inner, mask: zip(mask, bitwise.mask).map { $0 & $1 })
            } else {
                value = .masked(slot.value, mask: bitwise.mask)
            }
            try write(bitwise.destination, value, width: slot.width)
        case let immediate as ImmediateExpression:
            switch immediate.value {
            case .data(let bytes):
                try write(immediate.destination, .data(bytes), width: bytes.count)
            case .verdict(let verdict):
                try setVerdict(verdict)
            }
        case let cmp as CmpExpression:
            try compare(cmp)
        case let range as RangeExpression:
            try rangeCompare(range)
        case let nat as NatExpression:
            try setTarget(try natTarget(nat))
        case let masq as MasqExpression:
            try setTarget(.masquerade(ports: try ports(min: masq.protoMin, max: masq.protoMax)))
        case let reject as RejectExpression:
            guard let kind = NftRejectKind.kind(reject, family: family) else {
                throw Failure("reject type \(reject.type.rawValue) code \(reject.code) has no \(family.rawValue) REJECT type in the model")
            }
            try setTarget(kind.target(family: family))
        case let log as LogExpression:
            if let level = log.level, level > 7 { throw Failure("log level \(level) is not a syslog level") }
            let level = log.level.map { UInt8($0) }
            try setTarget(.log(prefix: log.prefix?.isEmpty == true ? nil : log.prefix,
                               level: level == NftLayout.defaultLogLevel ? nil : level))
        case is LookupExpression:
            throw Failure("a set lookup is lifted with its table's sets (liftExpanding)")
        case let xt as XtablesExpression:
            try flushBounds()
            switch NftXtables.lift(xt, family: family, portProtocol: portProtocol) {
            case .success(.matches(let lifted)): matches.append(contentsOf: lifted)
            case .success(.target(let lifted)): try setTarget(lifted)
            case .failure(let failure): throw failure
            }
        default:
            throw Failure("the '\(type(of: expression).kind)' expression has no meaning in the model")
        }
    }

    /// Whether an expression is a verdict or statement that the model takes as the rule's target.
    static func isAction(_ expression: any NftExpression) -> Bool {
        switch expression {
        case let immediate as ImmediateExpression:
            if case .verdict = immediate.value { return true }
            return false
        case let xt as XtablesExpression: return xt.role == .target
        case is NatExpression, is MasqExpression, is RejectExpression, is LogExpression: return true
        default: return false
        }
    }

    mutating func setVerdict(_ verdict: ImmediateExpression.Verdict) throws(Failure) {
        switch verdict {
        case .accept: try setTarget(.accept)
        case .drop: try setTarget(.drop)
        case .return: try setTarget(.return)
        case .jump(let chain): try setTarget(.jump(chain))
        case .goto(let chain): try setTarget(.goto(chain))
        case .continue: throw Failure("verdict continue, which the model has no target for")
        }
    }

    mutating func setTarget(_ new: Target) throws(Failure) {
        try flushBounds()
        if target != nil { throw Failure("a second action; the model has one per rule") }
        target = new
    }

    // MARK: Compares

    mutating func compare(_ cmp: CmpExpression) throws(Failure) {
        let slot = try read(cmp.source)
        let value = slot.value
        let data = cmp.data
        func eqOrNeq() throws(Failure) -> Bool {
            switch cmp.op {
            case .eq: return false
            case .neq: return true
            default: throw Failure("'\(cmp.op.name)' compare of \(value), which the model only compares for (in)equality")
            }
        }

        // Port bounds first: they merge with the bounds before them.
        if case let .payload(.transport, offset, 2) = value, offset == 0 || offset == 2, data.count == 2,
           [.gte, .gt, .lte, .lt].contains(cmp.op) {
            try requirePortProtocol()
            let direction: Direction = offset == 0 ? .source : .destination
            let port = NftEncoding.port(data)!
            if let current = bounds, current.register != cmp.source.index32 || current.direction != direction { try flushBounds() }
            var b = bounds ?? PortBounds(register: cmp.source.index32, direction: direction, low: 0, high: 65535)
            switch cmp.op {
            case .gte: b.low = max(b.low, port)
            case .gt:
                guard port < 65535 else { throw Failure("port > 65535 matches nothing") }
                b.low = max(b.low, port + 1)
            case .lte: b.high = min(b.high, port)
            default:
                guard port > 0 else { throw Failure("port < 0 matches nothing") }
                b.high = min(b.high, port - 1)
            }
            guard b.low <= b.high else { throw Failure("port bounds \(b.low)…\(b.high) match nothing") }
            bounds = b
            return
        }
        try flushBounds()

        switch value {
        case .meta(let key) where key == .iifname || key == .oifname:
            let negated = try eqOrNeq()
            guard let name = NftEncoding.interface(fromCmpData: data) else {
                throw Failure("interface name data \(data.nftWords) is neither an exact name nor a prefix")
            }
            matches.append(key == .iifname ? .inInterface(name, negated: negated) : .outInterface(name, negated: negated))
        case .meta(.l4proto):
            let negated = try eqOrNeq()
            guard data.count == 1 else { throw Failure("l4proto compared with \(data.count) bytes") }
            try protocolMatch(TransportProtocol(number: data[0]), negated: negated)
        case .meta(.nfproto):
            let negated = try eqOrNeq()
            guard data.count == 1 else { throw Failure("nfproto compared with \(data.count) bytes") }
            let own = data[0] == NftEncoding.nfproto(family)
            guard own != negated else { throw Failure("an nfproto guard that no \(family.rawValue) packet passes") }
        case .meta(.protocol):
            let negated = try eqOrNeq()
            guard data.count == 2 else { throw Failure("meta protocol compared with \(data.count) bytes") }
            let own = UInt16(data[0]) << 8 | UInt16(data[1]) == NftEncoding.ethertype(family)
            guard own != negated else { throw Failure("a meta protocol guard that no \(family.rawValue) packet passes") }
        case .payload(.network, 9, 1) where family == .ipv4:
            let negated = try eqOrNeq()
            guard data.count == 1 else { throw Failure("ip protocol compared with \(data.count) bytes") }
            try protocolMatch(TransportProtocol(number: data[0]), negated: negated)
        case .payload(.network, let offset, let length), .masked(.payload(.network, let offset, let length), _):
            let negated = try eqOrNeq()
            try addressMatch(value, offset: offset, length: length, data: data, negated: negated)
        case .payload(.transport, let offset, 2) where offset == 0 || offset == 2:
            let negated = try eqOrNeq()
            try requirePortProtocol()
            guard let port = NftEncoding.port(data) else { throw Failure("port compared with \(data.count) bytes") }
            matches.append(.port(offset == 0 ? .source : .destination, PortRange(port), negated: negated))
        case .ct(.state), .masked(.ct(.state), _):
            guard data.count == 4, let compared = NftEncoding.hostU32(data) else { throw Failure("ct state compared with \(data.count) bytes") }
            let negated = try eqOrNeq()
            try stateMatch(value, compared: compared, negated: negated)
        case .fib(let flags, .addressType) where flags == .saddr || flags == .daddr:
            let negated = try eqOrNeq()
            guard data.count == 4, let rtn = NftEncoding.hostU32(data), let type = NftEncoding.addressType(rtn: rtn) else {
                throw Failure("fib type compared with \(data.nftWords), not an address type")
            }
            matches.append(.addressType(flags == .saddr ? .source : .destination, type, negated: negated))
        default:
            throw Failure("a compare of \(value), which no model match produces")
        }
    }

    mutating func rangeCompare(_ range: RangeExpression) throws(Failure) {
        let slot = try read(range.source)
        try flushBounds()
        guard case let .payload(.transport, offset, 2) = slot.value, offset == 0 || offset == 2 else {
            throw Failure("a range compare of \(slot.value), which no model match produces")
        }
        try requirePortProtocol()
        guard let low = NftEncoding.port(range.from), let high = NftEncoding.port(range.to) else {
            throw Failure("a port range of \(range.from.count) and \(range.to.count) bytes")
        }
        guard low <= high else { throw Failure("a reversed port range \(low)-\(high)") }
        matches.append(.port(offset == 0 ? .source : .destination, PortRange(low, high), negated: range.op == .neq))
    }

    mutating func flushBounds() throws(Failure) {
        guard let b = bounds else { return }
        bounds = nil
        matches.append(.port(b.direction, PortRange(b.low, b.high)))
    }

    func requirePortProtocol() throws(Failure) {
        guard portProtocol?.hasPorts == true else {
            throw Failure("a transport port load without a tcp, udp or sctp protocol match before it")
        }
    }

    mutating func protocolMatch(_ proto: TransportProtocol, negated: Bool) throws(Failure) {
        if !negated && portProtocol == nil { portProtocol = proto }
        matches.append(.protocol(proto, negated: negated))
    }

    mutating func addressMatch(_ value: Value, offset: UInt32, length: UInt32, data: [UInt8], negated: Bool) throws(Failure) {
        let width = UInt32(family.bitWidth / 8)
        let direction: Direction
        if offset == NftEncoding.addressOffset(.source, family: family) {
            direction = .source
        } else if offset == NftEncoding.addressOffset(.destination, family: family) {
            direction = .destination
        } else {
            throw Failure("a compare of network header bytes \(offset)…\(offset + length), which is not an \(family.rawValue) address")
        }
        guard length >= 1, length <= width, data.count == Int(length) else {
            throw Failure("an address compare of \(data.count) bytes against a \(length)-byte load")
        }
        var prefixLength = Int(length) * 8
        if case let .masked(_, mask) = value {
            guard let n = NftEncoding.prefixLength(ofMask: mask) else {
                throw Failure("address mask \(mask.nftWords) is not a prefix")
            }
            prefixLength = n
            if zip(data, mask).contains(where: { $0 & ~$1 != 0 }) {
                throw Failure("compares address bits outside its mask \(mask.nftWords), which no packet matches")
            }
        }
        guard let address = NftEncoding.address(family: family, bytes: data) else { throw Failure("bad address bytes") }
        if prefixLength == 0 {
            guard !negated else { throw Failure("an address compare no packet passes") }
            return  // matches every packet
        }
        matches.append(.address(direction, Prefix(address: address, length: prefixLength), negated: negated))
    }

    mutating func stateMatch(_ value: Value, compared: UInt32, negated: Bool) throws(Failure) {
        func states(_ mask: UInt32) throws(Failure) -> Set<ConntrackState> {
            guard let states = NftEncoding.ctStates(fromMask: mask), !states.isEmpty else {
                throw Failure("ct state bits 0x\(String(mask, radix: 16)) are not conntrack states")
            }
            return states
        }
        if case let .masked(_, maskBytes) = value {
            guard let mask = NftEncoding.hostU32(maskBytes) else { throw Failure("ct state mask of \(maskBytes.count) bytes") }
            if compared == 0 {
                // (state & mask) != 0: one of the states; == 0: none of them.
                matches.append(.conntrackState(try states(mask), negated: !negated))
            } else if compared == mask && mask.nonzeroBitCount == 1 {
                matches.append(.conntrackState(try states(mask), negated: negated))
            } else {
                throw Failure("ct state & 0x\(String(mask, radix: 16)) compared with 0x\(String(compared, radix: 16)), which no state set means")
            }
            return
        }
        // A packet has exactly one state bit, so only a single state compares meaningfully.
        guard compared.nonzeroBitCount == 1 else {
            throw Failure("ct state compared with 0x\(String(compared, radix: 16)) as a value; a packet has one state, so this is not a state set (write it with a mask)")
        }
        matches.append(.conntrackState(try states(compared), negated: negated))
    }

    // MARK: Set lookups

    /// What one element of a set stands for, as the compare that replaces the lookup.
    enum Member: CustomStringConvertible {
        /// The key itself, compared as `cmp eq` (an interface prefix without its NULs).
        case equal([UInt8])
        /// An address prefix: `data` under `mask`.
        case prefix(data: [UInt8], mask: [UInt8])
        /// A port range, compared as `range eq`.
        case range([UInt8], [UInt8])

        var description: String {
            switch self {
            case .equal(let bytes): bytes.nftWords
            case let .prefix(data, mask): "\(data.nftWords) & \(mask.nftWords)"
            case let .range(from, to): "\(from.nftWords) … \(to.nftWords)"
            }
        }
    }

    /// What one element of a looked-up set does to the rule: a compare per key field, and what a
    /// map loads (data into the destination register, or the rule's verdict).
    struct Element: CustomStringConvertible {
        var fields: [(register: NftRegister, member: Member)]
        var data: [UInt8]?
        var verdict: ImmediateExpression.Verdict?

        var description: String {
            var text = fields.map { "\($0.member)" }.joined(separator: " . ")
            if let data { text += " : \(data.nftWords)" }
            if let verdict { text += " : \(ImmediateExpression.verdict(verdict))" }
            return text
        }
    }

    /// One field of a (possibly concatenated) key: the register it is loaded into, what that
    /// holds, and where it sits in the key.
    struct KeyField {
        var register: NftRegister
        var slot: Slot
        var offset: Int
    }

    /// The elements a positive lookup expands to, in key order; checks the lookup, the set and
    /// its elements against what the registers hold.
    func elements(of lookup: LookupExpression) throws(Failure) -> [Element] {
        if target != nil { throw Failure("comes after the rule's action; the model has one action, last") }
        if lookup.invert {
            throw Failure("an inverted lookup (!= @\(lookup.set)) matches packets outside every element; the model cannot say that in one rule, and expanding applies only to positive lookups")
        }
        guard let entry = sets[lookup.set] else {
            throw Failure("set '\(lookup.set)' is not in the table")
        }
        let set: NftSet
        switch entry {
        case .success(let normalized): set = normalized
        case .failure(let malformed): throw Failure("set '\(lookup.set)' is malformed: \(malformed.message)")
        }
        if let destination = lookup.destination {
            guard set.isMap, !set.flags.contains(.object) else {
                throw Failure("a lookup into '\(set.name)' loads data into register \(destination), but the set is not a map")
            }
            let isVerdictMap = set.dataType == NftSetGroup.TypeID.verdict
            if isVerdictMap != (destination == .verdict) {
                throw Failure(isVerdictMap ? "verdict map '\(set.name)' loads into data register \(destination)"
                                           : "map '\(set.name)' of data loads into the verdict register")
            }
        }
        let changing = set.flags.intersection([.timeout, .eval])
        if !changing.isEmpty {
            throw Failure("set '\(set.name)' has flags 0x\(String(set.flags.rawValue, radix: 16)): its elements \(set.flags.contains(.eval) ? "are added from the packet path" : "expire"), so they are not a fixed part of the ruleset")
        }
        let fields = try keyFields(of: set, from: lookup.source)
        let keyLength = Int(set.keyLength)
        let concatenated = fields.count > 1
        var out: [Element] = []
        var previous: NftSetElement?
        var ranged: [NftSetElement] = []
        for element in set.elements {
            if element.flags.contains(.catchall) {
                throw Failure("set '\(set.name)' has a catch-all element, which matches only when no other element does; the model has no rule for that")
            }
            guard element.key.count == keyLength, element.last.count == keyLength else {
                throw Failure("set '\(set.name)' has an element of \(element.key.count) bytes; its keys have \(keyLength)")
            }
            guard !NftSetElement.precedes(element.last, element.key) else {
                throw Failure("set '\(set.name)' has the reversed range \(element.key.nftWords) … \(element.last.nftWords)")
            }
            if !concatenated, let previous, !NftSetElement.precedes(previous.last, element.key) {
                throw Failure("elements \(previous.key.nftWords) and \(element.key.nftWords) of set '\(set.name)' overlap; expanding is exact only for disjoint elements")
            }
            if concatenated, element.keyEnd != nil { ranged.append(element) }
            previous = element
            var data: [UInt8]?
            var verdict: ImmediateExpression.Verdict?
            if let destination = lookup.destination {
                if destination == .verdict {
                    guard let v = element.verdict else { throw Failure("element \(element.key.nftWords) of verdict map '\(set.name)' has no verdict the model knows") }
                    verdict = v
                } else {
                    guard let d = element.data else { throw Failure("element \(element.key.nftWords) of map '\(set.name)' has no data") }
                    if let length = set.dataLength, d.count != Int(length) {
                        throw Failure("element \(element.key.nftWords) of map '\(set.name)' has \(d.count) bytes of data; the map's data has \(length)")
                    }
                    data = d
                }
            }
            // Each field's part of the key; a field's padding is zero in every packet's key, so
            // an element with other padding matches nothing.
            var perField: [[Member]] = []
            var matchesNothing = false
            for field in fields {
                let width = field.slot.width, padded = concatenated ? (width + 3) / 4 * 4 : width
                let range = field.offset..<(field.offset + width)
                let padding = (field.offset + width)..<(field.offset + padded)
                if element.key[padding].contains(where: { $0 != 0 }) || element.last[padding].contains(where: { $0 != 0 }) {
                    matchesNothing = true
                    break
                }
                let part = NftSetElement(key: Array(element.key[range]), keyEnd: element.keyEnd.map { Array($0[range]) })
                perField.append(try memberList(part, value: field.slot.value))
            }
            if matchesNothing { continue }
            // One expansion per combination of the fields' members (one each, unless ranged).
            var combinations: [[Member]] = [[]]
            for members in perField {
                combinations = combinations.flatMap { prefix in members.map { prefix + [$0] } }
            }
            for combination in combinations {
                out.append(Element(fields: zip(fields, combination).map { ($0.register, $1) }, data: data, verdict: verdict))
            }
        }
        try Self.checkDisjoint(ranged, set: set, fields: fields)
        return out
    }

    /// The key fields a lookup reads from `source` on: one field when the set's key is exactly
    /// what the register holds, else a concatenation of the loads in consecutive registers,
    /// each padded to 4 bytes.
    func keyFields(of set: NftSet, from source: NftRegister) throws(Failure) -> [KeyField] {
        let keyLength = Int(set.keyLength)
        let first = try read(source)
        if keyLength == first.width { return [KeyField(register: source, slot: first, offset: 0)] }
        guard keyLength > first.width else {
            throw Failure("set '\(set.name)' has \(keyLength)-byte keys, but register \(source) holds the \(first.width)-byte \(first.value)")
        }
        var fields: [KeyField] = []
        var index = source.index32
        var offset = 0
        while offset < keyLength {
            guard let slot = registers[index] else {
                throw Failure("set '\(set.name)' has \(keyLength)-byte keys, but register \(NftRegister(kernel: index)) (byte \(offset) of the key) holds nothing")
            }
            fields.append(KeyField(register: NftRegister(kernel: index), slot: slot, offset: offset))
            let padded = (slot.width + 3) / 4 * 4
            offset += padded
            index += UInt32(padded / 4)
        }
        guard offset == keyLength else {
            throw Failure("set '\(set.name)' has \(keyLength)-byte keys, which do not end where a field loaded from register \(source) on ends")
        }
        if !set.fieldLengths.isEmpty {
            let padded = set.fieldLengths.map { (Int($0) + 3) / 4 * 4 }
            guard padded == fields.map({ ($0.slot.width + 3) / 4 * 4 }) else {
                throw Failure("set '\(set.name)' declares fields of \(set.fieldLengths.map(String.init).joined(separator: ", ")) bytes, but the registers hold \(fields.map { String($0.slot.width) }.joined(separator: ", "))")
            }
        }
        return fields
    }

    /// Ranged elements of a concatenated set must not overlap (every field's ranges meet).
    static func checkDisjoint(_ ranged: [NftSetElement], set: NftSet, fields: [KeyField]) throws(Failure) {
        guard ranged.count > 1 else { return }
        for i in ranged.indices {
            for j in ranged.indices where j > i {
                let (a, b) = (ranged[i], ranged[j])
                let overlap = fields.allSatisfy { field in
                    let r = field.offset..<(field.offset + field.slot.width)
                    let (aLow, aHigh, bLow, bHigh) = (Array(a.key[r]), Array(a.last[r]), Array(b.key[r]), Array(b.last[r]))
                    return !NftSetElement.precedes(aHigh, bLow) && !NftSetElement.precedes(bHigh, aLow)
                }
                if overlap {
                    throw Failure("elements \(a.key.nftWords) and \(b.key.nftWords) of set '\(set.name)' overlap; expanding is exact only for disjoint elements")
                }
            }
        }
    }

    /// What one (normalised) element stands for when the register holds `value`.
    func memberList(_ element: NftSetElement, value: Value) throws(Failure) -> [Member] {
        let key = element.key
        guard let end = element.keyEnd, end != key else { return [.equal(key)] }
        let range = "\(key.nftWords) … \(end.nftWords)"
        switch value {
        case .meta(.l4proto):
            return (key[0]...end[0]).map { .equal([$0]) }
        case .payload(.network, 9, 1) where family == .ipv4:
            return (key[0]...end[0]).map { .equal([$0]) }
        case .payload(.transport, let offset, 2) where offset == 0 || offset == 2:
            return [.range(key, end)]
        case .payload(.network, _, let length) where Int(length) == family.bitWidth / 8:
            return Self.prefixes(from: key, through: end).map { .prefix(data: $0.bytes, mask: NftEncoding.prefixMask(length: $0.length, byteCount: key.count)) }
        case .meta(.iifname), .meta(.oifname):
            // nft's "br-*": from the prefix with NULs to the prefix with 0xff bytes.
            let count = (key.lastIndex { $0 != 0 } ?? -1) + 1
            guard count > 0, end == Array(key[..<count]) + [UInt8](repeating: 0xff, count: key.count - count) else {
                throw Failure("interface range \(range) is neither one name nor a name prefix")
            }
            return [.equal(Array(key[..<count]))]
        default:
            throw Failure("the range \(range) of \(value), which no model match produces")
        }
    }

    /// Replaces the lookup by one element: its fields' compares, then what a map loads.
    mutating func apply(_ element: Element, _ lookup: LookupExpression) throws(Failure) {
        for (register, member) in element.fields {
            try apply(member, register: register)
        }
        if let data = element.data, let destination = lookup.destination {
            try write(destination, .data(data), width: data.count)
        }
        if let verdict = element.verdict { try setVerdict(verdict) }
    }

    /// Replaces a key field by one member's compare.
    mutating func apply(_ member: Member, register: NftRegister) throws(Failure) {
        switch member {
        case .equal(let bytes):
            try compare(CmpExpression(.eq, bytes, source: register))
        case let .range(from, to):
            try rangeCompare(RangeExpression(.eq, from: from, to: to, source: register))
        case let .prefix(data, mask):
            let slot = try read(register)
            guard case let .payload(.network, offset, length) = slot.value else {
                throw Failure("a prefix of \(slot.value), which is not an address")
            }
            try flushBounds()
            try addressMatch(.masked(slot.value, mask: mask), offset: offset, length: length, data: data, negated: false)
        }
    }

    /// The fewest prefixes that cover `from` … `through` (inclusive, big-endian, equal lengths
    /// of at most 16 bytes) exactly, in ascending order.
    static func prefixes(from: [UInt8], through: [UInt8]) -> [(bytes: [UInt8], length: Int)] {
        let width = from.count, bits = width * 8
        func number(_ bytes: [UInt8]) -> UInt128 { bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
        func bytes(_ n: UInt128) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: n >> UInt128(8 * (width - 1 - $0))) } }
        var low = number(from)
        let high = number(through)
        var out: [(bytes: [UInt8], length: Int)] = []
        while low <= high {
            // The largest aligned block that starts at `low` and ends within `high`.
            var size = min(bits, low.trailingZeroBitCount)
            func span(_ size: Int) -> UInt128 { size >= 128 ? .max : (UInt128(1) << UInt128(size)) - 1 }
            while size > 0 && (high - low) < span(size) { size -= 1 }
            out.append((bytes(low), bits - size))
            let last = low + span(size)
            if last >= high { break }
            low = last + 1
        }
        return out
    }

    // MARK: Actions

    /// The `width` constant bytes the kernel reads from `register`: the start of an immediate
    /// written there, or the part of a longer constant (a map's data) that covers it.
    func data(_ register: NftRegister?, what: String, width: Int) throws(Failure) -> [UInt8]? {
        guard let register else { return nil }
        let index = register.index32
        for (start, slot) in registers where start <= index && index < start + UInt32(max(1, (slot.width + 3) / 4)) {
            guard case .data(let bytes) = slot.value else {
                throw Failure("the \(what) register \(register) holds a packet value, not a constant")
            }
            let offset = Int(index - start) * 4
            guard offset + width <= bytes.count else {
                throw Failure("the \(what) register \(register) holds \(bytes.count - offset) byte(s); \(what == "port" ? "a port" : "an \(family.rawValue) address") needs \(width)")
            }
            return Array(bytes[offset..<(offset + width)])
        }
        throw Failure("reads register \(register), which holds nothing")
    }

    func ports(min: NftRegister?, max: NftRegister?) throws(Failure) -> PortRange? {
        guard let lowBytes = try data(min, what: "port", width: 2) else {
            if max != nil { throw Failure("a port maximum without a minimum") }
            return nil
        }
        let highBytes = try data(max, what: "port", width: 2) ?? lowBytes
        guard let low = NftEncoding.port(lowBytes), let high = NftEncoding.port(highBytes) else {
            throw Failure("ports of \(lowBytes.count) and \(highBytes.count) bytes")
        }
        guard low <= high else { throw Failure("a reversed port range \(low)-\(high)") }
        return PortRange(low, high)
    }

    func natTarget(_ nat: NatExpression) throws(Failure) -> Target {
        guard nat.family == family else {
            throw Failure("\(nat.family.rawValue) NAT in an \(family.rawValue) table")
        }
        let unknown = nat.flags.subtracting([.mapIPs, .protoSpecified])
        guard unknown.isEmpty else {
            throw Failure("NAT flags 0x\(String(unknown.rawValue, radix: 16)) (random, persistent, …) the model cannot express")
        }
        guard let low = try data(nat.addressMin, what: "address", width: family.bitWidth / 8) else {
            throw Failure("NAT without an address, which the model cannot express")
        }
        let high = try data(nat.addressMax, what: "address", width: family.bitWidth / 8) ?? low
        guard low == high else { throw Failure("NAT to an address range; the model has one address") }
        guard low.count == family.bitWidth / 8, let address = NftEncoding.address(family: family, bytes: low) else {
            throw Failure("a NAT address of \(low.count) bytes in an \(family.rawValue) table")
        }
        let destination = NATDestination(address: address, ports: try ports(min: nat.protoMin, max: nat.protoMax))
        return nat.type == .dnat ? .dnat(destination) : .snat(destination)
    }
}
