import WeirDiagnostics

/// An nf_tables set of a table, as the kernel holds it (`GETSET` + `GETSETELEM`): a named or
/// anonymous collection of keys that `lookup` expressions test a register against, or, with
/// data, a map (`map`, `vmap`).
///
/// What nft writes and the kernel reports back (Linux 6.18, nft 1.0.6, libnftnl 1.2.4):
///
/// * `tcp dport { 80, 443 }` is an anonymous set `__set0` (nft sends `__set%d`; the kernel
///   numbers it per table: `__set0`, `__set1`, …; maps are `__map0`, …) with flags
///   anonymous|constant (0x3), key type `inet_service` (13), key length 2;
/// * `ip saddr { 10.0.0.0/8, 192.168.1.1 }` adds `interval` (0x7); a named `flags interval`
///   set has 0x4, a plain named set 0; a vmap is anonymous|constant|map (0xb) with data type
///   `NFT_DATA_VERDICT` (0xffffff00);
/// * interval sets come back as **pairs**: a start element and an element with
///   `NFT_SET_ELEM_INTERVAL_END` holding the *exclusive* end (`10.0.0.0/8` is `0a000000`,
///   `0b000000|end`), listed in descending key order, with an extra end element at key 0 that
///   closes the gap below the first range; a range reaching the top of the key space has no
///   end element. Sets with concatenated intervals (pipapo) report each range as one element
///   with `NFTA_SET_ELEM_KEY_END` (inclusive) instead.
///
/// `normalized()` turns either interval form into ranges (`key`…`keyEnd`, inclusive) in
/// ascending key order; the readback stores sets normalised.
public struct NftSet: Sendable, Equatable {
    /// `NFT_SET_*` flags.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `NFT_SET_ANONYMOUS`: bound to the rule that uses it (`{ … }` in a rule).
        public static let anonymous = Flags(rawValue: 0x1)
        /// `NFT_SET_CONSTANT`: elements cannot change after the transaction that made it.
        public static let constant = Flags(rawValue: 0x2)
        /// `NFT_SET_INTERVAL`: elements are ranges.
        public static let interval = Flags(rawValue: 0x4)
        /// `NFT_SET_MAP`: elements carry data (or verdicts).
        public static let map = Flags(rawValue: 0x8)
        /// `NFT_SET_TIMEOUT`: elements expire.
        public static let timeout = Flags(rawValue: 0x10)
        /// `NFT_SET_EVAL`: updated from the packet path (`dynset`, meters).
        public static let eval = Flags(rawValue: 0x20)
        /// `NFT_SET_OBJECT`: elements map to stateful objects.
        public static let object = Flags(rawValue: 0x40)
        /// `NFT_SET_CONCAT`: keys are concatenations with intervals.
        public static let concatenated = Flags(rawValue: 0x80)
        /// `NFT_SET_EXPR`: elements carry expressions.
        public static let expressions = Flags(rawValue: 0x100)
    }

    /// The set's name (`__set0` for an anonymous set).
    public var name: String
    public var flags: Flags
    /// nft's data type id of the key (`ipv4_addr` 7, `ipv6_addr` 8, `inet_proto` 12,
    /// `inet_service` 13, `ifname` 41; concatenations combine ids 6 bits each). Opaque to the
    /// kernel; lifting does not rely on it.
    public var keyType: UInt32
    /// Bytes per key (a concatenation pads each field to 4 bytes).
    public var keyLength: UInt32
    /// For maps: nft's data type id (`NFT_DATA_VERDICT` 0xffffff00 for a vmap), and its length.
    public var dataType: UInt32?
    public var dataLength: UInt32?
    /// The field lengths of a concatenated key (`NFTA_SET_DESC_CONCAT`); empty otherwise.
    public var fieldLengths: [UInt32]
    public var elements: [NftSetElement]
    /// Where the set comes from (the policy rules it was built from); not part of its meaning,
    /// and equality ignores it.
    public var provenance: SourceRange?

    public init(name: String, flags: Flags = [], keyType: UInt32 = 0, keyLength: UInt32, dataType: UInt32? = nil,
                dataLength: UInt32? = nil, fieldLengths: [UInt32] = [], elements: [NftSetElement] = [],
                provenance: SourceRange? = nil) {
        self.name = name
        self.flags = flags
        self.keyType = keyType
        self.keyLength = keyLength
        self.dataType = dataType
        self.dataLength = dataLength
        self.fieldLengths = fieldLengths
        self.elements = elements
        self.provenance = provenance
    }

    public static func == (lhs: NftSet, rhs: NftSet) -> Bool {
        lhs.name == rhs.name && lhs.flags == rhs.flags && lhs.keyType == rhs.keyType && lhs.keyLength == rhs.keyLength
            && lhs.dataType == rhs.dataType && lhs.dataLength == rhs.dataLength && lhs.fieldLengths == rhs.fieldLengths
            && lhs.elements == rhs.elements
    }

    /// Whether the set holds data per element (a map, a vmap or an object map).
    public var isMap: Bool { flags.contains(.map) || flags.contains(.object) || dataType != nil }

    /// Why a set's elements do not describe a set of keys.
    public struct Malformed: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// The set with its elements in ascending key order and, for an interval set, every
    /// start/end pair joined into one range (`keyEnd` inclusive; the end element's exclusive
    /// key minus one). An end element without a start (nft's end at key 0, which closes the gap
    /// below the first range) is dropped; a start without an end reaches the top of the key
    /// space. Already normalised sets come back unchanged (the function is idempotent).
    public func normalized() throws(Malformed) -> NftSet {
        var out = self
        out.elements = try Self.normalize(elements, interval: flags.contains(.interval))
        return out
    }

    static func normalize(_ elements: [NftSetElement], interval: Bool) throws(Malformed) -> [NftSetElement] {
        guard interval || elements.contains(where: { $0.flags.contains(.intervalEnd) }) else {
            return elements.sorted { NftSetElement.precedes($0.key, $1.key) }
        }
        // Ends sort before starts of the same key: [1,3) and [3,5) are 1, 3|end, 3, 5|end.
        let sorted = elements.sorted { a, b in
            if a.key != b.key { return NftSetElement.precedes(a.key, b.key) }
            return a.flags.contains(.intervalEnd) && !b.flags.contains(.intervalEnd)
        }
        var out: [NftSetElement] = []
        var open: NftSetElement?
        for element in sorted {
            if element.flags.contains(.intervalEnd) {
                guard var start = open else { continue }  // closes a gap: nothing matches below it
                open = nil
                guard NftSetElement.precedes(start.key, element.key), let last = NftSetElement.decrement(element.key),
                      last.count == start.key.count else {
                    throw Malformed("interval end \(element.key.nftWords) does not follow its start \(start.key.nftWords)")
                }
                start.keyEnd = last
                out.append(start)
            } else if element.keyEnd != nil {
                if let pending = open {
                    throw Malformed("interval start \(pending.key.nftWords) has no end before the range \(element.key.nftWords)")
                }
                out.append(element)
            } else {
                if let pending = open {
                    throw Malformed("interval start \(pending.key.nftWords) has no end before the next start \(element.key.nftWords)")
                }
                open = element
            }
        }
        if var start = open {
            // nft leaves out the end of a range that reaches the top (its end would overflow).
            start.keyEnd = [UInt8](repeating: 0xff, count: start.key.count)
            out.append(start)
        }
        return out
    }
}

