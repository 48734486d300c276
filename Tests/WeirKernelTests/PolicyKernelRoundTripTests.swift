import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirIptables
import WeirModel

/// Every policy's compiled output, loaded into a fresh namespace with `iptables-restore`,
/// read back with `iptables-save`, and imported: the kernel's text equals Weir's, the imported
/// model equals the compiled one, and printing the import again gives the same text.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct PolicyKernelRoundTripTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var policies: [String] {
        let directory = root + "/Policies"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }

    @Test("there are policies to round-trip")
    func policiesExist() {
        #expect(Self.policies.count >= 12)
    }

    @Test("compiled output survives iptables-restore / iptables-save / import unchanged", arguments: policies)
    func roundTrip(_ policy: String) throws {
        guard let tools = KernelRequirement.check() else { return }
        let result = Compiler.compile(path: Self.root + "/Policies/" + policy)
        #expect(!result.hasErrors, "\(result.diagnostics)")
        let ruleset = try #require(result.ruleset)
        for family in ruleset.families {
            let kind: Artifact.Kind = family == .ipv4 ? .iptables : .ip6tables
            let text = try #require(result.artifact(kind)).contents
            let namespace = try NetworkNamespace(ip: tools.ip)
            defer { namespace.delete() }

            let restore = try namespace.run(tools.restore(family.rawValue), [], stdin: text)
            #expect(restore.succeeded, "\(policy) \(family): iptables-restore failed: \(restore)")
            var saved = ""
            for table in ruleset.tables(of: family) {
                let dump = try namespace.run(tools.save(family.rawValue), ["-t", table.name])
                #expect(dump.succeeded, "\(dump)")
                saved += dump.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.hasPrefix("#") && !$0.isEmpty }
                    .map { $0 + "\n" }.joined()
            }
            #expect(saved == text, "\(policy) \(family): the kernel's iptables-save differs from Weir's output")

            let file = SourceFile(path: "\(namespace.name):iptables-save", text: saved)
            let (imported, diagnostics) = IptablesImporter.parse(file, family: family)
            #expect(diagnostics.isEmpty, "\(diagnostics)")
            #expect(imported == Ruleset(tables: ruleset.tables(of: family)), "\(policy) \(family): imported model differs from the compiled one")
            #expect(IptablesPrinter.render(imported, family: family) == text)
        }
    }
}
