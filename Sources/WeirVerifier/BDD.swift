import Glibc

/// Reduced ordered binary decision diagrams over numbered boolean variables.
///
/// Nodes are hash-consed in one manager, so a set of packets has exactly one node: two sets are
/// equal iff their nodes are, which makes equivalence checks O(1) once both sides are built.
/// Variables are ordered by number (0 is tested first); fields are laid out most significant bit
/// first, so prefixes and port ranges stay small.
///
/// Why BDDs (and not interval decision diagrams): netfilter matches are prefixes, ranges and
/// equalities on fixed-width fields plus a few booleans (negations, conntrack bits), all of
/// which are compact under an MSB-first bit order, and Boolean combination, existential
/// quantification (for NAT rewrites) and picking a witness (for counterexamples) are standard
/// BDD operations.
public final class BDDManager {
    /// A set of assignments: an index into the manager's node table.
    public struct Node: Hashable, Sendable {
        fileprivate let index: Int32
        public static let `false` = Node(index: 0)
        public static let `true` = Node(index: 1)
        public var isFalse: Bool { index == 0 }
        public var isTrue: Bool { index == 1 }
    }

    private struct Entry: Hashable {
        var variable: Int32
        var low: Int32
        var high: Int32
    }

    /// The node table, the unique table and the computed table live in manually managed
    /// buffers, marked exempt from Swift's dynamic exclusivity checks: they are read and
    /// written on every operation, no access to them overlaps another (none is held across a
    /// call), and the checks cost more than a third of the verifier's time.
    @exclusivity(unchecked) private var entries: Buffer<Entry>
    /// The unique table: open addressing (linear probing), at most three quarters full. A
    /// bucket holds a node's index in its low 28 bits and 4 more bits of its hash on top, so
    /// most probes past other nodes skip reading their entries; 0 is empty (no bucket holds a
    /// terminal).
    @exclusivity(unchecked) private var buckets: Buffer<UInt32>
    /// The computed table of `ite`: direct-mapped and lossy (a collision overwrites), as BDD
    /// packages do, so its memory is bounded; a slot holds (f, g, h) and the result, and f = 0
    /// (a terminal `ite` never caches) marks it empty. It grows with the unique table (emptied
    /// then), up to `maxIteSlots`.
    @exclusivity(unchecked) private var iteTable: Buffer<SIMD4<Int32>>
    private static let maxIteSlots = 1 << 23

    /// A growable buffer of plain values in an anonymous mapping, so that it starts zeroed
    /// (which every table takes as empty) and the kernel may back it with transparent huge
    /// pages: the tables are read at random, and with 4 KiB pages most reads of a large table
    /// also miss the TLB.
    private struct Buffer<Element> {
        var base: UnsafeMutablePointer<Element>
        var count: Int
        var capacity: Int

        /// `count` elements whose bytes are all zero.
        init(zeroed count: Int) {
            base = Self.map(count)
            self.count = count
            capacity = count
        }

        subscript(_ i: Int) -> Element {
            get { base[i] }
            nonmutating set { base[i] = newValue }
        }

        mutating func append(_ value: Element) {
            if count == capacity {
                let bigger = Self.map(capacity * 2)
                bigger.moveInitialize(from: base, count: count)
                Self.unmap(base, capacity)
                base = bigger
                capacity *= 2
            }
            (base + count).initialize(to: value)
            count += 1
        }

        func free() { Self.unmap(base, capacity) }

        private static func size(_ capacity: Int) -> Int { max(capacity, 1) * MemoryLayout<Element>.stride }

        private static func map(_ capacity: Int) -> UnsafeMutablePointer<Element> {
            let bytes = size(capacity)
            guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
                preconditionFailure("out of memory for \(bytes) bytes of BDD tables")
            }
            _ = madvise(raw, bytes, MADV_HUGEPAGE)  // advice only: without huge pages it is merely slower
            return raw.bindMemory(to: Element.self, capacity: capacity)
        }

