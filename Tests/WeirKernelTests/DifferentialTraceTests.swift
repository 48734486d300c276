import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel
import WeirSimulator

// The rule path of sampled flows, kernel against simulator, for the nftables backend.
//
// In the lab's host namespace (after `weir apply` of the policy's batch) a Weir-owned table is
// added with `nft -f`:
//
//     table ip weir-trace {
//         chain prerouting { type filter hook prerouting priority -350; policy accept; … meta nftrace set 1 }
//         chain output     { type filter hook output priority -350; policy accept; … meta nftrace set 1 }
//     }
//
// whose rules set nftrace only for the probes (TCP/UDP source or destination port 41000–41999:
// the flows bind such source ports, and their replies go to them) and for a sentinel datagram to
// 127.0.0.1:9. `ip netns exec HOST nft monitor trace` runs as a child process; the sentinel is
// sent until it shows up (the monitor is listening), then the flows one after another, then the
// sentinel again (everything before it has been printed), and the monitor is killed.
//
// Mapping of nft's trace onto the simulator's steps:
// - `trace id ID ip weir-T CHAIN rule TEXT (verdict V)` is a rule that matched: table `weir-T` is
//   the model's `T`, family `ip` is IPv4; the simulator's step names the rule by table, chain and
//   1-based position, and its target gives the verdict nft prints: accept, drop (REJECT prints
//   `drop` too), return, `jump X`, `goto X`, `continue` (LOG and other non-terminal targets), and
//   `accept` for DNAT, SNAT and MASQUERADE. Rule handles and rule text are not compared.
// - `… CHAIN policy V` is a base chain's policy: the simulator's `policy` step past the last rule.
// - The simulator, like iptables' TRACE, calls an unconditional ACCEPT/DROP/RETURN rule `policy` or
//   `return` (`filter:DOCKER-USER:return:1` for `-A DOCKER-USER -j RETURN`); nft prints it as the
//   rule it is (`rule return (verdict return)`): both become (rule, return).
// - Falling off the end of a user chain (the simulator's `return` step numbered past the last
//   rule) prints nothing on this kernel (6.18 with nft 1.0.6): it is left out, and so would be a
//   `… CHAIN verdict V` line (nft's form of the kernel's NFT_TRACETYPE_RETURN) should one appear.
// - `packet:` lines (nft prints one at every base chain a packet enters) and the weir-trace
//   table's own lines are skipped.
// - Trace ids identify an skb, not a packet: a connection's SYN and FIN were seen with one id. A
//   packet's trace is therefore cut at every weir-trace `packet:` line; a packet for the host's
//   own address shows up twice (output, then prerouting again with `iif "lo"`, under a new trace
//   id and already with POSTROUTING's MASQUERADE applied to its source), and those two pieces are
//   joined when their ports agree. Other lines go to the latest piece of their trace id: a REJECT with
//   tcp-reset sends (and traces) its RST while the rejecting rule is still running, so that
//   rule's line is printed after the RST's packet line. A flow's packet is the first piece whose
//   packet line carries its source port as `sport`; its reply the first with it as `dport`.
// Compared per flow: the sequence of (family, table, chain, rule/policy, verdict) of the first
// packet, and of its reply when the simulator predicts one; the flow's outcome is compared as in
// DifferentialTests too.
//
// Other quirks met on the way: nat chains print nothing for packets of a known connection (nat sees only the
// first packet), nor for a packet that comes back in on loopback; the monitor, spawned from a
// thread with most signals blocked, inherits that mask and ignores SIGTERM, so it is stopped with
// SIGKILL.

/// One step of a rule path, as both sides are reduced to.
struct PathStep: Equatable, CustomStringConvertible {
    var family: String
    var table: String
    var chain: String
    var kind: String
    var verdict: String

    var description: String { "\(family) \(table) \(chain) \(kind) → \(verdict)" }
}

