import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel
import WeirSimulator

// Differential test: the simulator (`Simulator.simulate` / `Simulator.reply`) against the kernel.
//
// For every policy under `Policies/` the lab builds the policy's host (host namespace, bridges, a
// namespace per container, an external peer per uplink) and loads the compiled policy with each
// backend (iptables: `iptables-restore` + `ip6tables-restore`; nftables: `weir apply`'s batch).
// The same seeded flows run under both backends: from a random node (external peer, container,
// the host itself) to a random address of any node (container addresses, host interface
// addresses and bridge gateways, loopback for the host, peer addresses) and a published host
// port, a container port or an unpublished port, TCP or UDP. Every flow binds its own source port
// (20000 + its index), so it is a new connection with a 5-tuple of its own. Servers listen on
// every port of the run in every namespace (TCP on each family's wildcard address, UDP on each
// address), so any packet that arrives anywhere is seen, and answer `<namespace label> <peer>`.
//
// Seed: `DifferentialSeed.fallback`, or `WEIR_DIFF_SEED` (decimal or 0x…); printed at the start.
//
// Kernel observation (`DiffObservation`, from the client's socket and the servers' records):
// - delivered(receiver, source, destination, answered): a server in `receiver` recorded the flow
//   — TCP: it accepted the connection, i.e. the handshake completed, so the SYN went through AND
//   the SYN-ACK came back (the reply path worked); the client then read the answer line, which
//   names the receiver and the source it saw; `destination` is the accepted socket's own address
//   (after DNAT). UDP: the datagram with this flow's payload arrived at the server bound to
//   `destination`; `answered` says whether the server's answer reached the client.
// - refused: ECONNREFUSED and no server recorded it. With a listener on every port everywhere this
//   can only be a REJECT (tcp-reset, or an ICMP port unreachable) — never "no listener".
// - unreachable: EHOSTUNREACH/ENETUNREACH (an ICMP host/net unreachable or prohibited REJECT).
// - silent: the timeout passed (3 s when the simulator predicts an answer, else 1 s) and no
//   server recorded anything: a DROP, or for TCP a SYN whose SYN-ACK was dropped (the server
//   then never accepts, so a broken reply path and a dropped SYN look the same).
// - other: anything else (connected without an answer, an answer without a record, a local error).
//   The client's source address must also be the one the lab's routes predict.
//
// Simulator prediction (`DiffPrediction`): the flow's first packet, state NEW, from `.local` (host)
// or `.interface(device)` (the uplink for a peer, the bridge for a container), then
// - `.deliveredLocally` → the host namespace receives it;
// - `.forwarded(out)` / `.sent(out)` → the node cabled to `out` (the uplink's peer, or a container
//   with an endpoint on bridge `out`) that owns the packet's final destination; nobody owning it
//   there → silent;
// - `.dropped(at:)` → silent for DROP and policies; for REJECT the errno its type gives: tcp-reset
//   and port-unreachable (also the default) → refused, host/net unreachable or prohibited →
//   unreachable;
// - `.unroutable` → unreachable.
// A predicted delivery also simulates the answer with `Simulator.reply(to:)`: it is answered when
// the reply ends in the source node with the source and destination the client's connected socket
// accepts (the flow's destination → the client's address and port). TCP without such a reply is
// predicted silent; UDP is predicted delivered but unanswered.
//
// A flow agrees when prediction and observation are equal (receiver, both addresses and ports,
// answered, or the same failure). Each disagreement prints the flow, both sides, the simulator's
// trace (`TraceFormat.text`) of the packet and of its reply, and the client's raw result.

/// What the simulator predicts for a flow.
struct DiffPrediction: Sendable {
    var expected: DiffObservation
    var forward: Traversal
    var reply: Traversal?

    var trace: String {
        var text = "simulator, new connection:\n" + TraceFormat.text(forward).indented
        if let reply { text += "simulator, reply:\n" + TraceFormat.text(reply).indented }
        return text
    }
}

extension String {
    var indented: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "    " + $0 }.joined(separator: "\n")
    }
}

