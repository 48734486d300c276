import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirTestFixtures

/// Random mutations of the valid policies in `Policies/`: the compiler must never crash, every
/// error must be located inside the text it was given (or a file it included), and a result is
/// either errors and nothing, or no errors and a ruleset with its iptables artifact.
///
/// The seed is printed; set `WEIR_FUZZ_SEED` (decimal or 0x-hex) to replay a run, and
/// `WEIR_FUZZ_COUNT` to try more mutants than the default 10,000. A crash kills the test process
/// before it can say which mutant did it: replay with `WEIR_FUZZ_VERBOSE=1`, which prints each
/// mutant's number and mutations to standard error before compiling it (the last line printed is the culprit).
@Suite("Mutation robustness")
struct MutationRobustnessTests {
    /// The package root: three levels above this file (Tests/WeirTests/MutationRobustnessTests.swift).
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let policies = root + "/Policies"
    /// Mutants are compiled as if they were this file (never written), so `include "include/…"`
    /// still resolves against `Policies/`.
    static let mutantPath = policies + "/mutant.weir"

    static let defaultSeed: UInt64 = 0x5745_4952_2025_0001
    static let seed = EnvironmentSeed.read("WEIR_FUZZ_SEED", fallback: defaultSeed)
    static let verbose = ProcessInfo.processInfo.environment["WEIR_FUZZ_VERBOSE"].map { !$0.isEmpty && $0 != "0" } ?? false
    static let count: Int = ProcessInfo.processInfo.environment["WEIR_FUZZ_COUNT"].flatMap { Int($0) }.map { max($0, 10_000) } ?? 10_000

