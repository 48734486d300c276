import ArgumentParser
import Foundation
import WeirDriver
#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark compiling generated policies; prints wall time and peak memory.",
        discussion: """
            Each size is compiled by a child `weir compile` process, so its peak memory is its own.
            Examples:
              weir bench
              weir bench --publishes 1000 --publishes 50000 --runs 5
            """
    )

    @Option(help: "Bridge networks in each generated policy.")
    var networks = 100

    @Option(help: "Published ports per policy (repeat for several sizes).")
    var publishes: [Int] = [1000, 10_000, 100_000]

    @Option(help: "Runs per size; the median is reported.")
    var runs = 3

    @Option(help: "Published ports per policy for the load benchmark (repeat for several sizes).")
    var loadPublishes: [Int] = [1000, 10_000, 50_000]

    @Flag(help: "Skip the load benchmark (it needs root, ip, nft and iptables-restore).")
    var compileOnly = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard (publishes + loadPublishes).allSatisfy({ (1...192_000).contains($0) }) else { throw ValidationError("publish counts must be 1...192000") }
    }

    func run() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weir-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

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
        if !compileOnly { try loadBenchmark(executable, directory: directory) }
    }

    /// Loads the same ruleset into fresh namespaces three ways: `weir apply` of the batch file,
    /// `nft -f` of the .nft text, and `iptables-restore` of the iptables text.
    private func loadBenchmark(_ executable: String, directory: String) throws {
        print("")
        print("load into a fresh namespace: \(networks) networks, median of \(runs) runs; goal at 50k: weir apply <= 0.5 x nft -f")
        print(pad("publishes", 10) + pad("rules", 9) + pad("weir apply", 12) + pad("nft -f", 10) + pad("iptables", 10) + "apply/nft  apply/iptables")
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
            print(pad(String(count), 10) + pad(String(rules), 9) + pad(String(format: "%.3f", medians[0]), 12)
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