/// `nft monitor trace` output, parsed.
enum NftTrace {
    struct Line {
        var id: String
        var family: String
        var table: String
        var chain: String
        /// `packet`, `rule`, `policy` or `verdict`.
        var kind: String
        /// The rest: the packet dump, or the verdict.
        var text: String
    }

    static func parse(_ line: Substring) -> Line? {
        let words = line.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: true)
        guard words.count >= 7, words[0] == "trace", words[1] == "id" else { return nil }
        let rest = words[6]
        let (kind, text): (String, String)
        if rest.hasPrefix("packet: ") {
            (kind, text) = ("packet", String(rest.dropFirst(8)))
        } else if rest.hasPrefix("rule ") {
            guard let open = rest.range(of: " (verdict ", options: .backwards), rest.hasSuffix(")") else { return nil }
            (kind, text) = ("rule", String(rest[open.upperBound...].dropLast()))
        } else if rest.hasPrefix("policy ") {
            (kind, text) = ("policy", rest.dropFirst(7).trimmingCharacters(in: .whitespaces))
        } else if rest.hasPrefix("verdict ") {
            (kind, text) = ("verdict", rest.dropFirst(8).trimmingCharacters(in: .whitespaces))
        } else {
            return nil
        }
        return Line(id: String(words[2]), family: String(words[3]), table: String(words[4]), chain: String(words[5]), kind: kind, text: text)
    }

    /// One packet's trace.
    struct Piece {
        var lines: [Line]
        var packet: Line { lines[0] }
        /// The trace ids of its packet lines (one, or two when it came back in on loopback).
        var ids: Set<String> { Set(lines.filter { $0.table == "weir-trace" && $0.kind == "packet" }.map(\.id)) }

        func port(_ name: String) -> UInt16? {
            let words = packet.text.split(separator: " ")
            guard let index = words.firstIndex(of: Substring(name)), index + 1 < words.count else { return nil }
            return UInt16(words[index + 1])
        }

        var startsInOutput: Bool { packet.chain == "output" }
        var cameInOnLoopback: Bool { packet.chain == "prerouting" && packet.text.hasPrefix("iif \"lo\" ") }

        var steps: [PathStep] {
            lines.compactMap { line in
                guard line.table != "weir-trace", line.kind == "rule" || line.kind == "policy" else { return nil }
                let table = line.table.hasPrefix("weir-") ? String(line.table.dropFirst(5)) : line.table
                return PathStep(family: line.family, table: table, chain: line.chain, kind: line.kind, verdict: line.text)
            }
        }
    }

    /// Cuts the output into packets (see the file's comment).
    static func pieces(_ output: String) -> [Piece] {
        var pieces: [Piece] = []
        for raw in output.split(separator: "\n") {
            guard let line = parse(raw) else { continue }
            if line.table == "weir-trace", line.kind == "packet" {
                let piece = Piece(lines: [line])
                if let last = pieces.last, last.startsInOutput, piece.cameInOnLoopback,
                   last.port("sport") == piece.port("sport"), last.port("dport") == piece.port("dport") {
                    pieces[pieces.count - 1].lines.append(line)
                } else {
                    pieces.append(piece)
                }
            } else if let index = pieces.lastIndex(where: { $0.ids.contains(line.id) }) ?? (pieces.isEmpty ? nil : pieces.count - 1) {
                // By trace id: a REJECT's RST is sent (and traced) while the rule that sends it is
                // still running, so the rule's own line comes after the RST's packet line.
                pieces[index].lines.append(line)
            }
        }
        return pieces
    }
}

