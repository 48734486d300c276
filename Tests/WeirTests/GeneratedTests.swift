import Foundation
import Testing
import WeirDriver

@Suite("Generated outputs")
struct GeneratedTests {
    @Test("Generated/ holds exactly what Policies/ compiles to (run `make generate` when this fails)")
    func upToDate() throws {
        let files = GeneratedFiles(policies: Repository.root + "/Policies", generated: Repository.root + "/Generated")
        let stale = try files.check()
        #expect(stale.isEmpty, "stale: \(stale.map(\.description).joined(separator: ", "))")
    }

    @Test("the staleness check notices a changed, a missing and an orphaned file")
    func noticesStaleness() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("weir-generated-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let files = GeneratedFiles(policies: Repository.root + "/Policies", generated: scratch)
        let written = try files.update()
        #expect(!written.isEmpty)
        #expect(try files.check().isEmpty)

        let victim = scratch + "/docker-default.iptables"
        try "stale\n".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: scratch + "/classic-s8-ipv6.ip6tables")
        try "".write(toFile: scratch + "/gone.iptables", atomically: true, encoding: .utf8)
        let stale = try files.check()
        #expect(stale.contains(.outdated(victim)))
        #expect(stale.contains(.missing(scratch + "/classic-s8-ipv6.ip6tables")))
        #expect(stale.contains(.orphaned(scratch + "/gone.iptables")))
        #expect(stale.count == 3)
    }
}