    /// The valid policies (and the files they include), as bytes.
    static let corpus: [(name: String, bytes: [UInt8])] = {
        let manager = FileManager.default
        var found: [(String, [UInt8])] = []
        for directory in [policies, policies + "/include"] {
            let names = ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".weir") }.sorted()
            for name in names {
                if let data = manager.contents(atPath: directory + "/" + name) {
                    found.append((String((directory + "/" + name).dropFirst(policies.count + 1)), [UInt8](data)))
                }
            }
        }
        return found
    }()

    static let keywords: [String] = [
        "include", "docker", "classic", "host", "network", "container", "set", "user", "input",
        "interface", "address", "forward-policy", "userland-proxy", "ip6tables", "bridge", "subnet",
        "gateway", "snat-source", "icc", "internal", "masquerade", "gateway-mode", "publish",
        "addresses", "ports", "interfaces", "accept", "drop", "reject", "return", "log", "with",
        "prefix", "level", "in", "out", "from", "to", "proto", "sport", "dport", "state", "src-type",
        "dst-type", "comment", "on", "off", "nat", "routed", "tcp", "udp", "sctp", "icmp", "icmpv6",
        "new,established", "local", "tcp-reset", "icmp6-no-route", "@admins", "@webports", "@uplinks",
        "@c1", "@web", "@nope", "docker0", "enp0s8", "wg+", "+", "bridge", "net2", "c1", "c2",
        "0", "1", "7", "8", "65535", "65536", "99999999999999999999", "-1", "80-70", "1-65535:1-65535",
        "8080:80", "127.0.0.1:8080:80", "[::1]:8080:80", "[::]:1:1/udp", "::1:8080:80", "10080:80/sctp",
        "172.17.0.1", "172.17.0.2", "172.17.255.255", "172.17.0.0/16", "172.17.0.1/16", "0.0.0.0/0",
        "::/0", "::1", "fd00:db8:1::/64", "fd00:db8:1::2", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        "1.2.3", "256.0.0.1", "\"x\"", "\"\"", "\"say \\\"hi\\\"\"", "\"include/classic-27-host.weir\"",
        "\"mutant.weir\"", "\"../Policies/include/classic-27-host.weir\"", "\"/nonexistent.weir\"",
        "\"this-log-prefix-is-far-too-long-for-iptables\"",
    ]
    static let punctuation: [[UInt8]] = ["{", "}", ",", ";", "=", "!", "\"", "#", "\n", ":", "/", "[", "]",
                                          "@", "-", "+", "\\", "\t", "\r", "\r\n", "é", "\u{0}", "\u{7f}", "{}", "!!"]
        .map { Array($0.utf8) }

    // MARK: Mutations

    /// Byte ranges of whitespace-separated words.
    static func words(_ bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = -1
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let blank = b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
            if blank, start >= 0 { out.append(start..<i); start = -1 } else if !blank, start < 0 { start = i }
            i += 1
        }
        if start >= 0 { out.append(start..<bytes.count) }
        return out
    }

    /// Byte ranges of lines, each with its newline when it has one.
    static func lines(_ bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A { out.append(start..<(i + 1)); start = i + 1 }
            i += 1
        }
        if start < bytes.count { out.append(start..<bytes.count) }
        return out
    }

    /// Whether `position` is inside a `#` comment (so a mutation there would change nothing).
    static func inComment(_ bytes: [UInt8], _ position: Int) -> Bool {
        var i = min(position, bytes.count) - 1
        while i >= 0, bytes[i] != 0x0A {
            if bytes[i] == UInt8(ascii: "#") { return true }
            i -= 1
        }
        return false
    }

    /// A random position in `0...bytes.count`, mostly outside comments: the corpus is a third comments.
    static func position(in bytes: [UInt8], _ rng: inout SplitMix64) -> Int {
        var position = rng.below(bytes.count + 1)
        for _ in 0..<4 where inComment(bytes, position) { position = rng.below(bytes.count + 1) }
        return position
    }

    /// Applies one random mutation; returns its name.
    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) -> String {
        let position = position(in: bytes, &rng)
        let roll = rng.below(1000)
        switch roll {
        case ..<110:  // flip one bit
            guard position < bytes.count else { fallthrough }
            let i = position
            bytes[i] ^= 1 << UInt8(rng.below(8))
            return "bit flip @\(i)"
        case ..<190:  // replace a byte with any byte
            guard position < bytes.count else { fallthrough }
            let i = position
            bytes[i] = UInt8(rng.below(256))
            return "byte replace @\(i)"
        case ..<270:  // insert a random byte
            bytes.insert(UInt8(rng.below(256)), at: position)
            return "byte insert @\(position)"
        case ..<360:  // delete a few bytes
            let length = min(1 + rng.below(rng.chance(80) ? 3 : 40), bytes.count - min(position, bytes.count))
            bytes.removeSubrange(position..<(position + length))
            return "delete \(length) @\(position)"
        case ..<420:  // truncate
            bytes.removeSubrange(position...)
            return "truncate @\(position)"
        case ..<500:  // swap two words
            let spans = words(bytes)
            guard spans.count >= 2 else { fallthrough }
            var (a, b) = (rng.below(spans.count), rng.below(spans.count))
            if a == b { b = (a + 1) % spans.count }
            if a > b { swap(&a, &b) }
            let (first, second) = (spans[a], spans[b])
            bytes = Array(bytes[..<first.lowerBound] + bytes[second] + bytes[first.upperBound..<second.lowerBound]
                          + bytes[first] + bytes[second.upperBound...])
            return "swap words \(a),\(b)"
        case ..<570:  // swap two lines
            let spans = lines(bytes)
            guard spans.count >= 2 else { fallthrough }
            var (a, b) = (rng.below(spans.count), rng.below(spans.count))
            if a == b { b = (a + 1) % spans.count }
            if a > b { swap(&a, &b) }
            var all = spans.map { Array(bytes[$0]) }
            all.swapAt(a, b)
            bytes = all.flatMap { $0 }
            return "swap lines \(a + 1),\(b + 1)"
        case ..<640:  // duplicate a line (possibly many times)
            let spans = lines(bytes)
            guard let span = spans.isEmpty ? nil : spans[rng.below(spans.count)] else { fallthrough }
            var line = Array(bytes[span])
            if line.last != 0x0A { line.append(0x0A) }
            let copies = rng.chance(90) ? 1 : 1 + rng.below(200)
            bytes.insert(contentsOf: Array([[UInt8]](repeating: line, count: copies).joined()), at: span.upperBound)
            return "duplicate line x\(copies)"
        case ..<680:  // delete a line
            let spans = lines(bytes)
            guard !spans.isEmpty else { fallthrough }
            bytes.removeSubrange(spans[rng.below(spans.count)])
            return "delete line"
        case ..<800:  // insert a keyword or value as a word
            let word = rng.pick(keywords)
            let spaced = rng.chance(70) ? " \(word) " : word
            bytes.insert(contentsOf: Array(spaced.utf8), at: position)
            return "insert '\(word)' @\(position)"
        case ..<900:  // insert punctuation
            let mark = rng.pick(punctuation)
            bytes.insert(contentsOf: mark, at: position)
            return "insert punctuation @\(position)"
        case ..<950:  // replace a number with an extreme one
            let spans = words(bytes).filter { bytes[$0].contains { $0 >= 0x30 && $0 <= 0x39 } }
            guard !spans.isEmpty else { fallthrough }
            let span = spans[rng.below(spans.count)]
            let replacement = rng.pick(["0", "65535", "65536", "1-65535", "999999999999999999999", "255.255.255.255",
                                        "0.0.0.0/0", "172.17.0.0/0", "1:2:3", "[::]:1:1", "0-0", "10.0.0.1/33"])
            bytes.replaceSubrange(span, with: Array(replacement.utf8))
            return "replace number with \(replacement)"
        case ..<997:  // splice in a line of another policy
            let other = rng.pick(corpus).bytes
            let spans = lines(other)
            guard !spans.isEmpty else { fallthrough }
            let lineStart = lines(bytes).map(\.lowerBound).filter { $0 <= position }.last ?? 0
            bytes.insert(contentsOf: other[spans[rng.below(spans.count)]], at: lineStart)
            return "splice line"
        default:  // rare and large (the pathological test has more): deep nesting, huge lines, huge repetition
            let big: [UInt8]
            switch rng.below(6) {
            case 0: big = Array(repeating: UInt8(ascii: "{"), count: 10_000)
            case 1: big = Array(repeating: UInt8(ascii: "}"), count: 10_000)
            case 2: big = Array(repeating: UInt8(ascii: "a"), count: 100_000)
            case 3: big = Array(("\"" + String(repeating: "x", count: 100_000) + "\"").utf8)
            case 4: big = Array(String(repeating: "! ", count: 10_000).utf8)
            default: big = Array(String(repeating: "80,", count: 30_000).utf8)
            }
            bytes.insert(contentsOf: big, at: position)
            return "insert \(big.count) bytes @\(position)"
        }
    }

    // MARK: Checking

    /// What is wrong with the result of compiling `text`, or nil.
    static func problem(compiling text: String) -> String? { check(text).problem }

    /// Compiles `text` as the mutant file: what is wrong with the result (or nil), and whether it had errors.
    static func check(_ text: String) -> (problem: String?, hadErrors: Bool) {
        let result = Compiler.compile(text: text, path: mutantPath)
        return (problem(of: result, size: text.utf8.count), result.hasErrors)
    }

    static func problem(of result: CompileResult, size: Int) -> String? {
        // Every error has a location; every location (errors, warnings, notes) lies inside the
        // mutant's text, or inside a file it included (read from disk, so checked against its bytes).
        for diagnostic in result.diagnostics {
            for located in [diagnostic] + diagnostic.notes {
                guard let range = located.range else {
                    if located.severity == .error { return "unlocated error: \(located)" }
                    continue
                }
                let limit = range.file.path == mutantPath ? size : range.file.bytes.count
                let (line, column) = range.file.lineAndColumn(of: range.start)
                guard range.start >= 0, range.start <= limit, range.end <= limit, line >= 1, column >= 1 else {
                    return "located outside the text (bytes \(range.start)..<\(range.end) of \(limit)): \(located)"
                }
            }
        }
        if result.hasErrors {
            if result.ruleset != nil { return "errors, but a ruleset" }
            if !result.artifacts.isEmpty { return "errors, but \(result.artifacts.count) artifacts" }
        } else {
            guard result.ruleset != nil else { return "no error, but no ruleset" }
            guard let iptables = result.artifact(.iptables), !iptables.contents.isEmpty else { return "no error, but no iptables artifact" }
        }
        return nil
    }

    static func shown(_ text: String) -> String {
        let cut = text.utf8.count > 600 ? String(decoding: text.utf8.prefix(600), as: UTF8.self) + "… (\(text.utf8.count) bytes)" : text
        return cut.debugDescription
    }

    /// Mutant `index` of the run: its own generator, so any one mutant replays alone.
    static func mutant(_ index: Int) -> (text: String, steps: [String], base: String) {
        var rng = SplitMix64(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        let base = rng.pick(corpus)
        var bytes = base.bytes
        var steps: [String] = []
        let count = 1 + (rng.chance(60) ? 0 : rng.below(rng.chance(80) ? 3 : 12))
        for _ in 0..<count { steps.append(mutate(&bytes, &rng)) }
        return (String(decoding: bytes, as: UTF8.self), steps, base.name)
    }

    /// Shards run in parallel; together they cover mutants 0..<count.
    static let shards = 4

    @Test("the corpus is there and valid")
    func corpusIsValid() {
        print("MutationRobustnessTests: seed \(Self.seed) (0x\(String(Self.seed, radix: 16))); replay with WEIR_FUZZ_SEED=\(Self.seed)")
        #expect(Self.corpus.count >= 10, "\(Self.corpus.map(\.name))")
        for (name, bytes) in Self.corpus {
            let result = Compiler.compile(text: String(decoding: bytes, as: UTF8.self), path: Self.policies + "/" + name)
            #expect(!result.hasErrors, "\(name): \(result.diagnostics)")
            #expect(Self.problem(compiling: String(decoding: bytes, as: UTF8.self)) == nil, "\(name)")
        }
    }

    @Test("random mutants never crash, and every error is located in the text", .timeLimit(.minutes(2)), arguments: 0..<shards)
    func mutants(shard: Int) {
        print("MutationRobustnessTests: seed \(Self.seed) (0x\(String(Self.seed, radix: 16))), \(Self.count) mutants; replay with WEIR_FUZZ_SEED=\(Self.seed)")
        var failures = 0
        var withErrors = 0
        var index = shard
        while index < Self.count {
            defer { index += Self.shards }
            let (text, steps, base) = Self.mutant(index)
            if Self.verbose {
                // Unbuffered, so the line is out before a crash.
                FileHandle.standardError.write(Data("mutant #\(index) of \(base) [\(steps.joined(separator: "; "))]: \(Self.shown(text))\n".utf8))
            }
            let (problem, hadErrors) = Self.check(text)
            if hadErrors { withErrors += 1 }
            guard let problem else { continue }
            failures += 1
            if failures <= 10 {
                Issue.record("seed \(Self.seed), mutant #\(index) of \(base) [\(steps.joined(separator: "; "))]: \(problem)\n\(Self.shown(text))")
            }
        }
        print("MutationRobustnessTests: shard \(shard): \(withErrors) of its mutants had errors; \(failures) failed")
    }

    /// A hand-made hostile input, named so test output does not print its text.
    struct Pathological: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var testDescription: String { name }
        init(_ name: String, _ text: String) { self.name = name; self.text = text }
    }

    static let pathologicalInputs: [Pathological] = [
        Pathological("10,000 '{'", String(repeating: "{", count: 10_000)),
        Pathological("10,000 '}'", String(repeating: "}", count: 10_000)),
        Pathological("10,000 nested network blocks", String(repeating: "network n {\n", count: 10_000)),
        Pathological("10,000 '!' in a rule", "docker classic\ninput {\n    accept " + String(repeating: "! ", count: 10_000) + "\n}\n"),
        Pathological("a 100,000-character word", "docker classic\n" + String(repeating: "a", count: 100_000) + "\n"),
        Pathological("a 100,000-character name", "docker classic\nnetwork " + String(repeating: "n", count: 100_000) + " {\n}\n"),
        Pathological("a 100,000-character string", "docker classic\ninput {\n    accept comment \"" + String(repeating: "x", count: 100_000) + "\"\n}\n"),
        Pathological("an unterminated 100,000-character string", "docker classic\ninput {\n    accept comment \"" + String(repeating: "x", count: 100_000)),
        Pathological("a 100,000-character comment line", "docker classic\n#" + String(repeating: "#", count: 100_000) + "\n"),
        Pathological("a 100,000-character publish", "docker classic\ncontainer c {\n    publish " + String(repeating: ":", count: 100_000) + "\n}\n"),
        Pathological("a 100,000-character port", "docker classic\ninput {\n    accept proto tcp dport " + String(repeating: "9", count: 100_000) + "\n}\n"),
        Pathological("a 100,000-character address", "docker classic\ninput {\n    accept from " + String(repeating: "1.", count: 50_000) + "\n}\n"),
        Pathological("a 100,000-character IPv6 address", "docker classic\ninput {\n    accept from " + String(repeating: "1:", count: 50_000) + "\n}\n"),
        Pathological("30,000 set elements", "docker classic\nset p ports { " + (1...30_000).map { String($0 % 65535 + 1) }.joined(separator: ", ") + " }\n"),
        Pathological("a set expansion past the limit", "docker classic\nset p ports { " + (1...200).map(String.init).joined(separator: ",")
            + " }\ninput {\n    accept proto tcp" + String(repeating: " dport @p sport @p", count: 10) + "\n}\n"),
        Pathological("100,000 newlines", "docker classic" + String(repeating: "\n", count: 100_000)),
        Pathological("100,000 NUL bytes", "docker classic\n" + String(repeating: "\u{0}", count: 100_000)),
        Pathological("10,000 lines of bad characters", String(repeating: "é\u{7}$\n", count: 10_000)),
        Pathological("an empty file", ""),
        Pathological("only 'docker classic'", "docker classic"),
    ]

    @Test("pathological inputs: deep nesting, huge lines, huge repetition", arguments: pathologicalInputs)
    func pathological(_ input: Pathological) {
        let (name, text) = (input.name, input.text)
        #expect(Self.problem(compiling: text) == nil, "\(name)")
        // The same input inside the richest valid policy, at its start, middle and end.
        for (base, bytes) in Self.corpus.filter({ $0.name == "user-rules.weir" }) {
            for position in [0, bytes.count / 2, bytes.count] {
                let mutated = String(decoding: bytes[..<position] + Array(text.utf8) + bytes[position...], as: UTF8.self)
                #expect(Self.problem(compiling: mutated) == nil, "\(name) in \(base) @\(position)")
            }
        }
    }
}

extension MutationRobustnessTests {
    /// A tiny deterministic PRNG (Steele, Lea & Flood's SplitMix64), so a failing mutant can be
    /// reproduced from the printed seed on any platform.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        /// A uniform integer in `0..<bound` (bound > 0).
        mutating func below(_ bound: Int) -> Int { Int(next(upperBound: UInt64(bound))) }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }
}