/// One element of a set: a key, or a range of keys, with data for maps.
public struct NftSetElement: Sendable, Equatable {
    /// `NFT_SET_ELEM_*` flags.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `NFT_SET_ELEM_INTERVAL_END`: the key is the exclusive end of the range the previous
        /// start element opened (the kernel's pair form of interval sets).
        public static let intervalEnd = Flags(rawValue: 0x1)
        /// `NFT_SET_ELEM_CATCHALL`: the default element of a map (`*`); it has no key.
        public static let catchall = Flags(rawValue: 0x2)
    }

    /// Network order for addresses and ports, the 16 NUL-padded bytes for an interface name,
    /// as the lookup's register holds them.
    public var key: [UInt8]
    /// The last key of a range (inclusive): `NFTA_SET_ELEM_KEY_END`, or a normalised
    /// start/end pair. Nil for a single key.
    public var keyEnd: [UInt8]?
    public var flags: Flags
    /// For maps: the element's data.
    public var data: [UInt8]?
    /// For vmaps: the element's verdict. (A verdict the program form has no case for —
    /// `queue`, `break` — reads back as neither data nor verdict.)
    public var verdict: ImmediateExpression.Verdict?

    public init(key: [UInt8], keyEnd: [UInt8]? = nil, flags: Flags = [], data: [UInt8]? = nil,
                verdict: ImmediateExpression.Verdict? = nil) {
        self.key = key
        self.keyEnd = keyEnd
        self.flags = flags
        self.data = data
        self.verdict = verdict
    }

    /// The last key the element covers (its key when it is a single one).
    public var last: [UInt8] { keyEnd ?? key }

    /// `a < b` as the kernel orders keys (memcmp: big-endian numbers, then length).
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.lexicographicallyPrecedes(b)
    }

    /// The key one below (as a big-endian number); nil for all zeros.
    static func decrement(_ key: [UInt8]) -> [UInt8]? {
        var out = key
        for i in out.indices.reversed() {
            if out[i] > 0 {
                out[i] -= 1
                return out
            }
            out[i] = 0xff
        }
        return nil
    }
}

extension NftTable {
    /// The set named `name`, if the table has one.
    public func set(named name: String) -> NftSet? { sets.first { $0.name == name } }
}