extension DiffHost {
    func predict(_ flow: DiffFlow) -> DiffPrediction {
        let forward = simulator.simulate(flow.packet, from: flow.origin)
        switch forward.outcome {
        case .dropped(let location):
            return DiffPrediction(expected: rejection(at: location, family: flow.packet.family), forward: forward)
        case .unroutable:
            return DiffPrediction(expected: .unreachable, forward: forward)
        case .deliveredLocally, .forwarded, .sent:
            break
        }
        guard let receiver = receiver(of: forward) else { return DiffPrediction(expected: .silent, forward: forward) }
        let reply = simulator.reply(to: forward)
        let answered = reply.map { reply in
            self.receiver(of: reply) == flow.source
                && SocketEndpoint(reply.packet.source, reply.packet.sourcePort) == flow.destination
                && SocketEndpoint(reply.packet.destination, reply.packet.destinationPort) == flow.sourceEndpoint
        } ?? false
        if flow.transport == .tcp, !answered { return DiffPrediction(expected: .silent, forward: forward, reply: reply) }
        return DiffPrediction(expected: .delivered(receiver: nodes[receiver].name,
                                                   source: SocketEndpoint(forward.packet.source, forward.packet.sourcePort),
                                                   destination: SocketEndpoint(forward.packet.destination, forward.packet.destinationPort),
                                                   answered: answered),
                              forward: forward, reply: reply)
    }

    /// What the client sees when the packet is dropped at `location` (`table:chain:kind:N`).
    func rejection(at location: String, family: Family) -> DiffObservation {
        let parts = location.split(separator: ":").map(String.init)
        guard parts.count == 4, let number = Int(parts[3]), let chain = ruleset.table(family, parts[0])?.chain(named: parts[1]),
              number >= 1, number <= chain.rules.count, case .reject(let type) = chain.rules[number - 1].target else {
            return .silent
        }
        switch type ?? "icmp-port-unreachable" {
        case "tcp-reset", "icmp-port-unreachable", "port-unreachable", "icmp6-port-unreachable": return .refused
        case "icmp-proto-unreachable": return .other("client: failed (Protocol not available)")
        default: return .unreachable
        }
    }
}

/// One lab: a policy under one backend.
struct DiffRunResult: Sendable {
    var policy: String
    var backend: String
    var flows = 0
    var agreed = 0
    /// Flows whose reply path was simulated and compared.
    var replies = 0
    /// What to print: each disagreement (and each agreement with `WEIR_DIFF_VERBOSE=1`).
    var lines: [String] = []
    /// Flows per observed kind (`delivered`, `delivered-unanswered`, `refused`, …).
    var kinds: [String: Int] = [:]
    var error: String? = nil
    var seconds = 0.0

    var summary: String {
        if let error { return "\(policy) [\(backend)]: \(error)" }
        return "\(policy) [\(backend)]: \(flows) flows, \(agreed) agree (\(replies) with a reply checked) in "
            + String(format: "%.1f s", seconds)
    }
}

enum DifferentialRun {
    /// `WEIR_DIFF_VERBOSE=1` prints every flow, not only the disagreements.
    static let verbose = ProcessInfo.processInfo.environment["WEIR_DIFF_VERBOSE"] == "1"

    /// Builds the lab, runs every flow at once, compares, tears the lab down.
    static func run(_ host: DiffHost, _ flows: [DiffFlow], _ ports: DiffHost.Ports, _ backend: DifferentialBackend) -> DiffRunResult {
        let start = ContinuousClock.now
        var result = DiffRunResult(policy: host.name, backend: backend.name)
        compare(host, flows, ports, backend, into: &result)
        result.seconds = (ContinuousClock.now - start) / .seconds(1)
        return result
    }