extension DiffHost {
    /// The simulator's steps of a traversal in the same form.
    func path(_ traversal: Traversal, family: Family) -> [PathStep] {
        let nftFamily = family == .ipv4 ? "ip" : "ip6"
        return traversal.steps.compactMap { step in
            guard let chain = ruleset.table(family, step.table)?.chain(named: step.chain) else {
                return PathStep(family: nftFamily, table: step.table, chain: step.chain, kind: "?", verdict: "? (\(step.location))")
            }
            if step.number <= chain.rules.count {
                return PathStep(family: nftFamily, table: step.table, chain: step.chain, kind: "rule",
                                verdict: Self.verdict(chain.rules[step.number - 1].target))
            }
            guard step.kind == .policy, let policy = chain.policy else { return nil }  // implicit return: no nft line
            return PathStep(family: nftFamily, table: step.table, chain: step.chain, kind: "policy", verdict: policy.rawValue.lowercased())
        }
    }

    /// The verdict nft prints for a rule with this target.
    static func verdict(_ target: Target) -> String {
        switch target {
        case .accept, .dnat, .snat, .masquerade: "accept"
        case .drop, .reject: "drop"
        case .return: "return"
        case .jump(let chain): "jump \(chain)"
        case .goto(let chain): "goto \(chain)"
        case .log, .checksumFill: "continue"
        }
    }
}

