import Foundation
import Testing
import WeirDriver

/// The classic-era dumps of `docker-rules.md` §2.3, by scenario id: the IPv4 block and, where the
/// reference gives one, the ip6tables-save block.
struct ReferenceScenario {
    var ipv4: String
    var ipv6: String?

    /// Reads scenario `id` (e.g. "S2") from §2.3 of docker-rules.md.
    static func load(_ id: String) throws -> ReferenceScenario {
        let text = try Repository.sharedFile("reference/docker-rules.md")
        guard let start = text.range(of: "### 2.3 Classic dumps"), let end = text.range(of: "\n## 3.") else {
            Issue.record("docker-rules.md has no §2.3")
            throw CancellationError()
        }
        let section = text[start.upperBound..<end.lowerBound]
        let parts = section.components(separatedBy: "\n#### ")
        guard let part = parts.first(where: { $0.hasPrefix(id + " ") }) else {
            Issue.record("docker-rules.md §2.3 has no scenario \(id)")
            throw CancellationError()
        }
        // Code blocks, each with the prose line before it.
        var blocks: [(label: String, body: String)] = []
        let lines = part.components(separatedBy: "\n")
        var index = 0
        var lastProse = ""
        while index < lines.count {
            if lines[index].hasPrefix("```text") {
                var body: [String] = []
                index += 1
                while index < lines.count, !lines[index].hasPrefix("```") { body.append(lines[index]); index += 1 }
                blocks.append((lastProse, body.joined(separator: "\n") + "\n"))
            } else if !lines[index].trimmingCharacters(in: .whitespaces).isEmpty {
                lastProse = lines[index]
            }
            index += 1
        }
        guard let first = blocks.first else {
            Issue.record("scenario \(id) has no dump")
            throw CancellationError()
        }
        return ReferenceScenario(ipv4: first.body, ipv6: blocks.first { $0.label.hasPrefix("ip6tables-save") }?.body)
    }
}

@Suite("Docker classic layout")
struct DockerClassicScenarioTests {
    @Test("docker-default.weir compiles byte for byte to the seed host's iptables-save")
    func seedHost() throws {
        let result = Compiler.compile(path: Repository.policy("docker-default.weir"))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let reference = try Repository.sharedFile("reference/docker-classic-default.rules")
        #expect(withoutComments(result.artifact(.iptables)?.contents ?? "") == withoutComments(reference))
        #expect(result.artifact(.ip6tables) == nil)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var id: String
        var policy: String
        var testDescription: String { "\(id) \(policy)" }
    }

    static let cases: [Case] = [
        Case(id: "S1", policy: "classic-s1-publish.weir"),
        Case(id: "S2", policy: "classic-s2-two-bridges.weir"),
        Case(id: "S3", policy: "classic-s3-icc-off.weir"),
        Case(id: "S4", policy: "classic-s4-internal.weir"),
        Case(id: "S5", policy: "classic-s5-no-masquerade.weir"),
        Case(id: "S6a", policy: "classic-s6a-loopback-publish.weir"),
        Case(id: "S6b", policy: "classic-s6b-udp.weir"),
        Case(id: "S6c", policy: "classic-s6c-port-range.weir"),
        Case(id: "S7", policy: "classic-s7-no-userland-proxy.weir"),
        Case(id: "S8", policy: "classic-s8-ipv6.weir"),
        Case(id: "S9a", policy: "classic-s9a-routed.weir"),
    ]

    @Test("each classic scenario matches its reference dump table by table", arguments: cases)
    func scenario(_ scenario: Case) throws {
        let reference = try ReferenceScenario.load(scenario.id)
        let result = Compiler.compile(path: Repository.policy(scenario.policy))
        #expect(!result.hasErrors, "\(result.diagnostics)")
        let ipv4 = tablesOf(result.artifact(.iptables)?.contents ?? "")
        let expected4 = tablesOf(reference.ipv4)
        #expect(Set(ipv4.keys) == Set(expected4.keys))
        for (table, text) in expected4 {
            #expect(ipv4[table] == text, "IPv4 table \(table) of \(scenario.id)")
        }
        if let ipv6Reference = reference.ipv6 {
            let ipv6 = tablesOf(result.artifact(.ip6tables)?.contents ?? "")
            let expected6 = tablesOf(ipv6Reference)
            #expect(Set(ipv6.keys) == Set(expected6.keys))
            for (table, text) in expected6 {
                #expect(ipv6[table] == text, "IPv6 table \(table) of \(scenario.id)")
            }
        }
    }
}
