import WeirModel

/// A ruleset and host compiled for `Simulator`: everything a traversal looks at, as small
/// integers in flat arrays, built once by `Simulator.init` and never changed.
///
/// - Interfaces are interned: the host's (`lo` always) and every exact name rules mention get
///   an id; a wildcard pattern (`br-+`) gets a row of booleans over those ids. An input name
///   the host does not know gets `unknownInterface` and is compared as text (rarely).
/// - Addresses are `UInt128` bits (IPv4 in the low 32), prefixes a network and a mask.
/// - Rules are `CompiledRule`s over one array of `CompiledMatch`es; comments are dropped and
///   jump targets resolved to chain indices.
/// - A chain of at least `indexThreshold` rules gets a `ChainIndex`: each rule is filed under
///   the first exact key it requires (protocol and destination port with a destination host,
///   protocol and destination port, destination host, input interface, output interface, the
///   chain's most common source prefix length, then destination prefix length), or with the
///   unkeyed rules. A packet's candidates are the merge, in rule order, of its buckets and the
///   unkeyed rules: 10,000 port maps cost a few hash lookups, not 10,000 comparisons.
/// - Routes are grouped by prefix length, longest first; address types come from one map of the
///   host's local and broadcast addresses.
final class SimulatorProgram: @unchecked Sendable {
    static let noInterface: Int32 = -1
    static let unknownInterface: Int32 = -2
    /// Chains with at least this many rules are indexed.
    static let indexThreshold = 16

    static func stateBit(_ state: ConntrackState) -> UInt8 {
        switch state {
        case .invalid: 1
        case .new: 2
        case .related: 4
        case .established: 8
        case .untracked: 16
        }
    }

    static let newBit = stateBit(.new)

    enum CompiledMatch {
        case input(Int32, negated: Bool)
        case inputWildcard(Int32, negated: Bool)
        case output(Int32, negated: Bool)
        case outputWildcard(Int32, negated: Bool)
        case source(network: UInt128, mask: UInt128, negated: Bool)
        case destination(network: UInt128, mask: UInt128, negated: Bool)
        case transport(UInt8, negated: Bool)
        case sourcePort(UInt16, UInt16, negated: Bool)
        case destinationPort(UInt16, UInt16, negated: Bool)
        case state(UInt8, negated: Bool)
        case sourceType(AddressType, negated: Bool)
        case destinationType(AddressType, negated: Bool)
        /// An address of the other family: never holds.
        case never
    }

    enum CompiledTarget {
        case accept, drop, `return`
        /// LOG, CHECKSUM, a jump to a chain that does not exist, DNAT/SNAT outside nat.
        case `continue`
        case jump(Int32), goto(Int32)
        /// Address and port (-1: keep the port).
        case dnat(IPAddress, Int32), snat(IPAddress, Int32)
        case masquerade(Int32)
    }

    struct CompiledRule {
        var matchStart: Int32
        var matchEnd: Int32
        var target: CompiledTarget
        /// No match and a standard verdict (ACCEPT, DROP, RETURN): the kernel traces it as the
        /// chain's `return` (user chain) or `policy` (base chain).
        var unconditional: Bool
    }

    struct CompiledChain {
        var ruleStart: Int32
        var ruleCount: Int
        var isBase: Bool
        var policyDrops: Bool
        /// Into `indexes`, or -1.
        var index: Int32
        /// The jump depth the kernel's stack allows in this chain's table.
        var tableChainCount: Int
    }

    struct BaseChain {
        var chain: Int32
        var priority: Int
        var isNAT: Bool
    }

    /// A range of `lists`: global rule indices in ascending order.
    struct Bucket {
        var start: Int32
        var end: Int32
    }

    struct PortAddressKey: Hashable {
        /// transport << 16 | destination port.
        var port: UInt32
        var address: UInt128
    }

    struct PrefixIndex {
        var mask: UInt128
        var buckets: [UInt128: Bucket]
    }

