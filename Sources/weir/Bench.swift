import ArgumentParser
import Foundation
import WeirDriver
import WeirModel
import WeirSimulator
import WeirVerifier
#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark compiling, loading and simulating generated policies.",
        discussion: """
            compile: each size is compiled by a child `weir compile` process, so its peak memory is its own.
            load: the compiled ruleset loaded into fresh namespaces (needs root, ip, nft, iptables-restore).
            simulate: simulated traversals per second on one thread, trace off, for the default policy
            and a policy of --simulate-publishes published ports.
            verify: the equivalence proof of each size's iptables output against its nft batch (both read
            back from their bytes), each size in a child process so its peak memory is its own; and the
            proof against exhaustive simulation of a small domain.
            Examples:
              weir bench
              weir bench --publishes 1000 --publishes 50000 --runs 5
              weir bench --sections simulate
              weir bench --sections verify --verify-publishes 10000
            """
    )

    enum Section: String, CaseIterable, ExpressibleByArgument {
        case compile, load, simulate, verify
    }

    @Option(help: "Bridge networks in each generated policy.")
    var networks = 100

    @Option(help: "Published ports per policy (repeat for several sizes).")
    var publishes: [Int] = [1000, 10_000, 100_000]

    @Option(help: "Runs per size; the median is reported.")
    var runs = 3

    @Option(help: "Published ports per policy for the load benchmark (repeat for several sizes).")
    var loadPublishes: [Int] = [1000, 10_000, 50_000]


    @Option(parsing: .upToNextOption, help: "The sections to run: compile, load, simulate, verify (default: compile load simulate).")
    var sections: [Section] = [.compile, .load, .simulate]

    @Option(help: "Published ports per policy for the verify benchmark (repeat for several sizes).")
    var verifyPublishes: [Int] = [1000, 10_000, 50_000]

    /// Internal: run one size of the verify benchmark on this policy and write the result to
    /// --verify-child-output (the parent measures this process's peak memory).
    @Option(help: .hidden)
    var verifyChild: String?

    @Option(help: .hidden)
    var verifyChildOutput: String?

    @Option(help: "The default policy for the simulate benchmark.")
    var simulatePolicy = "Policies/docker-default.weir"

    @Option(help: "Published ports of the large policy of the simulate benchmark.")
    var simulatePublishes = 10_000

    @Option(help: "Seconds to measure each policy of the simulate benchmark.")
    var simulateSeconds = 1.0

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard (publishes + loadPublishes + verifyPublishes + [simulatePublishes]).allSatisfy({ (1...192_000).contains($0) }) else {
            throw ValidationError("publish counts must be 1...192000")
        }
        guard simulateSeconds > 0 else { throw ValidationError("--simulate-seconds must be positive") }
    }

    func run() throws {
        if let verifyChild {
            guard let verifyChildOutput else { throw ValidationError("--verify-child needs --verify-child-output") }
            try verifyOneSize(policy: verifyChild, output: verifyChildOutput)
            return
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weir-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var first = true
        if sections.contains(.compile) {
            try compileBenchmark(executable, directory: directory)
            first = false
        }
        if sections.contains(.load) {
            if !first { print("") }
            try loadBenchmark(executable, directory: directory)
            first = false
        }
        if sections.contains(.simulate) {
            if !first { print("") }
            try simulateBenchmark(directory: directory)
            first = false
        }
        if sections.contains(.verify) {
            if !first { print("") }
            try verifyBenchmark(executable, directory: directory)
        }
    }

    /// Compiles generated policies of each size with a child `weir compile`.
    private func compileBenchmark(_ executable: String, directory: String) throws {
        print("compile: \(networks) networks, median of \(runs) runs; goal for 100k publishes: <= 1 s, <= 300 MiB")
        print(pad("publishes", 10) + pad("rules", 10) + pad("wall s", 10) + pad("peak MiB", 10) + "time/goal  memory/goal")
        for count in publishes {
            let policy = directory + "/bench-\(count).weir"
            let output = directory + "/bench-\(count).rules"
            try BenchmarkPolicy.text(networks: networks, publishes: count, perContainer: 10)
                .write(toFile: policy, atomically: true, encoding: .utf8)
            var samples: [(wall: Double, peakKiB: Int)] = []
            for _ in 0..<runs {
                samples.append(try measure(executable, ["compile", policy, "-o", output]))
            }
            samples.sort { $0.wall < $1.wall }
            let median = samples[samples.count / 2]
            let rules = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
            print(pad(String(count), 10) + pad(String(rules), 10) + pad(String(format: "%.3f", median.wall), 10)
                  + pad(String(median.peakKiB / 1024), 10)
                  + (count == 100_000 ? String(format: "%-10.2f %.2f", median.wall / 1.0, Double(median.peakKiB) / 1024 / 300) : "-"))
        }
    }

    /// Loads the same ruleset into fresh namespaces three ways: `weir apply` of the batch file,
    /// `nft -f` of the .nft text, and `iptables-restore` of the iptables text.
    private func loadBenchmark(_ executable: String, directory: String) throws {
        print("load into a fresh namespace: \(networks) networks, median of \(runs) runs; goal at 50k: weir apply <= 0.5 x nft -f")
        print(pad("publishes", 10) + pad("rules", 9) + pad("nft rules", 11) + pad("elements", 10) + pad("weir apply", 12) + pad("nft -f", 10)
              + pad("iptables", 10) + "apply/nft  apply/iptables")
        for count in loadPublishes {
            let policy = directory + "/load-\(count).weir"
            try BenchmarkPolicy.text(networks: networks, publishes: count, perContainer: 10)
                .write(toFile: policy, atomically: true, encoding: .utf8)
            let result = Compiler.compile(path: policy)
            guard !result.hasErrors, let batch = result.batch, let nft = result.artifact(.nft), let iptables = result.artifact(.iptables) else {
                throw ValidationError("the benchmark policy does not compile: \(result.diagnostics)")
            }
            let batchFile = directory + "/load-\(count).batch", nftFile = directory + "/load-\(count).nft"
            let iptablesFile = directory + "/load-\(count).rules"
            FileManager.default.createFile(atPath: batchFile, contents: Data(batch.bytes))
            try nft.contents.write(toFile: nftFile, atomically: true, encoding: .utf8)
            try iptables.contents.write(toFile: iptablesFile, atomically: true, encoding: .utf8)
            let rules = iptables.contents.split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
            let nftTables = batch.program.tables
            let nftRules = nftTables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
            let elements = nftTables.reduce(0) { $0 + $1.sets.reduce(0) { $0 + $1.elements.count } }

            var times: [[Double]] = [[], [], []]
            for run in 0..<runs {
                for (method, command) in [
                    [executable, "apply", batchFile, "--netns", "NS"],
                    ["/usr/sbin/ip", "netns", "exec", "NS", "nft", "-f", nftFile],
                    ["/usr/sbin/ip", "netns", "exec", "NS", "sh", "-c", "iptables-restore < \(iptablesFile)"],
                ].enumerated() {
                    let namespace = "weir-bench-\(getpid())-\(count)-\(run)-\(method)"
                    try measureQuietly(["/usr/sbin/ip", "netns", "add", namespace])
                    defer { _ = try? measureQuietly(["/usr/sbin/ip", "netns", "delete", namespace]) }
                    let argv = command.map { $0 == "NS" ? namespace : $0 }
                    times[method].append(try measureQuietly(argv).wall)
                }
            }
            let medians = times.map { $0.sorted()[$0.count / 2] }
            print(pad(String(count), 10) + pad(String(rules), 9) + pad(String(nftRules), 11) + pad(String(elements), 10)
                  + pad(String(format: "%.3f", medians[0]), 12)
                  + pad(String(format: "%.3f", medians[1]), 10) + pad(String(format: "%.3f", medians[2]), 10)
                  + pad(String(format: "%.2f", medians[0] / medians[1]), 11) + String(format: "%.2f", medians[0] / medians[2]))
        }
    }

    /// `measure` with the child's output thrown away.
    @discardableResult
    private func measureQuietly(_ argv: [String]) throws -> (wall: Double, peakKiB: Int) {
        try measure(argv[0], Array(argv.dropFirst()), quiet: true)
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    /// Runs a child to completion; its wall time and its own peak resident memory (wait4).
    private func measure(_ executable: String, _ arguments: [String], quiet: Bool = false) throws -> (wall: Double, peakKiB: Int) {
        var pid: pid_t = 0
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
        let start = DispatchTime.now().uptimeNanoseconds
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw ValidationError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard status == 0 else { throw ValidationError("\(executable) \(arguments.joined(separator: " ")) failed (status \(status))") }
        return (wall, usage.ru_maxrss)
    }
}

// MARK: Simulate

extension Bench {
    /// One unit of simulated work: a packet, or the reply to an earlier traversal.
    enum SimulatedPacket {
        case packet(Packet, Origin)
        case reply(Traversal)
    }

    /// Traversals per second on one thread, trace off, over a fixed set of packets: the default
    /// policy and a generated one with `simulatePublishes` published ports (100 networks).
    func simulateBenchmark(directory: String) throws {
        let large = directory + "/simulate-\(simulatePublishes).weir"
        try BenchmarkPolicy.text(networks: 100, publishes: simulatePublishes, perContainer: 10)
            .write(toFile: large, atomically: true, encoding: .utf8)
        print("simulate: one thread, trace off, \(Self.simulatedPackets) packets (published ports, unpublished, outbound, replies), "
              + String(format: "%.1f s each", simulateSeconds))
        print("goal: >= 1M traversals/s on the default policy; the \(simulatePublishes / 1000)k policy within 5x of it")
        print(pad("policy", 26) + pad("rules", 9) + pad("init ms", 10) + pad("traversals/s", 15) + "ns/traversal")
        var rates: [Double] = []
        for (label, path) in [("default", simulatePolicy), ("\(simulatePublishes) publishes", large)] {
            let loaded = try value(of: RulesetSource.policy(path).load(), orExit: 1)
            let start = DispatchTime.now().uptimeNanoseconds
            let simulator = Simulator(ruleset: loaded.ruleset, host: loaded.host ?? .empty)
            let initialized = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            let work = Self.packets(simulator)
            let rate = Self.measure(simulator, work, seconds: simulateSeconds)
            rates.append(rate)
            let rules = loaded.ruleset.tables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
            print(pad(label, 26) + pad(String(rules), 9) + pad(String(format: "%.1f", initialized), 10)
                  + pad(String(format: "%.0f", rate), 15) + String(format: "%.0f", 1e9 / rate))
        }
        print(String(format: "default / %dk: %.2fx (goal <= 5x); default: %.2fx of 1M/s", simulatePublishes / 1000,
                     rates[0] / rates[1], rates[0] / 1e6))
    }

    static let simulatedPackets = 4096

    /// SplitMix64, so every run measures the same packets.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// The fixed packet mix, from the policy's own published ports, containers and uplink:
    /// 35% to published ports from outside, 15% to unpublished host ports, 10% straight to a
    /// container's unpublished port, 20% from containers to the internet, 20% replies to those.
    static func packets(_ simulator: Simulator) -> [SimulatedPacket] {
        var rng = SplitMix(state: 20_260_514)
        var published: [(transport: TransportProtocol, port: UInt16)] = []
        var containers: [IPAddress] = []
        for table in simulator.ruleset.tables where table.family == .ipv4 && table.name == "nat" {
            for chain in table.chains {
                for rule in chain.rules {
                    guard case .dnat(let to) = rule.target else { continue }
                    containers.append(to.address)
                    var transport: TransportProtocol? = nil
                    var port: UInt16? = nil
                    for match in rule.matches {
                        if case .protocol(let t, false) = match { transport = t }
                        if case .port(.destination, let range, false) = match { port = range.first }
                    }
                    if let transport, let port { published.append((transport, port)) }
                }
            }
        }
        let host = simulator.host
        let uplink = host.interfaces.first { $0.name != "lo" && !$0.isBridge && $0.addresses.contains { $0.family == .ipv4 } }
        guard let uplink, let hostAddress = uplink.addresses.first(where: { $0.family == .ipv4 })?.address, !published.isEmpty else {
            return []
        }
        let publishedPorts = Set(published.map(\.port))
        func external() -> IPAddress { .v4(0xCB00_7100 | UInt32.random(in: 1...254, using: &rng)) }  // 203.0.113.x
        func port() -> UInt16 { UInt16.random(in: 32768...60999, using: &rng) }
        var requests: [SimulatedPacket] = []
        var replies: [Traversal] = []
        while requests.count + replies.count < simulatedPackets {
            let dice = Int.random(in: 0..<80, using: &rng)
            let packet: Packet
            let origin: Origin
            switch dice {
            case 0..<35:
                let target = published.randomElement(using: &rng)!
                packet = Packet(source: external(), destination: hostAddress, transport: target.transport, sourcePort: port(), destinationPort: target.port)
                origin = .interface(uplink.name)
            case 35..<50:
                var p = UInt16.random(in: 1...1023, using: &rng)
                while publishedPorts.contains(p) { p += 1 }
                packet = Packet(source: external(), destination: hostAddress, transport: .tcp, sourcePort: port(), destinationPort: p)
                origin = .interface(uplink.name)
            case 50..<60:
                packet = Packet(source: external(), destination: containers.randomElement(using: &rng)!, transport: .tcp,
                                sourcePort: port(), destinationPort: 5432)
                origin = .interface(uplink.name)
            default:
                let container = containers.randomElement(using: &rng)!
                packet = Packet(source: container, destination: .v4(0x0808_0808), transport: .udp, sourcePort: port(), destinationPort: 53)
                guard let bridge = host.route(container) else { continue }
                origin = .interface(bridge)
            }
            requests.append(.packet(packet, origin))
            // Every fourth request that got through is answered.
            let traversal = simulator.simulate(packet, from: origin, trace: false)
            if Int.random(in: 0..<4, using: &rng) == 0, simulator.reply(to: traversal, trace: false) != nil { replies.append(traversal) }
        }
        var all = requests + replies.map(SimulatedPacket.reply)
        all.shuffle(using: &rng)
        return all
    }

    /// Runs the packets round after round for about `seconds`; traversals per second.
    static func measure(_ simulator: Simulator, _ work: [SimulatedPacket], seconds: Double) -> Double {
        guard !work.isEmpty else { return 0 }
        var checksum = round(simulator, work)  // warm up
        var rounds = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            checksum &+= round(simulator, work)
            rounds += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        if checksum == -1 { print("") }  // keeps the work observable
        return Double(rounds * work.count) / elapsed
    }

    /// One pass over the packets; how many were dropped.
    static func round(_ simulator: Simulator, _ work: [SimulatedPacket]) -> Int {
        var dropped = 0
        for item in work {
            let traversal: Traversal?
            switch item {
            case .packet(let packet, let origin): traversal = simulator.simulate(packet, from: origin, trace: false)
            case .reply(let request): traversal = simulator.reply(to: request, trace: false)
            }
            if case .dropped = traversal?.outcome { dropped &+= 1 }
        }
        return dropped
    }
}

// MARK: Verify

extension Bench {
    /// Translation validation at each size: a child `weir bench --verify-child POLICY` compiles the
    /// policy, reads its iptables output back with the importer and its batch with the decoder and
    /// `NftLifting`, and runs `Verifier.check` on the two `--runs` times; the parent reports the
    /// median proof time, the classes, and the child's peak memory (wait4), against the goals.
    /// Then the proof against brute force: exhaustive simulation of a small domain.
    func verifyBenchmark(_ executable: String, directory: String) throws {
        print("verify: iptables output vs nft batch (each read back), \(networks) networks, median of \(runs) runs; "
              + "goals: 10k <= 2 s, 50k <= 10 s, peak <= 1 GiB")
        print(pad("publishes", 10) + pad("rules", 9) + pad("classes", 10) + pad("verify s", 10) + pad("child s", 9)
              + pad("peak MiB", 10) + pad("time/goal", 11) + pad("memory/goal", 13) + "answer")
        for count in verifyPublishes {
            let policy = directory + "/verify-\(count).weir"
            let output = directory + "/verify-\(count).result"
            try BenchmarkPolicy.text(networks: networks, publishes: count, perContainer: 10)
                .write(toFile: policy, atomically: true, encoding: .utf8)
            let child = try measure(executable, ["bench", "--verify-child", policy, "--verify-child-output", output, "--runs", String(runs)])
            let text = try String(contentsOfFile: output, encoding: .utf8)
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
            }
            let seconds = Double(values["seconds"] ?? "") ?? .nan
            let goal = [10_000: 2.0, 50_000: 10.0][count]
            let peakMiB = Double(child.peakKiB) / 1024
            print(pad(String(count), 10) + pad(values["rules"] ?? "?", 9) + pad(values["classes"] ?? "?", 10)
                  + pad(String(format: "%.3f", seconds), 10) + pad(String(format: "%.2f", child.wall), 9)
                  + pad(String(format: "%.0f", peakMiB), 10)
                  + pad(goal.map { String(format: "%.2f", seconds / $0) } ?? "-", 11)
                  + pad(String(format: "%.2f", peakMiB / 1024), 13) + (values["answer"] ?? "?"))
            fflush(nil)  // one row at a time, also when the output is a file
        }
        try bruteForceComparison()
    }

    /// One size, in the child: compile, read both artifacts back, prove them equivalent `runs` times.
    func verifyOneSize(policy: String, output: String) throws {
        let host = try value(of: RulesetSource.host(ofPolicy: policy), orExit: 1)
        let lifted = try liftedArtifacts(of: policy)
        var answers: [EquivalenceResult] = []
        for _ in 0..<runs { answers.append(Verifier.check(lifted.iptables, lifted.batch, host: host)) }
        answers.sort { $0.seconds < $1.seconds }
        let median = answers[answers.count / 2]
        let rules = lifted.iptables.tables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
        let answer = median.counterexample.map { "DIFFERENT: \($0)" } ?? "equivalent"
        try "rules=\(rules)\nclasses=\(median.classes)\nseconds=\(median.seconds)\nanswer=\(answer)\n"
            .write(toFile: output, atomically: true, encoding: .utf8)
    }

    /// A policy's artifacts read back (`VerifyInputs.liftedArtifacts`); the compile is gone when
    /// this returns, as it is for `weir verify`, so that the peak memory measured is the check's.
    func liftedArtifacts(of policy: String) throws -> (iptables: Ruleset, batch: Ruleset) {
        let result = Compiler.compile(path: policy)
        guard !result.hasErrors else {
            printDiagnostics(result.diagnostics)
            throw ExitCode(1)
        }
        return try value(of: VerifyInputs.liftedArtifacts(of: result, policy: policy), orExit: 1)
    }

    /// The verifier against exhaustive simulation: the default policy's iptables output and batch
    /// over a small domain of one representative per class of every field (what the brute-force
    /// test does), then the size of that domain for the benchmark policies, where simulating it
    /// is out of reach.
    func bruteForceComparison() throws {
        print("")
        print("verify vs brute force: exhaustive simulation of one packet per class of each field (the classes of the "
              + "rules' and host's prefixes, ports, protocols, interfaces, states), both sides")
        print(pad("policy", 20) + pad("packets", 16) + pad("brute force s", 15) + pad("verify s", 10) + "brute/verify")
        func load(_ path: String) throws -> (Ruleset, Ruleset, HostModel) {
            let result = Compiler.compile(path: path)
            guard !result.hasErrors, case .success(let host) = RulesetSource.host(ofPolicy: path),
                  case .success(let lifted) = VerifyInputs.liftedArtifacts(of: result, policy: path) else {
                throw ValidationError("\(path) does not compile or lift")
            }
            return (lifted.iptables, lifted.batch, host)
        }
        let (left, right, host) = try load(simulatePolicy)
        var verifyTimes: [Double] = []
        for _ in 0..<runs { verifyTimes.append(Verifier.check(left, right, host: host).seconds) }
        let verify = verifyTimes.sorted()[verifyTimes.count / 2]
        let domain = SmallDomain([left, right], host: host)
        let l = Simulator(ruleset: left, host: host), r = Simulator(ruleset: right, host: host)
        let start = DispatchTime.now().uptimeNanoseconds
        var differing = 0
        domain.forEach { packet, origin in
            let a = ObservableOutcome(l.simulate(packet, from: origin, trace: false))
            let b = ObservableOutcome(r.simulate(packet, from: origin, trace: false))
            if a != b { differing += 1 }
        }
        let brute = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let perPacket = brute / Double(max(domain.count, 1))
        print(pad("default", 20) + pad(String(domain.count), 16) + pad(String(format: "%.3f", brute), 15)
              + pad(String(format: "%.4f", verify), 10) + String(format: "%.2f", brute / verify)
              + (differing == 0 ? "" : " (\(differing) packets differ!)"))
        for count in verifyPublishes.prefix(1) {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-bench-\(getpid())-brute-\(count).weir").path
            try BenchmarkPolicy.text(networks: networks, publishes: count, perContainer: 10).write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (left, right, host) = try load(path)
            let domain = SmallDomain([left, right], host: host)
            let estimate = Double(domain.count) * perPacket
            print(pad("\(count) publishes", 20) + pad(String(domain.count), 16)
                  + pad(String(format: "~%.0f h (est.)", estimate / 3600), 15) + "(not run)")
        }
    }

    /// One packet per class of every field for IPv4 rulesets: the values each prefix, port
    /// range, protocol, interface pattern and state set of the rules and the host (connected
    /// prefixes, addresses, routes, 127/8) contains or misses alike are one class.
    struct SmallDomain {
        var origins: [Origin] = []
        var addresses: [[IPAddress]] = [[], []]
        var ports: [[UInt16]] = [[], []]
        var transports: [TransportProtocol] = []

        var count: Int {
            let ported = transports.filter(\.hasPorts).count * ports[0].count * ports[1].count
            let unported = transports.filter { !$0.hasPorts }.count
            return origins.count * addresses[0].count * addresses[1].count * (ported + unported) * ConntrackState.allCases.count
        }

        /// One value per class: a sweep over the sets' ends keeps, for each stretch between two
        /// ends, a hash of the sets that hold it (a random number per set, XORed in and out), and
        /// the first value of each distinct hash stands for its class. O(n log n) for the
        /// thousands of prefixes of a large policy.
        static func representatives(_ sets: [ClosedRange<UInt128>], upper: UInt128) -> [UInt128] {
            var generator = SplitMix(state: 0x5745_4952)
            var events: [(at: UInt128, id: UInt64)] = [(0, 0)]
            for s in sets {
                let id = generator.next()
                events.append((s.lowerBound, id))
                if s.upperBound < upper { events.append((s.upperBound + 1, id)) }
            }
            events.sort { $0.at < $1.at }
            var hash: UInt64 = 0
            var seen = Set<UInt64>()
            var out: [UInt128] = []
            var i = 0
            while i < events.count {
                let at = events[i].at
                while i < events.count && events[i].at == at { hash ^= events[i].id; i += 1 }
                if seen.insert(hash).inserted { out.append(at) }
            }
            return out
        }

        init(_ rulesets: [Ruleset], host: HostModel) {
            var addressSets: [[ClosedRange<UInt128>]] = [[], []], portSets: [[ClosedRange<UInt128>]] = [[], []]
            var protocols = Set<TransportProtocol>([.tcp, .udp, .icmp])
            var names = Set(host.interfaces.map(\.name) + ["weir~unknown"])
            func index(_ d: Direction) -> Int { d == .source ? 0 : 1 }
            for ruleset in rulesets {
                for table in ruleset.tables where table.family == .ipv4 {
                    for chain in table.chains {
                        for rule in chain.rules {
                            for match in rule.matches {
                                switch match {
                                case let .address(d, p, _): addressSets[index(d)].append(p.network.bits...p.last.bits)
                                case let .port(d, range, _): portSets[index(d)].append(UInt128(range.first)...UInt128(range.last))
                                case let .protocol(t, _): protocols.insert(t)
                                case let .inInterface(n, _), let .outInterface(n, _): names.insert(n.isWildcard ? n.name + "~9" : n.name)
                                default: break
                                }
                            }
                            switch rule.target {
                            case .dnat(let to):
                                addressSets[1].append(to.address.bits...to.address.bits)
                                if let p = to.ports { portSets[1].append(UInt128(p.first)...UInt128(p.first)) }
                            case .snat(let to):
                                addressSets[0].append(to.address.bits...to.address.bits)
                                if let p = to.ports { portSets[0].append(UInt128(p.first)...UInt128(p.first)) }
                            default: break
                            }
                        }
                    }
                }
            }
            var hostSets: [ClosedRange<UInt128>] = [IPAddress("127.0.0.0")!.bits...IPAddress("127.255.255.255")!.bits]
            for i in host.interfaces {
                for p in i.addresses where p.family == .ipv4 { hostSets += [p.network.bits...p.last.bits, p.address.bits...p.address.bits] }
            }
            for route in host.extraRoutes where route.destination.family == .ipv4 { hostSets.append(route.destination.network.bits...route.destination.last.bits) }
            for d in 0..<2 {
                addresses[d] = Self.representatives(addressSets[d] + hostSets, upper: UInt128(UInt32.max)).map { .v4(UInt32($0)) }
                ports[d] = Self.representatives(portSets[d], upper: 65535).map { UInt16($0) }
            }
            protocols.insert(TransportProtocol(number: 47))
            transports = protocols.sorted()
            origins = names.sorted().map { Origin.interface($0) } + [.local]
        }

        func forEach(_ body: (Packet, Origin) -> Void) {
            for origin in origins {
                for source in addresses[0] {
                    for destination in addresses[1] {
                        for transport in transports {
                            for sport in transport.hasPorts ? ports[0] : [0] {
                                for dport in transport.hasPorts ? ports[1] : [0] {
                                    for state in ConntrackState.allCases {
                                        body(Packet(source: source, destination: destination, transport: transport,
                                                    sourcePort: sport, destinationPort: dport, state: state), origin)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