/// `nft monitor trace` inside a namespace, its output collected by a thread of its own.
final class NftTraceMonitor: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var text = ""
    private let done = DispatchSemaphore(value: 0)

    init(namespace: String) throws {
        guard let ip = CommandRunner.locate("ip"), let nft = CommandRunner.locate("nft") else {
            throw CommandError(description: "ip or nft is not installed")
        }
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = ["netns", "exec", namespace, nft, "monitor", "trace"]
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                lock.withLock { text += String(decoding: data, as: UTF8.self) }
            }
            done.signal()
        }
        thread.start()
    }

    var output: String { lock.withLock { text } }

    /// Stops the monitor and waits (at most 2 s) for its output. SIGKILL, to the process this
    /// started: a child spawned from one of the tests' threads inherits their blocked signal mask,
    /// SIGTERM included, so `terminate()` would leave it running.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(2)
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        _ = done.wait(timeout: .now() + 2)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct DifferentialTraceTests {
    /// A sampled flow: from a node (by name) to an address and port.
    struct Sample: Sendable, CustomTestStringConvertible {
        var source: String
        var destination: String
        var port: UInt16
        var transport: TransportProtocol = .tcp
        var testDescription: String { "\(transport) \(source) → \(destination):\(port)" }
    }

    static let samples: [String: [Sample]] = [
        "docker-default.weir": [
            Sample(source: "peer0", destination: "10.0.3.121", port: 10080),                 // published port from outside
            Sample(source: "peer0", destination: "10.0.3.121", port: 10081),                 // unpublished: the host's own
            Sample(source: "c1", destination: "10.0.3.122", port: 8080),                     // container → outside (MASQUERADE)
            Sample(source: "host", destination: "10.0.3.121", port: 10080),                  // host-local to the published port
            Sample(source: "c1", destination: "172.17.0.3", port: 8080),                     // container → container (bridged)
            Sample(source: "peer0", destination: "172.17.0.3", port: 80),                    // straight to c2: FORWARD policy drop
            Sample(source: "peer0", destination: "10.0.3.121", port: 10080, transport: .udp), // published for TCP only
        ],
        "user-rules.weir": [
            Sample(source: "peer0", destination: "10.0.3.121", port: 80),                    // DOCKER-USER accepts the admins
            Sample(source: "peer0", destination: "172.17.0.3", port: 53, transport: .udp),   // DOCKER-USER reject
            Sample(source: "peer0", destination: "10.0.3.121", port: 5000),                  // INPUT reject with tcp-reset
            Sample(source: "peer0", destination: "10.0.3.121", port: 22),                    // INPUT accepts ssh from admins
            Sample(source: "web", destination: "10.0.3.122", port: 8080),                    // SNAT to 10.0.3.121
            Sample(source: "host", destination: "10.0.3.121", port: 80),                     // host-local to a published port
        ],
        "classic-s7-no-userland-proxy.weir": [
            Sample(source: "c1", destination: "10.0.3.121", port: 10080),                    // hairpin: DNAT back to itself
            Sample(source: "host", destination: "127.0.0.1", port: 10080),                   // loopback DNAT (route_localnet)
            Sample(source: "host", destination: "172.17.0.1", port: 80),                     // MASQUERADE out of lo
        ],
    ]

    @Test("nft monitor trace of sampled flows follows the simulator's rule path (nftables backend)",
          arguments: ["docker-default.weir", "user-rules.weir", "classic-s7-no-userland-proxy.weir"])
    func rulePathMatchesTrace(_ policy: String) async throws {
        guard KernelRequirement.check() != nil else { return }
        let host = try DiffHost.load(policy)
        let samples = try #require(Self.samples[policy])
        var flows: [DiffFlow] = []
        for (index, sample) in samples.enumerated() {
            let source = try #require(host.nodes.firstIndex { $0.name == sample.source }, "\(sample)")
            let address = try #require(IPAddress(sample.destination))
            let departure = try #require(host.departure(from: source, to: address), "\(sample): no route")
            flows.append(DiffFlow(index: index, source: source, sourceName: sample.source, origin: departure.origin,
                                  sourceEndpoint: SocketEndpoint(departure.address, 41_000 + UInt16(index)),
                                  destination: SocketEndpoint(address, sample.port),
                                  destinationName: host.owner(of: address).map { host.nodes[$0].name } ?? "nobody",
                                  transport: sample.transport, category: "sampled"))
        }
        let sampled = flows
        let report = await DifferentialThreads.offload { Self.run(host, sampled) }
        DifferentialOutput.emit(report.text)
        if let error = report.error { Issue.record(Comment(rawValue: error)) }
        #expect(report.compared >= flows.count, "\(policy): \(report.compared) paths compared")
        #expect(report.mismatches == 0, "\(policy): \(report.mismatches) rule paths differ; see the output")
    }

    struct Report: Sendable {
        var text = ""
        var compared = 0
        var mismatches = 0
        var error: String? = nil
    }

    static let traceTable = """
        table ip weir-trace {
            chain prerouting {
                type filter hook prerouting priority -350; policy accept;
                meta l4proto { tcp, udp } th sport 41000-41999 meta nftrace set 1
                meta l4proto { tcp, udp } th dport 41000-41999 meta nftrace set 1
                udp dport 9 meta nftrace set 1
            }
            chain output {
                type filter hook output priority -350; policy accept;
                meta l4proto { tcp, udp } th sport 41000-41999 meta nftrace set 1
                meta l4proto { tcp, udp } th dport 41000-41999 meta nftrace set 1
                udp dport 9 meta nftrace set 1
            }
        }

        """

    static func run(_ host: DiffHost, _ flows: [DiffFlow]) -> Report {
        var report = Report()
        let compiled = host.compiled
        let lab: Lab
        do {
            lab = try Lab.up(host.topology) { namespace in
                try DifferentialBackend.nftables.apply(compiled, namespace)
                try disableICMPRateLimit(in: namespace)
            }
        } catch {
            report.error = "\(host.name): the lab cannot be built: \(error)"
            return report
        }
        defer { try? lab.down() }
        let namespaces = host.nodes.map { node in
            switch node.kind {
            case .host: lab.hostNamespace
            case .peer(let index): lab.peers[index].namespace
            case .container(let index): lab.containers[index].namespace
            }
        }
        var random = SplitMix64(seed: 1)
        let ports = Array(Set(host.ports(&random).all + flows.map(\.destination.port))).sorted()
        let monitor: NftTraceMonitor
        let servers: DiffServers
        do {
            servers = try DiffServers.start(lab, nodes: host.nodes, namespaces: namespaces, ports: ports)
            guard let ip = CommandRunner.locate("ip"), let nft = CommandRunner.locate("nft") else {
                throw CommandError(description: "ip or nft is not installed")
            }
            let loaded = try CommandRunner.run(ip, ["netns", "exec", lab.hostNamespace, nft, "-f", "-"], stdin: traceTable)
            guard loaded.succeeded else { throw CommandError(description: "nft -f of the trace table failed: \(loaded)") }
            monitor = try NftTraceMonitor(namespace: lab.hostNamespace)
        } catch {
            report.error = "\(host.name): \(error)"
            return report
        }
        defer { servers.stopAll() }

        // The sentinel: sent until the monitor prints it.
        func sentinel(_ port: UInt16) -> Bool {
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                _ = DifferentialClient.probe(from: lab.hostNamespace, bind: port, to: SocketEndpoint(IPAddress("127.0.0.1")!, 9),
                                             transport: .udp, timeout: .milliseconds(50), payload: "sentinel\n")
                if monitor.output.contains("udp sport \(port) udp dport 9") { return true }
            }
            return false
        }
        guard sentinel(40_998) else {
            monitor.stop()
            report.error = "\(host.name): nft monitor trace printed nothing for the sentinel in 5 s: \(monitor.output)"
            return report
        }
        var results: [DiffClientResult] = []
        let predictions = flows.map(host.predict)
        for (flow, prediction) in zip(flows, predictions) {
            results.append(DifferentialClient.probe(from: namespaces[flow.source], bind: flow.sourceEndpoint.port, to: flow.destination,
                                                    transport: flow.transport,
                                                    timeout: prediction.expected.isDeliveredAndAnswered ? .seconds(3) : .milliseconds(500),
                                                    payload: flow.payload))
        }
        let flushed = sentinel(40_999)
        monitor.stop()
        let output = monitor.output
        if !flushed { report.error = "\(host.name): the closing sentinel never showed up" }
        let pieces = NftTrace.pieces(output)

        report.text = "DifferentialTrace: \(host.name) (nftables)\n"
        if DifferentialRun.verbose { report.text += "  nft monitor trace printed:\n" + output.indented + "\n" }
        for (index, flow) in flows.enumerated() {
            let prediction = predictions[index]
            let observed = servers.observe(flow, results[index], nodes: host.nodes)
            let port = flow.sourceEndpoint.port
            var checks: [(String, Traversal, NftTrace.Piece?)] = [("packet", prediction.forward, pieces.first { $0.port("sport") == port })]
            if let reply = prediction.reply { checks.append(("reply", reply, pieces.first { $0.port("dport") == port })) }
            report.text += "  \(flow)\n    simulator: \(prediction.expected)\n    kernel:    \(observed)\n"
            if observed != prediction.expected {
                report.text += "    ✗ outcomes differ\n"
                report.mismatches += 1
            }
            for (name, traversal, piece) in checks {
                report.compared += 1
                let simulated = host.path(traversal, family: flow.packet.family)
                guard let piece else {
                    report.mismatches += 1
                    report.text += "    ✗ \(name): no trace of it in nft monitor trace\n" + TraceFormat.text(traversal).indented + "\n"
                    continue
                }
                let traced = piece.steps
                if traced == simulated {
                    report.text += "    ✓ \(name): " + traced.map(\.description).joined(separator: "; ") + "\n"
                } else {
                    report.mismatches += 1
                    report.text += "    ✗ \(name) differs\n      nft:\n"
                        + traced.map { "        \($0)\n" }.joined()
                        + "      simulator:\n" + simulated.map { "        \($0)\n" }.joined()
                        + "      simulator trace:\n" + TraceFormat.text(traversal).indented.indented + "\n"
                        + "      nft monitor trace:\n"
                        + piece.lines.map { "        trace id \($0.id) \($0.family) \($0.table) \($0.chain) \($0.kind) \($0.text)\n" }.joined()
                }
            }
        }
        return report
    }
}