    struct ChainIndex {
        var unkeyed: Bucket?
        var byPortAndDestination: [PortAddressKey: Bucket] = [:]
        var byPort: [UInt32: Bucket] = [:]
        var byDestination: [UInt128: Bucket] = [:]
        /// By interface id; empty when no rule is filed by interface.
        var byInput: [Bucket?] = []
        var byOutput: [Bucket?] = []
        var bySourcePrefix: PrefixIndex?
        var byDestinationPrefix: PrefixIndex?
    }

    /// A set of addresses with values: scanned when small, hashed when large; the first value
    /// inserted for an address wins.
    struct AddressMap<Value> {
        private var keys: [UInt128] = []
        private var values: [Value] = []
        private var dictionary: [UInt128: Value]? = nil

        init(_ entries: [(UInt128, Value)]) {
            var seen: [UInt128: Value] = [:]
            for (key, value) in entries where seen[key] == nil {
                seen[key] = value
                keys.append(key)
                values.append(value)
            }
            if keys.count > 8 { dictionary = seen }
        }

        func lookup(_ key: UInt128) -> Value? {
            if let dictionary { return dictionary[key] }
            for i in keys.indices where keys[i] == key { return values[i] }
            return nil
        }
    }

    /// Routing and address types of one family.
    struct FamilyTables {
        var family: Family
        /// The host's own addresses (`.local`) and its subnets' broadcast addresses.
        var special: AddressMap<AddressType>
        /// Routes by prefix length, longest first: mask and network → interface id.
        var routes: [(mask: UInt128, map: AddressMap<Int32>)]
        var loopback: Int32

        func isLocal(_ address: UInt128) -> Bool {
            if family == .ipv4, address >> 24 == 127 { return true }
            return special.lookup(address) == .local
        }

        func route(_ address: UInt128) -> Int32 {
            if isLocal(address) { return loopback }
            for level in routes {
                if let interface = level.map.lookup(address & level.mask) { return interface }
            }
            return SimulatorProgram.noInterface
        }

        /// `HostModel.addressType`, on bits.
        func addressType(_ address: UInt128) -> AddressType {
            if address == 0 { return .unspec }
            if family == .ipv4, address >> 24 == 127 { return .local }
            let special = special.lookup(address)
            if special == .local { return .local }
            if family == .ipv4 {
                if address >> 28 == 0xE { return .multicast }
                if address == 0xFFFF_FFFF { return .broadcast }
            } else if address >> 120 == 0xFF {
                return .multicast
            }
            return special ?? .unicast
        }
    }

    // Interfaces.
    let names: [String]
    private let ids: [String: Int32]
    let isBridge: [Bool]
    let loopback: Int32
    private let wildcards: [String]
    /// wildcard × interface id.
    private let wildcardMatches: [Bool]
    private let primaryV4: [IPAddress?]
    private let primaryV6: [IPAddress?]
    let ipForward: Bool
    let bridgeNetfilter: Bool
    private let v4: FamilyTables
    private let v6: FamilyTables

    // Rules.
    let matchList: UnsafeMutableBufferPointer<CompiledMatch>
    let rules: UnsafeMutableBufferPointer<CompiledRule>
    let chains: UnsafeMutableBufferPointer<CompiledChain>
    let lists: UnsafeMutableBufferPointer<Int32>
    let indexes: [ChainIndex]
    let bases: [BaseChain]
    /// Per family (ip, ip6) and hook (in `Hook.allCases` order): a range of `bases`.
    private let hookRanges: [Range<Int>]

    // Trace text.
    let tableNames: [String]
    let chainNames: [String]
    let policyLocations: [String]
    /// `table:chain:kind:N` of rules that can end a traversal, with the kind their own chain gives them.
    private let ruleLocations: [String]

