import Testing
import WeirVerifier

@Suite("BDD")
struct BDDTests {
    /// Membership of `value` in a set over one 8-bit field at variables 0…7.
    static func contains(_ manager: BDDManager, _ set: BDDManager.Node, _ value: Int) -> Bool {
        manager.contains(set) { bit in (value >> (7 - bit)) & 1 == 1 }
    }

    @Test("equality, prefix and range sets hold exactly their values (all 256 of an 8-bit field)")
    func fieldSets() {
        let m = BDDManager()
        let five = m.equals(field: 0, width: 8, 5)
        let prefix = m.prefix(field: 0, width: 8, 0b1010_0000, length: 3)   // 101xxxxx
        let range = m.range(field: 0, width: 8, 37, 200)
        for value in 0..<256 {
            #expect(Self.contains(m, five, value) == (value == 5))
            #expect(Self.contains(m, prefix, value) == (value >> 5 == 0b101))
            #expect(Self.contains(m, range, value) == (37...200).contains(value))
        }
        #expect(m.range(field: 0, width: 8, 0, 255).isTrue)
        #expect(m.prefix(field: 0, width: 8, 0, length: 0).isTrue)
    }

    @Test("equal sets are the same node however they are built")
    func canonical() {
        let m = BDDManager()
        let a = m.range(field: 0, width: 8, 10, 20), b = m.range(field: 0, width: 8, 15, 40), c = m.equals(field: 0, width: 8, 99)
        #expect(m.or(m.and(a, b), m.and(a, c)) == m.and(a, m.or(b, c)))
        #expect(m.not(m.and(a, b)) == m.or(m.not(a), m.not(b)))
        #expect(m.or(m.range(field: 0, width: 8, 10, 14), m.range(field: 0, width: 8, 15, 20)) == a)
        #expect(m.and(a, m.not(a)).isFalse)
        #expect(m.isSubset(m.range(field: 0, width: 8, 12, 13), of: a))
        #expect(!m.isSubset(b, of: a))
    }

    @Test("a member is in the set; the empty set has none")
    func member() throws {
        let m = BDDManager()
        let set = m.and(m.range(field: 0, width: 8, 100, 120), m.not(m.equals(field: 0, width: 8, 100)))
        let assignment = try #require(m.anyMember(set))
        #expect(m.contains(set) { assignment[$0] ?? false })
        #expect(m.anyMember(.false) == nil)
    }

    @Test("existential quantification forgets a field")
    func exists() {
        let m = BDDManager()
        // Field A at 0…7, field B at 8…15.
        let set = m.and(m.equals(field: 0, width: 8, 7), m.equals(field: 8, width: 8, 9))
        #expect(m.exists(set, variables: 0..<8) == m.equals(field: 8, width: 8, 9))
        #expect(m.exists(set, variables: 0..<16).isTrue)
    }

    @Test("a cofactor fixes one variable: the same as ∃ of the set with that literal, for every variable and value")
    func cofactor() {
        let m = BDDManager()
        let set = m.or(m.and(m.range(field: 0, width: 8, 37, 200), m.equals(field: 8, width: 8, 9)), m.prefix(field: 0, width: 8, 0b1110_0000, length: 3))
        for v in 0..<16 {
            for value in [false, true] {
                let literal = value ? m.variable(v) : m.notVariable(v)
                let expected = m.exists(m.and(set, literal), variables: v..<(v + 1))
                #expect(m.restrict(set, variable: v, to: value) == expected, "variable \(v) := \(value)")
                // Asked again (now from the computed table): the same node.
                #expect(m.restrict(set, variable: v, to: value) == expected)
            }
        }
    }

    @Test("uniting many sets at once is the pairwise union, whichever variables each set tests")
    func unionOfMany() {
        let m = BDDManager()
        // Sets over fields A (0…7) and B (8…15): some test both, some only B, some only A,
        // and the lists mix empty and full sets and repeats, as a chain's blocks do.
        var generator = MutationRobustnessTests.SplitMix64(seed: 7)
        func random(_ bound: Int) -> Int { Int(generator.next() % UInt64(bound)) }
        for trial in 0..<200 {
            var sets: [BDDManager.Node] = []
            for _ in 0..<(1 + random(12)) {
                let a = m.range(field: 0, width: 8, UInt128(random(128)), UInt128(128 + random(128)))
                let b = m.prefix(field: 8, width: 8, UInt128(random(256)), length: random(9))
                switch random(6) {
                case 0: sets.append(a)
                case 1: sets.append(b)
                case 2: sets.append(.false)
                case 3: sets.append(sets.last ?? .true)
                default: sets.append(m.and(a, b))
                }
            }
            let pairwise = sets.reduce(BDDManager.Node.false) { m.or($0, $1) }
            #expect(m.or(sets) == pairwise, "trial \(trial)")
        }
        #expect(m.or([]).isFalse)
    }

    @Test("a manager sized for few nodes grows past its size and keeps every set canonical")
    func growth() {
        // 50,000 distinct 24-bit values make far more nodes than the smallest tables hold.
        let m = BDDManager(expectedNodes: 10)
        let values = (0..<50_000).map { ($0 &* 2_654_435_761) & 0xFF_FFFF }
        let all = m.or(values.map { m.equals(field: 0, width: 24, UInt128($0)) })
        #expect(m.nodeCount > 1 << 18)
        for value in values.prefix(3) + [0, 1, 4_242, 0xFF_FFFF] {
            #expect(m.contains(all) { bit in (value >> (23 - bit)) & 1 == 1 } == values.contains(value))
        }
        // Rebuilt one by one after the growth: the same node.
        #expect(values.reduce(BDDManager.Node.false) { m.or($0, m.equals(field: 0, width: 24, UInt128($1))) } == all)
    }

    @Test("uniting sets that share most of their parts meets each list of parts once (parity over 40 variables has 2^40 paths)")
    func unionOfSharedSets() {
        let m = BDDManager()
        // Parity of variables 0…39: 79 nodes, every path through all of them. Three variants
        // differ in one variable's polarity only, so their expansion meets the same few lists
        // of parts along 2^40 paths; expanded once per path, it would not finish (the
        // watchdog ends the test process after WEIR_VERIFY_TIMEOUT seconds).
        func parity(flipping flipped: Int?) -> BDDManager.Node {
            (0..<40).reduce(BDDManager.Node.false) { set, v in
                let bit = v == flipped ? m.notVariable(v) : m.variable(v)
                return m.or(m.and(set, m.not(bit)), m.and(m.not(set), bit))
            }
        }
        let sets = [parity(flipping: nil), parity(flipping: 39), parity(flipping: 11), m.equals(field: 0, width: 24, 5)]
        let union = VerifierSupport.watched("BDDManager.or of three parity sets") { m.or(sets) }
        #expect(union == sets.reduce(BDDManager.Node.false) { m.or($0, $1) })
    }
}
