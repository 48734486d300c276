import WeirModel

/// Which consecutive rules of a chain the nftables backend writes as **one rule with a set
/// lookup** (or a DNAT map) instead of one rule each — the form that makes Docker-sized
/// rulesets (one DNAT, one ACCEPT and one MASQUERADE rule per published port) cheap to load
/// and to traverse.
///
/// A rule is a *candidate* when its matches split into
///
/// * **key fields**: non-negated exact source/destination addresses (full-length prefixes of the
///   table's family) and the pair of a non-negated tcp/udp/sctp protocol with one non-negated
///   destination port; at least one of them;
/// * **the rest**: every other match (interfaces, state, address types, the comment), with no
///   other protocol or port match among them;
///
/// and its target is anything but DNAT (the group shares it: a plain set), or a DNAT to one
/// address, with one port or none (the group keeps each rule's destination: a map whose data
/// is the address, or the address and port).
///
/// A **segment** is a maximal run of consecutive candidates with the same key fields and
/// pairwise distinct keys. Two of its rules differ in some key field that both match exactly,
/// so no packet matches both: the segment's rules may be written in any order. Within a
/// segment, the rules with the same rest and the same shared target (or DNAT shape) — at least
/// `minimumSize` of them — form a **group**, which means the same as one rule that looks the
/// key up, also for targets that do not end the chain (`log`, a `jump` that returns). Docker
/// appends a container's ports one after the other and the containers of different bridges
/// in turn, so a segment holds every bridge's per-port rules and each bridge's rules become
/// one group.
///
/// A segment is written shape by shape, in the order the shapes first appear: a group's rule
/// (its members in ascending key order, the order the kernel, and `NftLifting`, report the
/// elements in), or the rules of a shape with too few members as they came.
/// `NftLowering.normalForm` puts the rules in that order.
public struct NftSetGroup: Sendable, Equatable {
    /// One field of the concatenated key, in key order.
    public enum Field: Sendable, Hashable {
        case address(Direction)
        case l4proto
        case destinationPort
    }

    /// What the members share besides `rest`: one target, or (for DNAT) only its shape.
    public enum Action: Sendable, Hashable {
        /// Every member has this target: the rule looks the key up in a plain set.
        case shared(Target)
        /// Every member DNATs to its own address (and port, when `withPorts`): a map.
        case dnatMap(withPorts: Bool)
    }

    /// One rule of the group: its key (each field padded to 4 bytes, as nf_tables concatenates
    /// them), its map data (DNAT groups), and the rule.
    public struct Member: Sendable, Equatable {
        public var key: [UInt8]
        public var data: [UInt8]?
        public var rule: Rule
    }

    public var fields: [Field]
    /// The matches every member has besides its key (in the model's order, comment included).
    public var rest: [Match]
    public var action: Action
    /// In ascending key order.
    public var members: [Member]

    /// The fewest consecutive rules worth a set: fewer read better as plain rules, and cost
    /// the kernel about as much.
    public static let minimumSize = 4

    /// Bytes of one field in the key (before padding).
    public static func width(_ field: Field, family: Family) -> Int {
        switch field {
        case .address: family.bitWidth / 8
        case .l4proto: 1
        case .destinationPort: 2
        }
    }

    /// The key length: every field padded to 4 bytes (a single field is not padded).
    public static func keyLength(_ fields: [Field], family: Family) -> Int {
        fields.count == 1 ? width(fields[0], family: family) : fields.reduce(0) { $0 + padded(width($1, family: family)) }
    }

    static func padded(_ n: Int) -> Int { (n + 3) / 4 * 4 }
}

/// A chain's rules as the nftables backend writes them: single rules and set groups, in order.
public enum NftChainSegment: Sendable, Equatable {
    case rule(Rule)
    case group(NftSetGroup)
}

extension NftSetGroup {
    /// Splits `rules` (of a table of `family`, in the lowering's normal form) into single rules
    /// and groups.
    public static func segments(_ rules: [Rule], family: Family) -> [NftChainSegment] {
        plan(rules, family: family).map { part in
            switch part {
            case .single(let index): .rule(rules[index])
            case .group(let group, _): .group(group)
            }
        }
    }

    /// One part of a chain's plan: the index of a single rule, or a group with the indices of
    /// its rules (in chain order).
    enum Part {
        case single(Int)
        case group(NftSetGroup, indices: [Int])
    }