    init(ruleset: Ruleset, host: HostModel) {
        // Interfaces: the host's, lo, then every exact name the rules mention.
        var names: [String] = []
        var ids: [String: Int32] = [:]
        func intern(_ name: String) -> Int32 {
            if let id = ids[name] { return id }
            let id = Int32(names.count)
            names.append(name)
            ids[name] = id
            return id
        }
        for interface in host.interfaces { _ = intern(interface.name) }
        let loopback = intern("lo")
        for route in host.extraRoutes { _ = intern(route.interface) }
        var wildcards: [String] = []
        var wildcardIDs: [String: Int32] = [:]
        for table in ruleset.tables {
            for chain in table.chains {
                for rule in chain.rules {
                    for match in rule.matches {
                        switch match {
                        case .inInterface(let pattern, _), .outInterface(let pattern, _):
                            if pattern.isWildcard {
                                if wildcardIDs[pattern.name] == nil {
                                    wildcardIDs[pattern.name] = Int32(wildcards.count)
                                    wildcards.append(pattern.name)
                                }
                            } else {
                                _ = intern(pattern.name)
                            }
                        default: break
                        }
                    }
                }
            }
        }
        self.names = names
        self.ids = ids
        self.loopback = loopback
        self.wildcards = wildcards
        wildcardMatches = wildcards.flatMap { prefix in names.map { $0.hasPrefix(prefix) } }
        isBridge = names.map { name in host.interfaces.contains { $0.name == name && $0.isBridge } }
        func primary(_ family: Family) -> [IPAddress?] {
            names.map { name in host.interfaces.first { $0.name == name }?.addresses.first { $0.family == family }?.address }
        }
        primaryV4 = primary(.ipv4)
        primaryV6 = primary(.ipv6)
        ipForward = host.ipForward
        bridgeNetfilter = host.bridgeNetfilter
        func tables(_ family: Family) -> FamilyTables {
            var special: [(UInt128, AddressType)] = []
            for interface in host.interfaces {
                for prefix in interface.addresses where prefix.family == family { special.append((prefix.address.bits, .local)) }
            }
            if family == .ipv4 {
                for interface in host.interfaces {
                    for prefix in interface.addresses where prefix.family == family && prefix.length < 31 {
                        special.append((prefix.last.bits, .broadcast))
                    }
                }
            }
            var byLength: [Int: [(UInt128, Int32)]] = [:]
            let candidates = host.interfaces.flatMap { i in i.addresses.map { HostModel.Route(destination: $0.canonical, interface: i.name) } }
                + host.extraRoutes
            for route in candidates where route.destination.family == family {
                byLength[route.destination.length, default: []].append((route.destination.network.bits, ids[route.interface]!))
            }
            let routes = byLength.keys.sorted(by: >).map { length in
                (mask: Self.mask(family, length), map: AddressMap(byLength[length]!))
            }
            return FamilyTables(family: family, special: AddressMap(special), routes: routes, loopback: loopback)
        }
        v4 = tables(.ipv4)
        v6 = tables(.ipv6)

        // Chains and rules.
        var matchList: [CompiledMatch] = []
        var rules: [CompiledRule] = []
        var chains: [CompiledChain] = []
        var chainFamilies: [Family] = []
        var tableNames: [String] = []
        var chainNames: [String] = []
        var policyLocations: [String] = []
        var ruleLocations: [String] = []
        var bases: [(family: Family, hook: Hook, base: BaseChain, order: Int)] = []
        var chainOffset = 0
        for table in ruleset.tables {
            var chainIndex: [String: Int32] = [:]
            for (c, chain) in table.chains.enumerated() where chainIndex[chain.name] == nil {
                chainIndex[chain.name] = Int32(chainOffset + c)
            }
            let isNAT = table.name == "nat"
            for (c, chain) in table.chains.enumerated() {
                let global = Int32(chainOffset + c)
                let ruleStart = Int32(rules.count)
                for (r, rule) in chain.rules.enumerated() {
                    let matchStart = Int32(matchList.count)
                    for match in rule.matches {
                        if let compiled = Self.compile(match, family: table.family, ids: ids, wildcards: wildcardIDs) {
                            matchList.append(compiled)
                        }
                    }
                    let target: CompiledTarget
                    var final = false
                    switch rule.target {
                    case .accept: target = .accept
                    case .drop, .reject: target = .drop; final = true
                    case .return: target = .return
                    case .jump(let name): target = chainIndex[name].map(CompiledTarget.jump) ?? .continue; final = true
                    case .goto(let name): target = chainIndex[name].map(CompiledTarget.goto) ?? .continue; final = true
                    case .dnat(let to): target = isNAT ? .dnat(to.address, to.ports.map { Int32($0.first) } ?? -1) : .continue
                    case .snat(let to): target = isNAT ? .snat(to.address, to.ports.map { Int32($0.first) } ?? -1) : .continue
                    // MASQUERADE outside nat has no address to take: the packet is dropped.
                    case .masquerade(let ports): target = isNAT ? .masquerade(ports.map { Int32($0.first) } ?? -1) : .drop; final = true
                    case .log, .checksumFill: target = .continue
                    }
                    let standard: Bool = switch rule.target { case .accept, .drop, .return: true; default: false }
                    let unconditional = rule.matches.isEmpty && standard
                    rules.append(CompiledRule(matchStart: matchStart, matchEnd: Int32(matchList.count), target: target, unconditional: unconditional))
                    let kind = unconditional ? (chain.isBase ? "policy" : "return") : "rule"
                    ruleLocations.append(final ? "\(table.name):\(chain.name):\(kind):\(r + 1)" : "")
                }
                chains.append(CompiledChain(ruleStart: ruleStart, ruleCount: chain.rules.count, isBase: chain.isBase,
                                            policyDrops: chain.policy == .drop, index: -1, tableChainCount: table.chains.count))
                chainFamilies.append(table.family)
                tableNames.append(table.name)
                chainNames.append(chain.name)
                policyLocations.append("\(table.name):\(chain.name):policy:\(chain.rules.count + 1)")
                if case .base(let hook, let priority, _) = chain.kind {
                    bases.append((table.family, hook, BaseChain(chain: global, priority: priority, isNAT: isNAT), bases.count))
                }
            }
            chainOffset += table.chains.count
        }

        // Indexes of long chains.
        var lists: [Int32] = []
        var indexes: [ChainIndex] = []
        for c in chains.indices where chains[c].ruleCount >= Self.indexThreshold {
            chains[c].index = Int32(indexes.count)
            indexes.append(Self.buildIndex(chains[c], family: chainFamilies[c], rules: rules, matches: matchList,
                                           interfaces: names.count, lists: &lists))
        }

        // Base chains per family and hook, by priority (ties in table order).
        bases.sort { ($0.base.priority, $0.order) < ($1.base.priority, $1.order) }
        var ordered: [BaseChain] = []
        var ranges: [Range<Int>] = []
        for family in [Family.ipv4, .ipv6] {
            for hook in Hook.allCases {
                let start = ordered.count
                ordered += bases.filter { $0.family == family && $0.hook == hook }.map(\.base)
                ranges.append(start..<ordered.count)
            }
        }
        self.bases = ordered
        hookRanges = ranges
        self.indexes = indexes
        self.tableNames = tableNames
        self.chainNames = chainNames
        self.policyLocations = policyLocations
        self.ruleLocations = ruleLocations
        self.matchList = Self.buffer(matchList)
        self.rules = Self.buffer(rules)
        self.chains = Self.buffer(chains)
        self.lists = Self.buffer(lists)
    }

