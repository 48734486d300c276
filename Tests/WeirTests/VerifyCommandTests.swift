import Foundation
import Testing
import WeirDriver
import WeirModel
import WeirNetlink
import WeirSimulator
import WeirVerifier

/// `weir verify` and `weir compile --verify` as users run them: exit codes, the one-line proof,
/// the counterexample's packet, traces and outcomes, the JSON shape, and which host is used.
@Suite("weir verify")
struct VerifyCommandTests {
    static var policies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }

    func weir(_ arguments: [String], in directory: String = Repository.root) throws -> WeirBinary.Run {
        try WeirBinary.run(arguments, in: directory)
    }

    /// A scratch directory holding the given files (name → contents).
    func scratch(_ files: [String: String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-verify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, contents) in files { try contents.write(toFile: path + "/" + name, atomically: true, encoding: .utf8) }
        return path
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// An empty filter table with ACCEPT policies, and the same plus `rule` in INPUT.
    static func dump(_ rules: String...) -> String {
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + rules.map { $0 + "\n" }.joined() + "COMMIT\n"
    }

    static let open = dump()
    static let noSSH = dump("-A INPUT -p tcp -m tcp --dport 22 -j DROP")
    /// Drops SSH only to 10.0.3.121, the address of docker-default.weir's uplink enp0s8.
    static let noSSHToUplink = dump("-A INPUT -d 10.0.3.121/32 -p tcp -m tcp --dport 22 -j DROP")

    @Test("every policy's iptables output is proved equivalent to its batch: exit 0 and one line", arguments: policies)
    func everyPolicyVerifies(_ policy: String) throws {
        let run = try weir(["verify", "Policies/" + policy])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        let line = try #require(run.stdout.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init))
        #expect(run.stdout == line + "\n", "more than one line: \(run.stdout)")
        let path = "Policies/" + policy
        let pattern = try Regex("^equivalent: \(NSRegularExpression.escapedPattern(for: path)) \\(iptables\\) ≡ \(NSRegularExpression.escapedPattern(for: path)) \\(batch\\) \\(([0-9]+) classes, [0-9]+\\.[0-9]{2} s\\)$")
        let match = try #require(line.wholeMatch(of: pattern), "unexpected line: \(line)")
        #expect(Int(match.output[1].substring!)! > 0)
    }

    @Test("an equivalent pair: JSON holds equivalent, classes and seconds only")
    func equivalentJSON() throws {
        let run = try weir(["verify", "Policies/docker-default.weir", "Generated/docker-default.iptables", "--format", "json"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let object = try json(run.stdout)
        #expect(Set(object.keys) == ["equivalent", "classes", "seconds"])
        #expect(object["equivalent"] as? Bool == true)
        #expect((object["classes"] as? Int ?? 0) > 0)
        #expect((object["seconds"] as? Double ?? -1) >= 0)
    }

    @Test("a pair that differs on SSH exits 1 with a TCP port 22 counterexample, both traces side by side and both outcomes")
    func differentPairText() throws {
        let directory = try scratch(["open.rules": Self.open, "nossh.rules": Self.noSSH])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["verify", "open.rules", "nossh.rules"], in: directory)
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.isEmpty, "\(run.stderr)")  // in particular, the simulator agrees with the verifier
        let lines = run.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count >= 7, "\(run.stdout)")
        #expect(lines[0].hasPrefix("not equivalent: open.rules ≢ nossh.rules ("))
        // No policy among the inputs and no --host: every possible host, and the output says so.
        #expect(lines[0].hasSuffix(" on every host"))
        #expect(lines[1].hasPrefix("counterexample: "))
        #expect(lines[1].contains(" PROTO=TCP "))
        #expect(lines[1].contains(" DPT=22 "))
        #expect(lines[1].contains(" STATE="))
        #expect(lines[1].contains("IN=") || lines[1].contains("from a local process"))
        // The host it was found on: one where the packet's destination is local (on lo).
        let destination = try #require(lines[1].split(separator: " ").first { $0.hasPrefix("DST=") }).dropFirst(4)
        #expect(lines[2].hasPrefix("on the host: lo 127.0.0.1/8 "))
        #expect(lines[2].contains(" \(destination)/32"))
        // Column headers, then the left trace (open: INPUT's policy) beside the right (nossh: the DROP rule).
        #expect(lines[3].hasPrefix("open.rules "))
        #expect(lines[3].hasSuffix(" | nossh.rules"))
        let row = try #require(lines.first { $0.contains(" | filter:INPUT:rule:1 ") }, "no side-by-side row with the DROP rule:\n\(run.stdout)")
        #expect(row.hasPrefix("filter:INPUT:policy:1 "))
        #expect(row.contains("DPT=22"))
        #expect(lines.contains { $0.hasSuffix(" | dropped at filter:INPUT:rule:1") })
        // Every row's separator sits in the same column: the left column is padded.
        let separators = Set(lines[3...].filter { $0.contains(" | ") }.map { $0.distance(from: $0.startIndex, to: $0.range(of: " | ")!.lowerBound) })
        #expect(separators.count == 1)
        #expect(lines[lines.count - 2].hasPrefix("open.rules: delivered locally as SRC="))
        #expect(lines[lines.count - 2].hasSuffix(" DPT=22"))
        #expect(lines[lines.count - 1] == "nossh.rules: dropped")
    }

    @Test("the differing pair as JSON: the packet, the left exit, and both outcomes")
    func differentPairJSON() throws {
        let directory = try scratch(["open.rules": Self.open, "nossh.rules": Self.noSSH])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["verify", "open.rules", "nossh.rules", "--format", "json"], in: directory)
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let object = try json(run.stdout)
        #expect(Set(object.keys) == ["equivalent", "classes", "seconds", "counterexample", "left", "right", "host"])
        #expect(object["equivalent"] as? Bool == false)
        let packet = try #require(object["counterexample"] as? [String: Any])
        // On every possible host, the counterexample comes with the host it holds on: there the
        // destination is a local address (lo's), so the left side delivers it.
        let host = try #require(object["host"] as? [String: Any])
        let interfaces = try #require(host["interfaces"] as? [[String: Any]])
        let loopback = try #require(interfaces.first { $0["name"] as? String == "lo" })
        #expect((loopback["addresses"] as? [String] ?? []).contains("\(packet["dst"] as? String ?? "?")/32"))
        #expect(host["routes"] is [Any])
        #expect(Set(packet.keys) == ["in", "out", "src", "dst", "proto", "sport", "dport", "state"])
        #expect(packet["proto"] as? String == "tcp")
        #expect(packet["dport"] as? Int == 22)
        #expect(packet["sport"] is Int)
        #expect(packet["in"] is String || packet["in"] is NSNull)
        #expect(["new", "established", "related", "invalid", "untracked"].contains(packet["state"] as? String ?? ""))
        // The left side delivers it: it leaves by `lo`, as the simulator records local delivery.
        #expect(packet["out"] as? String == "lo")
        let left = try #require(object["left"] as? [String: Any])
        #expect(left["fate"] as? String == "delivered locally")
        #expect(left["interface"] is NSNull)
        #expect(left["dst"] as? String == packet["dst"] as? String)
        #expect(left["dport"] as? Int == 22)
        #expect(Set(left.keys) == ["fate", "interface", "src", "dst", "sport", "dport"])
        let right = try #require(object["right"] as? [String: Any])
        #expect(right["fate"] as? String == "dropped")
        // A dropped packet has no observable header.
        #expect(Set(right.keys) == ["fate", "interface"])
    }

    @Test("--host is honoured: SSH dropped only to one address differs where it is the host's, not where it is routed away")
    func hostIsHonoured() throws {
        let directory = try scratch(["open.rules": Self.open, "nossh-uplink.rules": Self.noSSHToUplink,
                                     "elsewhere.weir": "docker classic\n\nhost elsewhere {\n    interface eth0 address 192.0.2.10/24\n}\n"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // On every possible host: some host has 10.0.3.121 as its own address, and there TCP to
        // its port 22 is delivered under open.rules and dropped under the other.
        let every = try weir(["verify", "open.rules", "nossh-uplink.rules"], in: directory)
        #expect(every.status == 1, "\(every.stdout)\(every.stderr)")
        #expect(every.stdout.split(separator: "\n").first?.hasSuffix(" on every host") == true)
        #expect(every.stdout.contains(" DST=10.0.3.121 PROTO=TCP "))
        #expect(every.stdout.contains("on the host: lo 127.0.0.1/8 10.0.3.121/32"))
        // On elsewhere.weir's host 10.0.3.121 is not local: its default route sends it out eth0,
        // so INPUT never sees it and the DROP rule cannot make a difference. Equivalent.
        let elsewhere = try weir(["verify", "open.rules", "nossh-uplink.rules", "--host", "elsewhere.weir"], in: directory)
        #expect(elsewhere.status == 0, "\(elsewhere.stdout)\(elsewhere.stderr)")
        #expect(elsewhere.stdout.hasPrefix("equivalent: open.rules ≡ nossh-uplink.rules ("))
        #expect(!elsewhere.stdout.contains("every host"))
        // On docker-default.weir's host enp0s8 carries 10.0.3.121: not equivalent, and only such
        // a packet can be the counterexample.
        let seeded = try weir(["verify", "open.rules", "nossh-uplink.rules", "--host", Repository.policy("docker-default.weir")], in: directory)
        #expect(seeded.status == 1, "\(seeded.stdout)\(seeded.stderr)")
        let lines = seeded.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count > 2)
        #expect(!lines[0].contains("every host"))
        #expect(lines[1].contains(" DST=10.0.3.121 PROTO=TCP "))
        #expect(lines[1].contains(" DPT=22 "))
        #expect(!lines[2].hasPrefix("on the host"))
        // --every-host and --host together are a usage error.
        let both = try weir(["verify", "open.rules", "nossh-uplink.rules", "--every-host", "--host", "elsewhere.weir"], in: directory)
        #expect(both.status == 64)
    }

    @Test("--every-host proves a policy's translation for every possible host")
    func everyHostTranslation() throws {
        let run = try weir(["verify", "Policies/docker-default.weir", "--every-host"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.hasPrefix("equivalent: Policies/docker-default.weir (iptables) ≡ Policies/docker-default.weir (batch) ("))
        #expect(run.stdout.hasSuffix(" on every host\n"))
    }

    @Test("without --host, the first input that is a policy gives the host")
    func hostFromPolicyInput() throws {
        // docker-default.weir's own iptables output plus a rule dropping SSH to 10.0.3.121,
        // its uplink's address. On that policy's host TCP port 22 to 10.0.3.121 is delivered
        // (INPUT's policy is ACCEPT) under the policy and dropped under the dump, and that is the
        // only difference; on a loopback-only host the two would be equivalent, because nothing
        // would route to 10.0.3.121. So a counterexample, and this one, shows the policy's host.
        let generated = try String(contentsOfFile: Repository.root + "/Generated/docker-default.iptables", encoding: .utf8)
        let filterEnd = try #require(generated.range(of: "COMMIT\n"))
        let dump = generated.replacingCharacters(in: filterEnd, with: "-A INPUT -d 10.0.3.121/32 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n")
        let directory = try scratch(["nossh-uplink.rules": dump])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["verify", Repository.policy("docker-default.weir"), "nossh-uplink.rules", "--format", "json"], in: directory)
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let object = try json(run.stdout)
        let packet = try #require(object["counterexample"] as? [String: Any])
        #expect(packet["dst"] as? String == "10.0.3.121")
        #expect(packet["dport"] as? Int == 22)
        let left = try #require(object["left"] as? [String: Any]), right = try #require(object["right"] as? [String: Any])
        #expect(left["fate"] as? String == "delivered locally")
        #expect(right["fate"] as? String == "dropped")
    }

    @Test("bad input exits 2 with a located error and prints nothing on standard output")
    func badInput() throws {
        let directory = try scratch(["open.rules": Self.open,
                                     "bad.rules": "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --frobnicate 1 -j DROP\nCOMMIT\n",
                                     "bad.weir": "docker classic\nnetwork bridge {\n    bridge docker0\n    subnet 172.17.0.0/33\n}\n"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dump = try weir(["verify", "open.rules", "bad.rules"], in: directory)
        #expect(dump.status == 2)
        #expect(dump.stdout.isEmpty)
        #expect(dump.stderr.hasPrefix("bad.rules:3:17: error: unknown option '--frobnicate'"), "\(dump.stderr)")
        let policy = try weir(["verify", "bad.weir"], in: directory)
        #expect(policy.status == 2)
        #expect(policy.stdout.isEmpty)
        #expect(policy.stderr.hasPrefix("bad.weir:4:"), "\(policy.stderr)")
        #expect(policy.stderr.contains(": error: "))
        let host = try weir(["verify", "open.rules", "open.rules", "--host", "bad.weir"], in: directory)
        #expect(host.status == 2)
        #expect(host.stderr.hasPrefix("bad.weir:4:"), "\(host.stderr)")
        let missing = try weir(["verify", "open.rules", "missing.rules"], in: directory)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such file 'missing.rules'"))
    }

    @Test("one argument that is not a policy is a usage error")
    func oneDumpIsUsage() throws {
        let directory = try scratch(["open.rules": Self.open])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["verify", "open.rules"], in: directory)
        #expect(run.status == 64)
        #expect(run.stderr.contains("must be a policy"))
    }

    @Test("compile --verify writes the output and prints the proof line on standard error")
    func compileVerify() throws {
        let run = try weir(["compile", "Policies/docker-default.weir", "--verify"])
        #expect(run.status == 0, "\(run.stderr)")
        let golden = try #require(FileManager.default.contents(atPath: Repository.root + "/Generated/docker-default.iptables"))
        #expect(run.stdout == String(decoding: golden, as: UTF8.self))
        #expect(try run.stderr.wholeMatch(of: Regex(#"equivalent: Policies/docker-default\.weir \(iptables\) ≡ Policies/docker-default\.weir \(batch\) \([0-9]+ classes, [0-9.]+ s\)\n"#)) != nil,
                "\(run.stderr)")
    }

    @Test("compile --check --verify proves every policy, one line each, then checks Generated/")
    func checkVerify() throws {
        let run = try weir(["compile", "--check", "--verify"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "Generated/ is up to date\n")
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == Self.policies.count, "\(run.stderr)")
        for policy in Self.policies {
            #expect(lines.contains { $0.hasPrefix("equivalent: Policies/\(policy) (iptables) ≡ Policies/\(policy) (batch) (") }, "\(policy)")
        }
    }

    @Test("compile --update --verify writes every output after the proofs")
    func updateVerify() throws {
        let directory = try scratch([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["compile", "--update", "--verify", "--generated", directory])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").filter { $0.hasPrefix("equivalent: ") }.count == Self.policies.count)
        #expect(FileManager.default.fileExists(atPath: directory + "/docker-default.iptables"))
        let check = try weir(["compile", "--check", "--generated", directory])
        #expect(check.status == 0, "\(check.stderr)")
    }
}

/// The one-policy proof reads each side back from its own artifact: a change to the iptables
/// text alone, or to the batch bytes alone (the model and the nft program left as compiled),
/// must make the proof fail on a packet the change affects.
@Suite("weir verify: translation validation reads each artifact")
struct VerifyTranslationTests {
    static let policy = Repository.policy("docker-default.weir")

    static func compiled() throws -> (CompileResult, HostModel) {
        let result = Compiler.compile(path: policy)
        #expect(!result.hasErrors, "\(result.diagnostics)")
        guard case .success(let host) = RulesetSource.host(ofPolicy: policy) else {
            Issue.record("no host for \(policy)")
            throw CancellationError()
        }
        return (result, host)
    }

    static func inputs(_ result: CompileResult, _ host: HostModel) throws -> VerifyInputs {
        switch VerifyInputs.translation(of: result, policy: policy, host: host) {
        case .success(let inputs): return inputs
        case .failure(let error):
            Issue.record("\(error)")
            throw CancellationError()
        }
    }

    @Test("the compiled artifacts are equivalent, and the labels name both backends")
    func asCompiled() throws {
        let (result, host) = try Self.compiled()
        let inputs = try Self.inputs(result, host)
        #expect(inputs.left.label == Self.policy + " (iptables)")
        #expect(inputs.right.label == Self.policy + " (batch)")
        #expect(inputs.host != nil)
        #expect(inputs.check().equivalent)
    }

    @Test("an iptables text that DNATs port 10080 to another container is caught on port 10080")
    func tamperedIptables() throws {
        var (result, host) = try Self.compiled()
        let index = try #require(result.artifacts.firstIndex { $0.kind == .iptables })
        let original = result.artifacts[index].contents
        result.artifacts[index].contents = original.replacingOccurrences(of: "--to-destination 172.17.0.2:80", with: "--to-destination 172.17.0.3:80")
        #expect(result.artifacts[index].contents != original)
        let inputs = try Self.inputs(result, host)
        let proof = inputs.check()
        let counterexample = try #require(proof.counterexample, "the changed DNAT was not noticed")
        #expect(counterexample.packet.transport == .tcp)
        #expect(counterexample.packet.destinationPort == 10080)
        // As compiled (the batch), the connection reaches c1 at 172.17.0.2:80.
        #expect(counterexample.right.packet?.destination == IPAddress("172.17.0.2"))
        #expect(counterexample.left != counterexample.right)
        #expect(VerifyReport.simulatorDisagreement(inputs, counterexample) == nil)
    }

    @Test("a batch whose filter INPUT policy is drop is caught on a packet for the host")
    func tamperedBatch() throws {
        var (result, host) = try Self.compiled()
        var program = try #require(result.nftProgram)
        let table = try #require(program.tables.firstIndex { $0.family == .ipv4 && $0.name == "weir-filter" })
        let chain = try #require(program.tables[table].chains.firstIndex { $0.name == "INPUT" })
        #expect(program.tables[table].chains[chain].base?.policy == .accept)
        program.tables[table].chains[chain].base?.policy = .drop
        // Only the bytes change; `nftProgram` and `ruleset` stay as compiled.
        result.batch = try NftBatch.replacing(program)
        let inputs = try Self.inputs(result, host)
        let proof = inputs.check()
        let counterexample = try #require(proof.counterexample, "the changed INPUT policy was not noticed")
        #expect(counterexample.left.fate == .deliveredLocally)
        #expect(counterexample.right.fate == .dropped)
        #expect(VerifyReport.simulatorDisagreement(inputs, counterexample) == nil)
    }
}
