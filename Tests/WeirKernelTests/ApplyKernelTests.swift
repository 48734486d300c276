import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirModel
import WeirNetlink
import WeirNftables

/// `weir apply` and `weir show` against the kernel, for every policy: the transaction replaces
/// only Weir's tables, nft decompiles what Weir wrote, and failures leave the ruleset as it was.
@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct ApplyKernelTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var policies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }

    static func compile(_ policy: String) throws -> CompileResult {
        let result = Compiler.compile(path: root + "/Policies/" + policy, backends: [.nftables])
        #expect(!result.hasErrors, "\(result.diagnostics)")
        return result
    }

    static func nft(_ namespace: NetworkNamespace, _ arguments: [String], stdin: String? = nil) throws -> String {
        let nft = try #require(CommandRunner.locate("nft"), "nft is not installed")
        let result = try namespace.run(nft, arguments, stdin: stdin)
        #expect(result.succeeded, "nft \(arguments.joined(separator: " ")): \(result)")
        return result.stdout
    }

    @Test("apply, then show, gives back the compiled model; nft lists it as nft -f of the .nft text does", arguments: policies)
    func applyShowRoundTrip(_ policy: String) throws {
        guard let tools = KernelRequirement.check() else { return }
        let result = try Self.compile(policy)
        let batch = try #require(result.batch)
        let ruleset = try #require(result.ruleset)

        let applied = try NetworkNamespace(ip: tools.ip)
        defer { applied.delete() }
        if case .failure(let error) = Deployer.apply(batch, namespace: applied.name) {
            Issue.record("apply failed: \(error)")
            return
        }
        let (shown, diagnostics) = Deployer.show(namespace: applied.name)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        // CHECKSUM has no nftables form; everything else must come back exactly.
        #expect(shown == NftLowering.normalForm(ruleset), "\(policy): the kernel's ruleset lifts to a different model")

        // nft itself decompiles what Weir wrote, exactly as it lists its own load of the .nft text.
        let loaded = try NetworkNamespace(ip: tools.ip)
        defer { loaded.delete() }
        let text = try #require(result.artifact(.nft)).contents
        _ = try Self.nft(loaded, ["-f", "-"], stdin: text)
        let fromBatch = Self.sortingSetElements(try Self.nft(applied, ["list", "ruleset"]))
        let fromText = Self.sortingSetElements(try Self.nft(loaded, ["list", "ruleset"]))
        #expect(fromBatch == fromText, "\(policy): nft lists the batch differently from its own load of the .nft text")
        #expect(fromBatch.contains("table ip weir-filter"))

        // A second apply replaces: the listing does not change.
        if case .failure(let error) = Deployer.apply(batch, namespace: applied.name) { Issue.record("second apply: \(error)") }
        #expect(Self.sortingSetElements(try Self.nft(applied, ["list", "ruleset"])) == fromBatch)
    }

    /// `listing` with the elements of every inline set (`{ a, b, c }` on one line) sorted: nft
    /// lists a hashed set's elements in the order of the set's hash table, whose seed differs
    /// from one set to the next.
    static func sortingSetElements(_ listing: String) -> String {
        listing.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let open = line.range(of: "{ "), let close = line.range(of: " }", options: .backwards), open.upperBound <= close.lowerBound else {
                return String(line)
            }
            let elements = line[open.upperBound..<close.lowerBound].components(separatedBy: ", ").sorted()
            return String(line[..<open.upperBound]) + elements.joined(separator: ", ") + String(line[close.lowerBound...])
        }.joined(separator: "\n")
    }

    @Test("a rule the kernel refuses fails the whole transaction, names the policy line, and changes nothing")
    func refusedRuleChangesNothing() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        // The previous ruleset: the seed host.
        let previous = try #require(try Self.compile("docker-default.weir").batch)
        guard case .success = Deployer.apply(previous, namespace: namespace.name) else {
            Issue.record("could not apply the seed host")
            return
        }
        let before = try Self.nft(namespace, ["list", "ruleset"])

        // user-rules.weir with its first DOCKER-USER rule jumping to a chain that does not exist;
        // the rule keeps its provenance, so the error must point at that policy line.
        var program = try #require(try Self.compile("user-rules.weir").nftProgram)
        let table = try #require(program.tables.firstIndex { $0.family == .ipv4 && $0.name == "weir-filter" })
        let chain = try #require(program.tables[table].chains.firstIndex { $0.name == "DOCKER-USER" })
        var rule = program.tables[table].chains[chain].rules[0]
        rule.expressions[rule.expressions.count - 1] = ImmediateExpression.verdict(.jump("NO-SUCH-CHAIN"))
        program.tables[table].chains[chain].rules[0] = rule
        let broken = try NftBatch.replacing(program)

        guard case .failure(let error) = Deployer.apply(broken, namespace: namespace.name) else {
            Issue.record("the kernel accepted a jump to a missing chain")
            return
        }
        let diagnostic = try #require(error.diagnostics.first)
        let provenance = try #require(rule.provenance)
        #expect(diagnostic.range == provenance)
        #expect(provenance.file.path.hasSuffix("Policies/user-rules.weir"))
        #expect(diagnostic.description.hasPrefix("\(provenance): error: kernel rejected rule `"))
        #expect(diagnostic.message.contains("in ip weir-filter DOCKER-USER (#0)"))
        #expect(diagnostic.message.hasSuffix("No such file or directory (ENOENT)"))
        #expect(try Self.nft(namespace, ["list", "ruleset"]) == before)
    }

    @Test("tables of other programs survive an apply untouched: nft's and iptables-nft's")
    func foreignTablesSurvive() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        _ = try Self.nft(namespace, ["add", "table", "ip", "other"])
        _ = try Self.nft(namespace, ["add", "chain", "ip", "other", "input", "{ type filter hook input priority 10; }"])
        _ = try Self.nft(namespace, ["add", "rule", "ip", "other", "input", "tcp", "dport", "22", "accept"])
        let restore = try namespace.run(tools.iptablesRestore, [], stdin: "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n")
        #expect(restore.succeeded, "\(restore)")
        let otherBefore = try Self.nft(namespace, ["list", "table", "ip", "other"])
        let iptablesBefore = try Self.nft(namespace, ["list", "table", "ip", "filter"])

        for _ in 0..<2 {
            let batch = try #require(try Self.compile("docker-default.weir").batch)
            if case .failure(let error) = Deployer.apply(batch, namespace: namespace.name) { Issue.record("\(error)") }
        }
        #expect(try Self.nft(namespace, ["list", "table", "ip", "other"]) == otherBefore)
        #expect(try Self.nft(namespace, ["list", "table", "ip", "filter"]) == iptablesBefore)
        let tables = try Self.nft(namespace, ["list", "tables"])
        #expect(tables.split(separator: "\n").sorted() == ["table ip filter", "table ip other", "table ip weir-filter", "table ip weir-nat"])
    }

    @Test("a change by another program between read and commit aborts the apply")
    func interleavedChangeAborts() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        let socket = try NetlinkSocket(namespace: namespace.name)
        let generation = try socket.generation()
        _ = try Self.nft(namespace, ["add", "table", "ip", "intruder"])
        let before = try Self.nft(namespace, ["list", "ruleset"])
        let batch = try #require(try Self.compile("docker-default.weir").batch)
        guard case .failure(let error) = Deployer.apply(batch, namespace: namespace.name, generation: generation) else {
            Issue.record("a stale generation was accepted")
            return
        }
        #expect(error.diagnostics.first?.message.contains("changed by another program between read and commit") == true)
        #expect(try Self.nft(namespace, ["list", "ruleset"]) == before)
    }

    @Test("--check validates and commits nothing")
    func checkCommitsNothing() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        let batch = try #require(try Self.compile("user-rules.weir").batch)
        guard case .success(let report) = Deployer.apply(batch, namespace: namespace.name, checkOnly: true) else {
            Issue.record("check failed")
            return
        }
        #expect(!report.committed)
        #expect(try Self.nft(namespace, ["list", "ruleset"]) == "")
    }

    @Test("weir apply: a truncated or corrupted batch file is rejected before anything is sent")
    func badBatchFiles() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        let bytes = try #require(try Self.compile("docker-default.weir").batch).bytes
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weir-apply-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var corrupted = bytes
        corrupted[bytes.count / 2] ^= 0xff
        corrupted[bytes.count / 2 + 1] ^= 0xff
        let cases: [(String, [UInt8])] = [("truncated", Array(bytes.prefix(bytes.count - 7))), ("empty", []),
                                          ("corrupted", corrupted), ("no-end", Array(bytes.prefix(bytes.count - 20)))]
        let weir = Self.root + "/.build/debug/weir"
        for (name, content) in cases {
            let path = directory + "/\(name).batch"
            FileManager.default.createFile(atPath: path, contents: Data(content))
            let run = try CommandRunner.run(weir, ["apply", path, "--netns", namespace.name])
            #expect(run.status == 1, "\(name): \(run)")
            #expect(run.stderr.contains("not a valid batch, nothing sent"), "\(name): \(run.stderr)")
        }
        #expect(try Self.nft(namespace, ["list", "ruleset"]) == "")
        // The intact file applies, and show prints it as iptables-save text.
        let good = directory + "/good.batch"
        FileManager.default.createFile(atPath: good, contents: Data(bytes))
        let applied = try CommandRunner.run(weir, ["apply", good, "--netns", namespace.name])
        #expect(applied.status == 0, "\(applied)")
        let shown = try CommandRunner.run(weir, ["show", "--netns", namespace.name, "--format", "iptables"])
        let golden = try String(contentsOfFile: Self.root + "/Generated/docker-default.iptables", encoding: .utf8)
        #expect(shown.stdout == golden)
    }

    @Test("weir apply --target iptables loads the iptables output and reports a failure at its policy line")
    func iptablesTarget() throws {
        guard let tools = KernelRequirement.check() else { return }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        let weir = Self.root + "/.build/debug/weir"
        let run = try CommandRunner.run(weir, ["apply", Self.root + "/Policies/docker-default.weir", "--target", "iptables", "--netns", namespace.name])
        #expect(run.status == 0, "\(run)")
        let saved = try namespace.run(tools.iptablesSave, ["-t", "nat"])
        #expect(saved.stdout.contains("-A DOCKER ! -i docker0 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.2:80"))

        // A line iptables-restore refuses is reported at the policy line of its rule
        // (here the DNAT of `publish 10080:80/tcp`, made invalid after compiling).
        let result = Compiler.compile(path: Self.root + "/Policies/docker-default.weir", backends: [.iptables])
        let ruleset = try #require(result.ruleset)
        var artifacts = result.artifacts
        artifacts[0].contents = artifacts[0].contents.replacingOccurrences(of: "--to-destination 172.17.0.2:80", with: "--to-destination 999.17.0.2:80")
        let failures = Deployer.applyIptables(ruleset, artifacts: artifacts, namespace: namespace.name)
        let failure = try #require(failures.first)
        #expect(failure.range?.file.path.hasSuffix("Policies/docker-default.weir") == true)
        #expect(failure.range?.line == 20)
        #expect(failure.message.hasPrefix("iptables-restore failed: "))
    }
}
