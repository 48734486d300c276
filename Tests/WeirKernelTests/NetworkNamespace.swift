import Foundation
import Testing

/// What a finished command left behind.
struct CommandResult: Sendable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }
    var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
}

struct CommandError: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program to completion. Standard input, output and error go through temporary files,
/// so large outputs cannot dead-lock on a full pipe.
enum CommandRunner {
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        let manager = FileManager.default
        let stem = manager.temporaryDirectory.appendingPathComponent("weir-cmd-\(getpid())-\(UUID().uuidString)").path
        let (inPath, outPath, errPath) = (stem + ".in", stem + ".out", stem + ".err")
        defer { for path in [inPath, outPath, errPath] { try? manager.removeItem(atPath: path) } }
        guard manager.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8)),
              manager.createFile(atPath: outPath, contents: nil),
              manager.createFile(atPath: errPath, contents: nil),
              let input = FileHandle(forReadingAtPath: inPath),
              let output = FileHandle(forWritingAtPath: outPath),
              let error = FileHandle(forWritingAtPath: errPath) else {
            throw CommandError(description: "cannot create temporary files at \(stem).*")
        }
        defer { try? input.close(); try? output.close(); try? error.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        process.waitUntilExit()
        let read = { (path: String) in String(decoding: manager.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return CommandResult(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }

    /// The absolute path of a program: `PATH` first, then the sbin directories root's PATH has.
    static func locate(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + program
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A scratch network namespace, `weir-test-<pid>-<random hex>`, created with `ip netns add` and
/// deleted with `ip netns delete` by `delete()` or, at the latest, when the value goes away, so
/// no exit path (a failed expectation, a thrown error) leaves it behind. Only namespaces made
/// here are ever touched.
final class NetworkNamespace {
    let name: String
    let ip: String
    private(set) var isDeleted = false

    /// Creates the namespace; `ip` is the path of iproute2's `ip`.
    init(ip: String) throws {
        self.ip = ip
        let random = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        name = "weir-test-\(getpid())-\(random)"
        let result = try CommandRunner.run(ip, ["netns", "add", name])
        guard result.succeeded else {
            isDeleted = true
            throw CommandError(description: "ip netns add \(name) failed: \(result)")
        }
    }

    /// Runs `program arguments…` inside the namespace (`ip netns exec NAME …`).
    func run(_ program: String, _ arguments: [String] = [], stdin: String? = nil) throws -> CommandResult {
        precondition(!isDeleted, "namespace \(name) was deleted")
        return try CommandRunner.run(ip, ["netns", "exec", name, program] + arguments, stdin: stdin)
    }

    /// Deletes the namespace (once; later calls do nothing).
    func delete() {
        guard !isDeleted else { return }
        isDeleted = true
        _ = try? CommandRunner.run(ip, ["netns", "delete", name])
    }

    deinit { delete() }
}

/// What the kernel tests need: root, and the iproute2 and iptables programs.
///
/// Missing requirements fail the tests (a recorded issue naming what is missing), unless
/// `WEIR_SKIP_KERNEL_TESTS=1` is set, in which case the suites are skipped with
/// `.enabled(if: KernelRequirement.enabled)`.
enum KernelRequirement {
    struct Tools {
        var ip: String
        var iptablesRestore: String
        var iptablesSave: String
        var ip6tablesRestore: String
        var ip6tablesSave: String

        func restore(_ family: String) -> String { family == "ip6" ? ip6tablesRestore : iptablesRestore }
        func save(_ family: String) -> String { family == "ip6" ? ip6tablesSave : iptablesSave }
    }

    static var skipRequested: Bool { ProcessInfo.processInfo.environment["WEIR_SKIP_KERNEL_TESTS"] == "1" }
    static var enabled: Bool { !skipRequested }

    /// Namespaces a crashed or killed test run left behind (`weir-test-PID-…` whose process is
    /// gone), removed once per test process before the first kernel test. `weirlab-…` labs are
    /// left alone: a `weir lab up` lab outlives its process by design (`weir lab down` removes it).
    static let staleNamespacesRemoved: [String] = {
        guard geteuid() == 0, let ip = CommandRunner.locate("ip"),
              let listing = try? CommandRunner.run(ip, ["netns", "list"]) else { return [] }
        var removed: [String] = []
        for line in listing.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            let pid: Int32?
            pid = name.hasPrefix("weir-test-") && parts.count >= 3 ? Int32(parts[2]) : nil
            guard let pid, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if (try? CommandRunner.run(ip, ["netns", "delete", name]))?.succeeded == true { removed.append(name) }
        }
        return removed
    }()

    /// The tools, or nil after recording a failing issue that says what is missing.
    static func check(sourceLocation: SourceLocation = #_sourceLocation) -> Tools? {
        _ = staleNamespacesRemoved
        var problems: [String] = []
        if geteuid() != 0 { problems.append("the tests are not running as root (euid \(geteuid()))") }
        var found: [String: String] = [:]
        for program in ["ip", "iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"] {
            if let path = CommandRunner.locate(program) { found[program] = path } else { problems.append("'\(program)' is not installed") }
        }
        guard problems.isEmpty else {
            Issue.record(Comment(rawValue: "kernel tests need root, iproute2 and iptables: " + problems.joined(separator: "; ")
                + ". Run as root with iptables and iproute2 installed, or set WEIR_SKIP_KERNEL_TESTS=1 to skip them."),
                sourceLocation: sourceLocation)
            return nil
        }
        return Tools(ip: found["ip"]!, iptablesRestore: found["iptables-restore"]!, iptablesSave: found["iptables-save"]!,
                     ip6tablesRestore: found["ip6tables-restore"]!, ip6tablesSave: found["ip6tables-save"]!)
    }
}