    static func plan(_ rules: [Rule], family: Family) -> [Part] {
        var out: [Part] = []
        var segment: [(candidate: Candidate, index: Int)] = []
        var keys = Set<[UInt8]>()

        // A segment's rules are pairwise disjoint, so they may be written in any order: one part
        // per shape, in the order the shapes first appear.
        func close() {
            var shapes: [Shape: Int] = [:]
            var byShape: [[(candidate: Candidate, index: Int)]] = []
            for entry in segment {
                let shape = Shape(rest: entry.candidate.rest, action: entry.candidate.action)
                if let position = shapes[shape] {
                    byShape[position].append(entry)
                } else {
                    shapes[shape] = byShape.count
                    byShape.append([entry])
                }
            }
            for run in byShape {
                if run.count >= minimumSize, let first = run.first?.candidate {
                    let members = run.map { Member(key: $0.candidate.key, data: $0.candidate.data, rule: rules[$0.index]) }
                        .sorted { $0.key.lexicographicallyPrecedes($1.key) }
                    out.append(.group(NftSetGroup(fields: first.fields, rest: first.rest, action: first.action, members: members),
                                      indices: run.map(\.index)))
                } else {
                    out += run.map { .single($0.index) }
                }
            }
            segment.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
        }

        for (index, rule) in rules.enumerated() {
            guard let candidate = Candidate(rule, family: family) else {
                close()
                out.append(.single(index))
                continue
            }
            if let first = segment.first?.candidate, first.fields != candidate.fields || keys.contains(candidate.key) {
                close()
            }
            keys.insert(candidate.key)
            segment.append((candidate, index))
        }
        close()
        return out
    }

    /// What the rules of one group share.
    struct Shape: Hashable {
        var rest: [Match]
        var action: Action
    }

    /// What makes a rule a candidate, and its key.
    struct Candidate {
        var fields: [Field]
        var rest: [Match]
        var action: Action
        var key: [UInt8]
        var data: [UInt8]?

        init?(_ rule: Rule, family: Family) {
            let addressWidth = family.bitWidth / 8
            var source: [UInt8]?, destination: [UInt8]?, proto: UInt8?, port: UInt16?
            var rest: [Match] = []
            for match in rule.matches {
                switch match {
                case let .address(direction, prefix, false)
                    where prefix.family == family && prefix.length == family.bitWidth:
                    let bytes = NftEncoding.addressBytes(prefix.network)
                    if direction == .source {
                        if source != nil { return nil }
                        source = bytes
                    } else {
                        if destination != nil { return nil }
                        destination = bytes
                    }
                case let .protocol(p, false) where p.hasPorts:
                    if proto != nil { return nil }
                    proto = p.number
                case let .port(.destination, range, false) where range.isSingle:
                    if port != nil { return nil }
                    port = range.first
                case .protocol, .port:
                    return nil
                default:
                    rest.append(match)
                }
            }
            guard (proto == nil) == (port == nil), source != nil || destination != nil || proto != nil else { return nil }
            var fields: [Field] = []
            var parts: [[UInt8]] = []
            if let source { fields.append(.address(.source)); parts.append(source) }
            if let destination { fields.append(.address(.destination)); parts.append(destination) }
            if let proto, let port {
                fields += [.l4proto, .destinationPort]
                parts += [[proto], NftEncoding.portBytes(port)]
            }
            key = parts.count == 1 ? parts[0] : parts.flatMap { $0 + [UInt8](repeating: 0, count: NftSetGroup.padded($0.count) - $0.count) }
            switch rule.target {
            case .dnat(let to):
                guard to.address.family == family, to.ports?.isSingle ?? true else { return nil }
                // A port needs the protocol in the key (nat with ports needs tcp/udp/sctp).
                if to.ports != nil && proto == nil { return nil }
                let address = NftEncoding.addressBytes(to.address)
                guard address.count == addressWidth else { return nil }
                if let ports = to.ports {
                    action = .dnatMap(withPorts: true)
                    data = address + NftEncoding.portBytes(ports.first) + [0, 0]
                } else {
                    action = .dnatMap(withPorts: false)
                    data = address
                }
            case .checksumFill:
                return nil
            default:
                action = .shared(rule.target)
            }
            self.fields = fields
            self.rest = rest
        }

    }
}