    private static func compare(_ host: DiffHost, _ flows: [DiffFlow], _ ports: DiffHost.Ports, _ backend: DifferentialBackend,
                                into result: inout DiffRunResult) {
        let compiled = host.compiled
        let lab: Lab
        do {
            lab = try Lab.up(host.topology) { namespace in
                try backend.apply(compiled, namespace)
                try disableICMPRateLimit(in: namespace)
            }
        } catch {
            result.error = "the lab cannot be built: \(error)"
            return
        }
        let namespaces = host.nodes.map { node in
            switch node.kind {
            case .host: lab.hostNamespace
            case .peer(let index): lab.peers[index].namespace
            case .container(let index): lab.containers[index].namespace
            }
        }
        let servers: DiffServers
        do {
            servers = try DiffServers.start(lab, nodes: host.nodes, namespaces: namespaces, ports: ports.all)
        } catch {
            try? lab.down()
            result.error = "servers did not start: \(error)"
            return
        }

        let predictions = flows.map(host.predict)
        let jobs = Array(zip(flows, predictions.map(\.expected.isDeliveredAndAnswered)))
        let outcomes = DifferentialThreads.map(jobs, limit: jobs.count) { flow, answered in
            DifferentialClient.probe(from: namespaces[flow.source], bind: flow.sourceEndpoint.port, to: flow.destination,
                                     transport: flow.transport, timeout: answered ? .seconds(3) : .seconds(1), payload: flow.payload)
        }
        for (index, flow) in flows.enumerated() {
            let prediction = predictions[index]
            let client = outcomes[index]
            var observed = servers.observe(flow, client, nodes: host.nodes)
            if let local = client.local, local != flow.sourceEndpoint {
                observed = .other("the client's source is \(local), not \(flow.sourceEndpoint) as the lab's routes predict; \(observed)")
            }
            result.flows += 1
            result.kinds[observed.kind, default: 0] += 1
            if prediction.reply != nil { result.replies += 1 }
            if observed == prediction.expected {
                result.agreed += 1
                if DifferentialRun.verbose { result.lines.append("✓ \(host.name) [\(backend.name)] \(flow): \(observed)") }
            } else {
                result.lines.append("""
                    ✗ \(host.name) [\(backend.name)] \(flow)
                      simulator expects: \(prediction.expected)
                      kernel observed:   \(observed)
                      client:            \(client)
                    \(prediction.trace.indented)
                    """)
            }
        }
        servers.stopAll()
        do {
            try lab.down()
        } catch {
            result.error = "teardown failed: \(error)"
        }
    }
}

@Suite(.enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct DifferentialTests {
    /// Flows per policy; each runs under both backends.
    static let flowsPerPolicy = 24

    @Test("kernel and simulator agree on random flows through every policy's lab, under both backends")
    func kernelAgreesWithSimulator() async throws {
        guard KernelRequirement.check() != nil else { return }
        let seed = DifferentialSeed.current
        DifferentialOutput.emit("Differential: seed \(seed) (replay with WEIR_DIFF_SEED=\(seed))")
        let policies = DifferentialPolicies.all
        #expect(policies.count >= 13, "\(policies)")

        var runs: [(DiffHost, [DiffFlow], DiffHost.Ports, DifferentialBackend)] = []
        for policy in policies {
            do {
                let host = try DiffHost.load(policy)
                let (flows, ports) = host.flows(count: Self.flowsPerPolicy, seed: seed)
                #expect(flows.count >= Self.flowsPerPolicy / 2, "\(policy): only \(flows.count) flows could be generated")
                for backend in DifferentialBackend.all { runs.append((host, flows, ports, backend)) }
            } catch {
                Issue.record("\(policy): the lab cannot be described: \(error)")
            }
        }
        let jobs = runs
        let start = ContinuousClock.now
        let results = await DifferentialThreads.offload {
            DifferentialThreads.map(Array(jobs.indices), limit: 4) { index in
                let (host, flows, ports, backend) = jobs[index]
                return DifferentialRun.run(host, flows, ports, backend)
            }
        }
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        var kinds: [String: Int] = [:]
        for result in results { kinds.merge(result.kinds, uniquingKeysWith: +) }

        var report = ""
        for result in results {
            report += "Differential: \(result.summary)\n"
            for text in result.lines { report += text + "\n" }
            if let error = result.error { Issue.record("\(result.policy) [\(result.backend)]: \(error)") }
        }
        DifferentialOutput.emit(report)
        let flows = results.reduce(0) { $0 + $1.flows }
        let agreed = results.reduce(0) { $0 + $1.agreed }
        let replies = results.reduce(0) { $0 + $1.replies }
        DifferentialOutput.emit("Differential: \(flows) flows, \(agreed) agree (\(replies) with a reply checked; \(results.count) labs, seed \(seed), "
              + String(format: "%.1f s", elapsed) + ")")
        DifferentialOutput.emit("Differential: kernel outcomes: " + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        #expect(flows >= 200, "at least 200 flows per run")
        #expect(agreed == flows, "\(flows - agreed) of \(flows) flows disagree (seed \(seed)); see the output above")
    }
}
