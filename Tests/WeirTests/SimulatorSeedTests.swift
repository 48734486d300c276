import Foundation
import Testing
import WeirModel
import WeirSimulator

/// The seed article's TRACE logs reproduced line for line, the trace output formats, and
/// `weir trace` end to end.
@Suite struct SimulatorSeedTests {
    typealias F = SimulatorFixtures

    /// One line of the article's log: `table:chain:kind:N IN=… OUT=… MAC=… SRC=… DST=…`.
    struct LogLine: Equatable, CustomStringConvertible {
        var location: String
        var input: String
        var output: String
        var source: String
        var destination: String
        var description: String { "\(location) IN=\(input) OUT=\(output) SRC=\(source) DST=\(destination)" }

        init(location: String, input: String, output: String, source: String, destination: String) {
            (self.location, self.input, self.output, self.source, self.destination) = (location, input, output, source, destination)
        }

        init?(_ line: Substring) {
            let words = line.split(separator: " ")
            guard let first = words.first, first.contains(":") else { return nil }
            func field(_ name: String) -> String {
                words.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? ""
            }
            self.init(location: String(first), input: field("IN"), output: field("OUT"), source: field("SRC"), destination: field("DST"))
        }

        init(_ step: TraceStep) {
            self.init(location: step.location, input: step.input ?? "", output: step.output ?? "",
                      source: "\(step.packet.source)", destination: "\(step.packet.destination)")
        }
    }

    /// The two ```text blocks of the article's TRACE section (lines 327–349): external access, then local access.
    static func articleLogs() throws -> [[LogLine]] {
        let article = try Repository.sharedFile("seed/000_60377b02e99debbc.txt")
        let lines = article.split(separator: "\n", omittingEmptySubsequences: false)
        let section = lines[299..<min(350, lines.count)]
        var blocks: [[LogLine]] = []
        var current: [LogLine]? = nil
        for line in section {
            if line.hasPrefix("```text") { current = []; continue }
            if line.hasPrefix("```"), let block = current { blocks.append(block); current = nil; continue }
            if current != nil, let parsed = LogLine(line) { current!.append(parsed) }
        }
        return blocks
    }

    /// The simulated steps of the tables the article's rules live in (the article's own TRACE
    /// rules are in raw, which the seed policy does not have).
    func simulated(_ traversal: Traversal) -> [LogLine] {
        traversal.steps.filter { ["nat", "filter"].contains($0.table) }.map(LogLine.init)
    }

    /// The article printed each log prefix padded to a column; the one prefix longer than the
    /// column, `filter:DOCKER-ISOLATION-STAGE-1:return:2` (40 characters), lost its `:return:2` to
    /// that formatting and reads `filter:DOCKER-ISOLATION-STAGE-1 IN=…`. The kernel always prints
    /// `table:chain:type:N`; here, the unconditional `-j RETURN` (rule 2) of the user chain.
    static let truncatedByColumnFormatting = ["filter:DOCKER-ISOLATION-STAGE-1": "filter:DOCKER-ISOLATION-STAGE-1:return:2"]

    @Test("the article's two logs: external access and local access, line for line (nat and filter)")
    func articleLogsReproduced() throws {
        let logs = try Self.articleLogs()
        try #require(logs.count == 2, "the TRACE section has two logs")
        var (external, local) = (logs[0], logs[1].filter { !$0.location.hasPrefix("raw:") })
        #expect(external.count == 9 && local.count == 4)
        var repaired = 0
        for i in external.indices {
            if let full = Self.truncatedByColumnFormatting[external[i].location] {
                external[i].location = full
                repaired += 1
            }
        }
        #expect(repaired == 1, "exactly one article line lost its type and number")
        #expect(external.allSatisfy { $0.location.split(separator: ":").count == 4 })

        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        // weir trace … --in enp0s8 --src 10.0.3.122 --dst 10.0.3.121 --proto tcp --dport 10080
        let fromOutside = simulator.simulate(F.packet("10.0.3.122", "10.0.3.121", dport: 10080), from: .interface("enp0s8"))
        #expect(simulated(fromOutside) == external)
        #expect(fromOutside.outcome == .forwarded("docker0"))
        // weir trace … --local --src 172.17.0.1 --dst 172.17.0.1 --proto tcp --dport 10080
        let fromHost = simulator.simulate(F.packet("172.17.0.1", "172.17.0.1", dport: 10080), from: .local)
        #expect(simulated(fromHost) == local)
        #expect(fromHost.outcome == .sent("docker0"))
        #expect(fromHost.packet == F.packet("172.17.0.1", "172.17.0.2", dport: 80))
    }