        private static func unmap(_ base: UnsafeMutablePointer<Element>, _ capacity: Int) {
            munmap(UnsafeMutableRawPointer(base), size(capacity))
        }
    }

    deinit {
        entries.free()
        buckets.free()
        iteTable.free()
    }

    @inline(__always)
    private static func mix(_ a: Int32, _ b: Int32, _ c: Int32) -> Int {
        // SplitMix64's finalizer over the three packed values; the table index takes the low bits.
        var z = UInt64(UInt32(bitPattern: a)) &+ UInt64(UInt32(bitPattern: b)) << 21 &+ UInt64(UInt32(bitPattern: c)) << 42
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: z ^ (z >> 31))
    }

    /// A manager whose tables start sized for about `expectedNodes` nodes (they grow past it
    /// as needed): each time the unique table doubles, every node is rehashed into fresh
    /// memory, which costs a sixth of a large check's time when it starts small.
    public init(expectedNodes: Int = 0) {
        var slots = 1 << 18
        while slots * 3 < 4 * expectedNodes { slots *= 2 }
        entries = Buffer(zeroed: max(2, min(expectedNodes, slots / 4 * 3)))
        entries.count = 2
        entries[0] = Entry(variable: .max, low: 0, high: 0)
        entries[1] = Entry(variable: .max, low: 1, high: 1)
        buckets = Buffer(zeroed: slots)
        iteTable = Buffer(zeroed: min(slots, Self.maxIteSlots))
    }

    /// How many nodes the manager holds (terminals included).
    public var nodeCount: Int { entries.count }

    /// The set where variable `v` is true.
    public func variable(_ v: Int) -> Node { Node(index: make(Int32(v), 0, 1)) }

    /// The set where variable `v` is false.
    public func notVariable(_ v: Int) -> Node { Node(index: make(Int32(v), 1, 0)) }

    public func not(_ f: Node) -> Node { Node(index: ite(f.index, 0, 1)) }
    public func and(_ f: Node, _ g: Node) -> Node { Node(index: ite(f.index, g.index, 0)) }
    public func or(_ f: Node, _ g: Node) -> Node { Node(index: ite(f.index, 1, g.index)) }
    /// `f` and not `g`.
    public func minus(_ f: Node, _ g: Node) -> Node { Node(index: ite(g.index, 0, f.index)) }
    public func ifThenElse(_ f: Node, _ g: Node, _ h: Node) -> Node { Node(index: ite(f.index, g.index, h.index)) }

    /// The union of many sets at once, by Shannon expansion on all of them together: only the
    /// result's nodes are made, where uniting them two by two makes every intermediate union
    /// too (for Docker's one set per published port, most of the work).
    public func or(_ sets: [Node]) -> Node {
        var memo: [[Int32]: Int32] = [:]
        return Node(index: or(sets.map(\.index), &memo))
    }

    /// The union of a list of sets. Those that test the first variable any of them tests are
    /// expanded on it together; the others (which would go to both sides) are united apart and
    /// added at the end, so that no set is expanded twice. Lists of three or more are
    /// memoised: sets that share parts meet the same lists again, which would otherwise be
    /// expanded once per path to them.
    private func or(_ operands: [Int32], _ memo: inout [[Int32]: Int32]) -> Int32 {
        var list = operands
        list.sort()
        var unique = 0
        for i in list.indices {
            let node = list[i]
            guard node != 0, unique == 0 || list[unique - 1] != node else { continue }
            if node == 1 { return 1 }
            list[unique] = node
            unique += 1
        }
        list.removeLast(list.count - unique)
        switch list.count {
        case 0: return 0
        case 1: return list[0]
        case 2: return ite(list[0], 1, list[1])
        default: break
        }
        if let known = memo[list] { return known }
        var top = Int32.max
        for node in list { top = min(top, entries[Int(node)].variable) }
        var lows: [Int32] = [], highs: [Int32] = [], others: [Int32] = []
        for node in list {
            let entry = entries[Int(node)]
            if entry.variable == top {
                lows.append(entry.low)
                highs.append(entry.high)
            } else {
                others.append(node)
            }
        }
        let expanded = make(top, or(lows, &memo), or(highs, &memo))
        let result = others.isEmpty ? expanded : ite(expanded, 1, or(others, &memo))
        memo[list] = result
        return result
    }

    /// Whether `f` ⊆ `g`.
    public func isSubset(_ f: Node, of g: Node) -> Bool { minus(f, g).isFalse }

    private func make(_ variable: Int32, _ low: Int32, _ high: Int32) -> Int32 {
        if low == high { return low }
        let mask = buckets.count - 1
        let hash = Self.mix(variable, low, high)
        var slot = hash & mask
        let tag = Self.tag(hash)
        while true {
            let bucket = buckets[slot]
            if bucket == Self.empty { break }
            if bucket & Self.tagMask == tag {
                let index = Int32(bitPattern: bucket & ~Self.tagMask)
                let e = entries[Int(index)]
                if e.variable == variable && e.low == low && e.high == high { return index }
            }
            slot = (slot + 1) & mask
        }
        let index = Int32(entries.count)
        precondition(UInt32(index) & Self.tagMask == 0, "more than \(Self.tagMask ^ UInt32.max) BDD nodes")
        entries.append(Entry(variable: variable, low: low, high: high))
        buckets[slot] = tag | UInt32(index)
        if entries.count * 4 > buckets.count * 3 { grow() }
        return index
    }

    /// A bucket's hash bits (`buckets`): the hash's top four, above the ones that choose the slot.
    private static let tagMask: UInt32 = 0xF000_0000
    private static let empty: UInt32 = 0

    @inline(__always)
    private static func tag(_ hash: Int) -> UInt32 { UInt32(truncatingIfNeeded: hash >> 60) << 28 }

    private func grow() {
        buckets.free()
        buckets = Buffer(zeroed: buckets.count * 2)
        if iteTable.count < min(buckets.count, Self.maxIteSlots) {
            iteTable.free()
            iteTable = Buffer(zeroed: min(buckets.count, Self.maxIteSlots))
        }
        let mask = buckets.count - 1
        for index in 2..<entries.count {
            let e = entries[index]
            let hash = Self.mix(e.variable, e.low, e.high)
            var slot = hash & mask
            while buckets[slot] != Self.empty { slot = (slot + 1) & mask }
            buckets[slot] = Self.tag(hash) | UInt32(index)
        }
    }

    private func ite(_ f: Int32, _ g: Int32, _ h: Int32) -> Int32 {
        if f == 1 { return g }
        if f == 0 { return h }
        if g == h { return g }
        if g == 1 && h == 0 { return f }
        let slot = Self.mix(f, g, h) & (iteTable.count - 1)
        let cached = iteTable[slot]
        if cached.x == f && cached.y == g && cached.z == h { return cached.w }
        let top = min(entries[Int(f)].variable, entries[Int(g)].variable, entries[Int(h)].variable)
        let (f0, f1) = cofactors(f, top)
        let (g0, g1) = cofactors(g, top)
        let (h0, h1) = cofactors(h, top)
        let result = make(top, ite(f0, g0, h0), ite(f1, g1, h1))
        iteTable[slot] = SIMD4(f, g, h, result)
        return result
    }

    private func cofactors(_ node: Int32, _ variable: Int32) -> (Int32, Int32) {
        let entry = entries[Int(node)]
        return entry.variable == variable ? (entry.low, entry.high) : (node, node)
    }

    /// ∃ variables in `range`: forgets those variables.
    public func exists(_ f: Node, variables range: Range<Int>) -> Node {
        exists(f) { range.contains($0) }
    }

    /// ∃ the variables `quantified` holds for: forgets them (a NAT target overwriting a field).
    public func exists(_ f: Node, where quantified: (Int) -> Bool) -> Node {
        var memo: [Int32: Int32] = [:]
        return Node(index: exists(f.index, quantified, &memo))
    }

    /// `exists(_:where:)` with its answer kept: `quantifier` names the set of variables
    /// `quantified` holds for (the same name, the same set), and asking again for the same
    /// set and quantifier costs a lookup.
    public func exists(_ f: Node, quantifier: Int, where quantified: (Int) -> Bool) -> Node {
        let key = SIMD2(f.index, Int32(quantifier))
        if let known = existsAnswers[key] { return Node(index: known) }
        let result = exists(f, where: quantified)
        existsAnswers[key] = result.index
        return result
    }

    private var existsAnswers: [SIMD2<Int32>: Int32] = [:]

    /// `f` with variable `v` fixed to `value` (its cofactor).
    public func restrict(_ f: Node, variable v: Int, to value: Bool) -> Node {
        Node(index: restrict(f.index, Int32(v), value ? 1 : 0))
    }

    /// The cofactor, with its results in the computed table under a key no `ite` has (a
    /// negative second argument), so that what sets share is computed once across calls.
    private func restrict(_ node: Int32, _ v: Int32, _ value: Int32) -> Int32 {
        if node <= 1 { return node }
        let entry = entries[Int(node)]
        if entry.variable > v { return node }
        if entry.variable == v { return value == 1 ? entry.high : entry.low }
        let tag = -2 - v
        let slot = Self.mix(node, tag, value) & (iteTable.count - 1)
        let cached = iteTable[slot]
        if cached.x == node && cached.y == tag && cached.z == value { return cached.w }
        let result = make(entry.variable, restrict(entry.low, v, value), restrict(entry.high, v, value))
        iteTable[slot] = SIMD4(node, tag, value, result)
        return result
    }

    private func exists(_ node: Int32, _ quantified: (Int) -> Bool, _ memo: inout [Int32: Int32]) -> Int32 {
        if node <= 1 { return node }
        if let done = memo[node] { return done }
        let entry = entries[Int(node)]
        let low = exists(entry.low, quantified, &memo), high = exists(entry.high, quantified, &memo)
        let result = quantified(Int(entry.variable)) ? ite(low, 1, high) : make(entry.variable, low, high)
        memo[node] = result
        return result
    }

    /// One assignment in `f` (variables it does not constrain are false), or nil for the empty set.
    public func anyMember(_ f: Node) -> [Int: Bool]? {
        guard !f.isFalse else { return nil }
        var assignment: [Int: Bool] = [:]
        var node = f.index
        while node > 1 {
            let entry = entries[Int(node)]
            if entry.low != 0 {
                assignment[Int(entry.variable)] = false
                node = entry.low
            } else {
                assignment[Int(entry.variable)] = true
                node = entry.high
            }
        }
        return assignment
    }

    /// Whether the assignment (unlisted variables false) is in `f`.
    public func contains(_ f: Node, _ assignment: (Int) -> Bool) -> Bool {
        var node = f.index
        while node > 1 {
            let entry = entries[Int(node)]
            node = assignment(Int(entry.variable)) ? entry.high : entry.low
        }
        return node == 1
    }

    // MARK: Fields

    /// The set where the `width`-bit field starting at variable `first` (most significant bit
    /// first) equals `value`.
    public func equals(field first: Int, width: Int, _ value: UInt128) -> Node {
        var node: Int32 = 1
        for bit in (0..<width).reversed() {
            let set = (value >> UInt128(width - 1 - bit)) & 1 == 1
            node = set ? make(Int32(first + bit), 0, node) : make(Int32(first + bit), node, 0)
        }
        return Node(index: node)
    }

    /// The set where the field's top `length` bits equal those of `value` (a prefix).
    public func prefix(field first: Int, width: Int, _ value: UInt128, length: Int) -> Node {
        var node: Int32 = 1
        for bit in (0..<length).reversed() {
            let set = (value >> UInt128(width - 1 - bit)) & 1 == 1
            node = set ? make(Int32(first + bit), 0, node) : make(Int32(first + bit), node, 0)
        }
        return Node(index: node)
    }

    /// The set where the field is ≥ `low` and ≤ `high`.
    public func range(field first: Int, width: Int, _ low: UInt128, _ high: UInt128) -> Node {
        and(atLeast(first, width, low), atMost(first, width, high))
    }

    private func atLeast(_ first: Int, _ width: Int, _ bound: UInt128) -> Node {
        // Built from the least significant bit up: ge(i) = x_i > b_i, or x_i == b_i and ge(i+1).
        var node: Int32 = 1
        for bit in (0..<width).reversed() {
            let b = (bound >> UInt128(width - 1 - bit)) & 1 == 1
            node = b ? make(Int32(first + bit), 0, node) : make(Int32(first + bit), node, 1)
        }
        return Node(index: node)
    }

    private func atMost(_ first: Int, _ width: Int, _ bound: UInt128) -> Node {
        var node: Int32 = 1
        for bit in (0..<width).reversed() {
            let b = (bound >> UInt128(width - 1 - bit)) & 1 == 1
            node = b ? make(Int32(first + bit), 1, node) : make(Int32(first + bit), node, 0)
        }
        return Node(index: node)
    }
}