    deinit {
        matchList.deallocate()
        rules.deallocate()
        chains.deallocate()
        lists.deallocate()
    }

    private static func buffer<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
        _ = buffer.initialize(from: array)
        return buffer
    }

    static func mask(_ family: Family, _ length: Int) -> UInt128 {
        guard length > 0 else { return 0 }
        let width = family.bitWidth
        let ones: UInt128 = width == 128 ? ~0 : (UInt128(1) << 32) - 1
        return (ones >> UInt128(width - length)) << UInt128(width - length)
    }

    private static func compile(_ match: Match, family: Family, ids: [String: Int32], wildcards: [String: Int32]) -> CompiledMatch? {
        switch match {
        case let .inInterface(pattern, negated):
            return pattern.isWildcard ? .inputWildcard(wildcards[pattern.name]!, negated: negated) : .input(ids[pattern.name]!, negated: negated)
        case let .outInterface(pattern, negated):
            return pattern.isWildcard ? .outputWildcard(wildcards[pattern.name]!, negated: negated) : .output(ids[pattern.name]!, negated: negated)
        case let .address(direction, prefix, negated):
            // A prefix of the other family never contains the packet's address.
            guard prefix.family == family else { return negated ? nil : .never }
            let mask = mask(family, prefix.length)
            let network = prefix.address.bits & mask
            return direction == .source ? .source(network: network, mask: mask, negated: negated)
                : .destination(network: network, mask: mask, negated: negated)
        case let .protocol(transport, negated):
            return .transport(transport.number, negated: negated)
        case let .port(direction, range, negated):
            return direction == .source ? .sourcePort(range.first, range.last, negated: negated)
                : .destinationPort(range.first, range.last, negated: negated)
        case let .conntrackState(states, negated):
            return .state(states.reduce(0) { $0 | stateBit($1) }, negated: negated)
        case let .addressType(direction, type, negated):
            return direction == .source ? .sourceType(type, negated: negated) : .destinationType(type, negated: negated)
        case .comment:
            return nil
        }
    }

    /// Files every rule of the chain under its first exact key (see the type's comment).
    private static func buildIndex(_ chain: CompiledChain, family: Family, rules: [CompiledRule], matches: [CompiledMatch], interfaces: Int,
                                   lists: inout [Int32]) -> ChainIndex {
        enum Key {
            case portAndDestination(PortAddressKey), port(UInt32), destination(UInt128), input(Int32), output(Int32)
        }
        struct Required {
            var transport: UInt8?
            var port: UInt16?
            var host: UInt128?
            var input: Int32?
            var output: Int32?
            var sources: [(network: UInt128, mask: UInt128)] = []
            var destinations: [(network: UInt128, mask: UInt128)] = []
        }
        let range = Int(chain.ruleStart)..<(Int(chain.ruleStart) + chain.ruleCount)
        let hostMask = mask(family, family.bitWidth)
        var required: [Required] = []
        for r in range {
            var q = Required()
            for m in matches[Int(rules[r].matchStart)..<Int(rules[r].matchEnd)] {
                switch m {
                case .transport(let t, false): q.transport = q.transport ?? t
                case .destinationPort(let a, let b, false) where a == b: q.port = q.port ?? a
                case .destination(let network, let mask, false):
                    if mask == hostMask { q.host = q.host ?? network }
                    else if mask != 0 { q.destinations.append((network, mask)) }
                case .source(let network, let mask, false) where mask != 0: q.sources.append((network, mask))
                case .input(let id, false): q.input = q.input ?? id
                case .output(let id, false): q.output = q.output ?? id
                default: break
                }
            }
            required.append(q)
        }

        let keyed: [Key?] = required.map { q in
            if let t = q.transport, let p = q.port {
                let port = UInt32(t) << 16 | UInt32(p)
                if let host = q.host { return .portAndDestination(PortAddressKey(port: port, address: host)) }
                return .port(port)
            }
            if let host = q.host { return .destination(host) }
            if let id = q.input { return .input(id) }
            if let id = q.output { return .output(id) }
            return nil
        }
        // The most common source, then destination, prefix length among the rules left.
        func commonMask(_ prefixes: (Required) -> [(network: UInt128, mask: UInt128)]) -> UInt128? {
            var counts: [UInt128: Int] = [:]
            for (i, q) in required.enumerated() where keyed[i] == nil {
                for mask in Set(prefixes(q).map(\.mask)) { counts[mask, default: 0] += 1 }
            }
            return counts.max { ($0.value, $0.key) < ($1.value, $1.key) }?.key
        }
        var sourceBuckets: [UInt128: [Int32]] = [:]
        var destinationBuckets: [UInt128: [Int32]] = [:]
        let sourceMask = commonMask(\.sources)
        var sourceKeyed = Array(repeating: false, count: required.count)
        if let sourceMask {
            for (i, q) in required.enumerated() where keyed[i] == nil {
                if let prefix = q.sources.first(where: { $0.mask == sourceMask }) {
                    sourceBuckets[prefix.network, default: []].append(Int32(range.lowerBound + i))
                    sourceKeyed[i] = true
                }
            }
        }
        let destinationMask = commonMask { $0.destinations }
        var destinationKeyed = Array(repeating: false, count: required.count)
        if let destinationMask {
            for (i, q) in required.enumerated() where keyed[i] == nil && !sourceKeyed[i] {
                if let prefix = q.destinations.first(where: { $0.mask == destinationMask }) {
                    destinationBuckets[prefix.network, default: []].append(Int32(range.lowerBound + i))
                    destinationKeyed[i] = true
                }
            }
        }

        func bucket(_ rules: [Int32]) -> Bucket {
            let start = Int32(lists.count)
            lists += rules
            return Bucket(start: start, end: Int32(lists.count))
        }
        var unkeyed: [Int32] = []
        var byPortAndDestination: [PortAddressKey: [Int32]] = [:]
        var byPort: [UInt32: [Int32]] = [:]
        var byDestination: [UInt128: [Int32]] = [:]
        var byInput: [Int32: [Int32]] = [:]
        var byOutput: [Int32: [Int32]] = [:]
        for (i, key) in keyed.enumerated() {
            let rule = Int32(range.lowerBound + i)
            switch key {
            case .portAndDestination(let k)?: byPortAndDestination[k, default: []].append(rule)
            case .port(let k)?: byPort[k, default: []].append(rule)
            case .destination(let k)?: byDestination[k, default: []].append(rule)
            case .input(let k)?: byInput[k, default: []].append(rule)
            case .output(let k)?: byOutput[k, default: []].append(rule)
            case nil: if !sourceKeyed[i] && !destinationKeyed[i] { unkeyed.append(rule) }
            }
        }
        var index = ChainIndex()
        index.unkeyed = bucket(unkeyed)
        index.byPortAndDestination = byPortAndDestination.mapValues(bucket)
        index.byPort = byPort.mapValues(bucket)
        index.byDestination = byDestination.mapValues(bucket)
        if !byInput.isEmpty {
            index.byInput = Array(repeating: nil, count: interfaces)
            for (id, rules) in byInput { index.byInput[Int(id)] = bucket(rules) }
        }
        if !byOutput.isEmpty {
            index.byOutput = Array(repeating: nil, count: interfaces)
            for (id, rules) in byOutput { index.byOutput[Int(id)] = bucket(rules) }
        }
        if let sourceMask, !sourceBuckets.isEmpty {
            index.bySourcePrefix = PrefixIndex(mask: sourceMask, buckets: sourceBuckets.mapValues(bucket))
        }
        if let destinationMask, !destinationBuckets.isEmpty {
            index.byDestinationPrefix = PrefixIndex(mask: destinationMask, buckets: destinationBuckets.mapValues(bucket))
        }
        return index
    }

    // MARK: Lookups

    func interfaceID(_ name: String) -> Int32 {
        // Few interfaces: comparing (mostly small, inline) strings beats hashing one.
        if names.count <= 16 {
            for (i, candidate) in names.enumerated() where candidate == name { return Int32(i) }
            return Self.unknownInterface
        }
        return ids[name] ?? Self.unknownInterface
    }

    func name(_ id: Int32, unknown: String?) -> String? {
        if id >= 0 { return names[Int(id)] }
        return id == Self.unknownInterface ? unknown : nil
    }

    /// The interface id a packet to `destination` leaves by: `loopback` for the host's own
    /// addresses, else the longest matching route; `noInterface` when there is none.
    func route(_ destination: IPAddress) -> Int32 {
        switch destination {
        case .v4(let bits): v4.route(UInt128(bits))
        case .v6(let bits): v6.route(bits)
        }
    }

    func primaryAddress(_ interface: Int32, _ family: Family) -> IPAddress? {
        family == .ipv4 ? primaryV4[Int(interface)] : primaryV6[Int(interface)]
    }

    func hookRange(_ family: Family, _ hook: Hook) -> Range<Int> {
        let h: Int = switch hook {
        case .prerouting: 0
        case .input: 1
        case .forward: 2
        case .output: 3
        case .postrouting: 4
        }
        return hookRanges[(family == .ipv4 ? 0 : 5) + h]
    }

    /// `table:chain:kind:N` of a rule that ends a traversal.
    func location(ofRule r: Int32, chain: Int32, kind: TraceStep.Kind) -> String {
        let c = chains[Int(chain)]
        let own: TraceStep.Kind = rules[Int(r)].unconditional ? (c.isBase ? .policy : .return) : .rule
        if kind == own, !ruleLocations[Int(r)].isEmpty { return ruleLocations[Int(r)] }
        return "\(tableNames[Int(chain)]):\(chainNames[Int(chain)]):\(kind.rawValue):\(Int(r - c.ruleStart) + 1)"
    }

    private func wildcard(_ w: Int32, _ id: Int32, _ unknown: String?) -> Bool {
        if id >= 0 { return wildcardMatches[Int(w) * names.count + Int(id)] }
        guard id == Self.unknownInterface, let unknown else { return false }
        return unknown.hasPrefix(wildcards[Int(w)])
    }

    /// Whether every match of the rule holds for the walk's packet and interfaces.
    @inline(__always)
    func matches(_ rule: CompiledRule, _ f: Simulator.Walk.Fields, _ unknownInput: String?) -> Bool {
        var i = Int(rule.matchStart)
        let end = Int(rule.matchEnd)
        while i < end {
            let holds: Bool
            let negated: Bool
            switch matchList[i] {
            case let .input(id, n): (holds, negated) = (f.input == id, n)
            case let .inputWildcard(w, n): (holds, negated) = (wildcard(w, f.input, unknownInput), n)
            case let .output(id, n): (holds, negated) = (f.output == id, n)
            case let .outputWildcard(w, n): (holds, negated) = (wildcard(w, f.output, nil), n)
            case let .source(network, mask, n): (holds, negated) = (f.source & mask == network, n)
            case let .destination(network, mask, n): (holds, negated) = (f.destination & mask == network, n)
            case let .transport(t, n): (holds, negated) = (f.transport == t, n)
            case let .sourcePort(first, last, n):
                guard f.hasPorts else { return false }
                (holds, negated) = (first <= f.sourcePort && f.sourcePort <= last, n)
            case let .destinationPort(first, last, n):
                guard f.hasPorts else { return false }
                (holds, negated) = (first <= f.destinationPort && f.destinationPort <= last, n)
            case let .state(bits, n): (holds, negated) = (f.state & bits != 0, n)
            case let .sourceType(type, n): (holds, negated) = ((f.isIPv6 ? v6 : v4).addressType(f.source) == type, n)
            case let .destinationType(type, n): (holds, negated) = ((f.isIPv6 ? v6 : v4).addressType(f.destination) == type, n)
            case .never: return false
            }
            if holds == negated { return false }
            i += 1
        }
        return true
    }
}