    @Test("the article's logs, written out (so the expectation does not depend only on parsing the article)")
    func articleLogsLiteral() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let t = simulator.simulate(F.packet("10.0.3.122", "10.0.3.121", dport: 10080), from: .interface("enp0s8"))
        #expect(t.steps.map { "\(LogLine($0))" } == [
            "nat:PREROUTING:rule:1 IN=enp0s8 OUT= SRC=10.0.3.122 DST=10.0.3.121",
            "nat:DOCKER:rule:2 IN=enp0s8 OUT= SRC=10.0.3.122 DST=10.0.3.121",
            "filter:FORWARD:rule:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "filter:DOCKER-USER:return:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "filter:FORWARD:rule:2 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "filter:FORWARD:rule:4 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "filter:DOCKER:rule:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
            "nat:POSTROUTING:policy:3 IN= OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2",
        ])
        let l = simulator.simulate(F.packet("172.17.0.1", "172.17.0.1", dport: 10080), from: .local)
        #expect(l.steps.map { "\(LogLine($0))" } == [
            "nat:OUTPUT:rule:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1",
            "nat:DOCKER:rule:2 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1",
            "filter:OUTPUT:policy:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.2",
            "nat:POSTROUTING:policy:3 IN= OUT=docker0 SRC=172.17.0.1 DST=172.17.0.2",
        ])
    }

    // MARK: Formats

    @Test("TraceFormat.text: one kernel-style line per step, then the outcome with the final packet")
    func textFormat() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let t = simulator.simulate(F.packet("172.17.0.1", "172.17.0.1", dport: 10080), from: .local)
        #expect(TraceFormat.text(t) == """
            nat:OUTPUT:rule:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1 PROTO=TCP SPT=40000 DPT=10080
            nat:DOCKER:rule:2 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1 PROTO=TCP SPT=40000 DPT=10080
            filter:OUTPUT:policy:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
            nat:POSTROUTING:policy:3 IN= OUT=docker0 SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
            sent out docker0: SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80

            """)
        let dropped = simulator.simulate(F.packet("10.0.3.122", "172.17.0.3", dport: 22), from: .interface("enp0s8"))
        #expect(TraceFormat.text(dropped).hasSuffix("filter:FORWARD:policy:7 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.3 PROTO=TCP SPT=40000 DPT=22\ndropped at filter:FORWARD:policy:7\n"))
    }

    func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("TraceFormat.json: steps with table, chain, kind, number, in, out and the packet; the outcome; the final packet")
    func jsonFormat() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let t = simulator.simulate(F.packet("10.0.3.122", "10.0.3.121", dport: 10080), from: .interface("enp0s8"))
        let json = TraceFormat.json(t)
        #expect(!json.contains("\n"), "one line")
        let root = try object(json)
        #expect(Set(root.keys) == ["steps", "outcome", "packet"])
        let steps = try #require(root["steps"] as? [[String: Any]])
        #expect(steps.count == t.steps.count)
        let first = try #require(steps.first)
        #expect(Set(first.keys) == ["table", "chain", "kind", "number", "in", "out", "packet"])
        #expect(first["table"] as? String == "nat" && first["chain"] as? String == "PREROUTING")
        #expect(first["kind"] as? String == "rule" && first["number"] as? Int == 1)
        #expect(first["in"] as? String == "enp0s8" && first["out"] as? String == "")
        let packet = try #require(first["packet"] as? [String: Any])
        #expect(Set(packet.keys) == ["src", "dst", "proto", "state", "sport", "dport"])
        #expect(packet["src"] as? String == "10.0.3.122" && packet["dst"] as? String == "10.0.3.121")
        #expect(packet["proto"] as? String == "tcp" && packet["state"] as? String == "new")
        #expect(packet["sport"] as? Int == 40000 && packet["dport"] as? Int == 10080)
        let kinds = steps.compactMap { $0["kind"] as? String }
        #expect(kinds == t.steps.map(\.kind.rawValue))
        #expect(kinds.contains("return") && kinds.contains("policy"))
        #expect(root["outcome"] as? [String: String] == ["verdict": "forwarded", "interface": "docker0"])
        let final = try #require(root["packet"] as? [String: Any])
        #expect(final["dst"] as? String == "172.17.0.2" && final["dport"] as? Int == 80)

        let dropped = simulator.simulate(F.packet("10.0.3.122", "172.17.0.3", .icmp, sport: 0, dport: 0), from: .interface("enp0s8"))
        let droppedRoot = try object(TraceFormat.json(dropped))
        #expect(droppedRoot["outcome"] as? [String: String] == ["verdict": "dropped", "at": "filter:FORWARD:policy:7"])
        let icmp = try #require(droppedRoot["packet"] as? [String: Any])
        #expect(Set(icmp.keys) == ["src", "dst", "proto", "state"], "no ports for ICMP")
        #expect(icmp["proto"] as? String == "icmp")

        let local = simulator.simulate(F.packet("10.0.3.121", "10.0.3.121", dport: 22), from: .local)
        #expect(try object(TraceFormat.json(local))["outcome"] as? [String: String] == ["verdict": "delivered"])
        let sent = simulator.simulate(F.packet("10.0.3.121", "8.8.8.8", .udp, dport: 53), from: .local)
        #expect(try object(TraceFormat.json(sent))["outcome"] as? [String: String] == ["verdict": "sent", "interface": "enp0s8"])
        let unroutable = Simulator(ruleset: ruleset, host: .empty).simulate(F.packet("10.0.3.121", "8.8.8.8"), from: .local)
        #expect(try object(TraceFormat.json(unroutable))["outcome"] as? [String: String] == ["verdict": "unroutable"])
    }
}

/// `weir trace` as users run it.
@Suite struct SimulatorCLITests {
    func weir(_ arguments: [String]) throws -> WeirBinary.Run { try WeirBinary.run(arguments) }

    static let external = ["--in", "enp0s8", "--src", "10.0.3.122", "--dst", "10.0.3.121", "--proto", "tcp", "--dport", "10080"]
    static let externalTrace = """
        nat:PREROUTING:rule:1 IN=enp0s8 OUT= SRC=10.0.3.122 DST=10.0.3.121 PROTO=TCP SPT=40000 DPT=10080
        nat:DOCKER:rule:2 IN=enp0s8 OUT= SRC=10.0.3.122 DST=10.0.3.121 PROTO=TCP SPT=40000 DPT=10080
        filter:FORWARD:rule:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        filter:DOCKER-USER:return:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        filter:FORWARD:rule:2 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        filter:FORWARD:rule:4 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        filter:DOCKER:rule:1 IN=enp0s8 OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        nat:POSTROUTING:policy:3 IN= OUT=docker0 SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
        forwarded out docker0: SRC=10.0.3.122 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80

        """

    @Test("weir trace POLICY --in enp0s8 …: the article's external access")
    func external() throws {
        let run = try weir(["trace", "Policies/docker-default.weir"] + Self.external)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.isEmpty)
        #expect(run.stdout == Self.externalTrace)
    }

    @Test("weir trace POLICY --local …: the article's local access")
    func local() throws {
        let run = try weir(["trace", "Policies/docker-default.weir", "--local", "--src", "172.17.0.1", "--dst", "172.17.0.1",
                            "--proto", "tcp", "--dport", "10080"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == """
            nat:OUTPUT:rule:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1 PROTO=TCP SPT=40000 DPT=10080
            nat:DOCKER:rule:2 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.1 PROTO=TCP SPT=40000 DPT=10080
            filter:OUTPUT:policy:1 IN= OUT=lo SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
            nat:POSTROUTING:policy:3 IN= OUT=docker0 SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80
            sent out docker0: SRC=172.17.0.1 DST=172.17.0.2 PROTO=TCP SPT=40000 DPT=80

            """)
    }

    @Test("weir trace of the iptables-save file and of the nft batch, with --host: the same trace")
    func otherSources() throws {
        let iptables = try weir(["trace", "Generated/docker-default.iptables", "--host", "Policies/docker-default.weir"] + Self.external)
        #expect(iptables.status == 0, "\(iptables.stderr)")
        #expect(iptables.stdout == Self.externalTrace)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weir-trace-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let compiled = try weir(["compile", "Policies/docker-default.weir", "--target", "batch", "-o", directory + "/default.batch"])
        #expect(compiled.status == 0, "\(compiled.stderr)")
        let batch = try weir(["trace", directory + "/default.batch", "--host", "Policies/docker-default.weir"] + Self.external)
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.stdout == Self.externalTrace)

        let hostless = try weir(["trace", "Generated/docker-default.iptables"] + Self.external)
        #expect(hostless.status == 0, "\(hostless.stderr)")
        #expect(hostless.stdout.hasSuffix("dropped: no route\n"), "without --host only loopback exists: \(hostless.stdout)")
    }

    @Test("weir trace --format json prints one JSON object")
    func json() throws {
        let run = try weir(["trace", "Policies/docker-default.weir", "--format", "json"] + Self.external)
        #expect(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((object["steps"] as? [Any])?.count == 9)
        #expect(object["outcome"] as? [String: String] == ["verdict": "forwarded", "interface": "docker0"])
    }

    @Test("weir trace usage errors exit 64; a missing ruleset exits 1", arguments: [
        (["--in", "enp0s8", "--local", "--src", "10.0.3.122", "--dst", "10.0.3.121", "--proto", "tcp"], Int32(64), "exactly one of --in"),
        (["--src", "10.0.3.122", "--dst", "10.0.3.121", "--proto", "tcp"], 64, "exactly one of --in"),
        (["--local", "--src", "10.0.3.300", "--dst", "10.0.3.121", "--proto", "tcp"], 64, "must be IP addresses"),
        (["--local", "--src", "10.0.3.1", "--dst", "fd00::1", "--proto", "tcp"], 64, "different families"),
        (["--local", "--src", "10.0.3.1", "--dst", "10.0.3.121", "--proto", "bogus"], 64, "unknown --proto"),
        (["--local", "--src", "10.0.3.1", "--dst", "10.0.3.121", "--proto", "tcp", "--state", "weird"], 64, "unknown --state"),
    ])
    func usageErrors(_ arguments: [String], _ status: Int32, _ message: String) throws {
        let run = try weir(["trace", "Policies/docker-default.weir"] + arguments)
        #expect(run.status == status, "\(run.stderr)")
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("weir trace of a missing file exits 1 with its name")
    func missingFile() throws {
        let run = try weir(["trace", "no-such.weir"] + Self.external)
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("no-such.weir"), "\(run.stderr)")
    }
}
