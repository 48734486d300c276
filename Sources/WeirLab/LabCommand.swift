import Foundation
import WeirModel

/// Everything that can go wrong building, using or removing a lab.
public enum LabError: Error, CustomStringConvertible, Equatable {
    /// A program exited with a failure status.
    case commandFailed(command: String, status: Int32, stderr: String)
    /// A program could not be found or started.
    case programMissing(String)
    /// A host interface's subnet has no room for the external peer.
    case noPeerAddress(interface: String, prefix: Prefix)
    /// A namespace of the lab already exists (it is left alone).
    case namespaceExists(String)
    /// A name `ip netns` cannot hold, or that is not the lab's.
    case invalidNamespaceName(String)
    /// An interface name Linux or `ip -batch` cannot take as one word.
    case invalidInterfaceName(String)
    /// Entering a namespace failed.
    case enterFailed(namespace: String, errno: Int32)
    /// A socket call failed.
    case socketFailed(call: String, errno: Int32)
    /// A server did not start in time.
    case serverStartTimedOut(namespace: String)
    /// Teardown left these namespaces behind.
    case teardownIncomplete([String])

    public var description: String {
        switch self {
        case .commandFailed(let command, let status, let stderr):
            "\(command) failed (exit \(status)): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        case .programMissing(let program): "cannot find or run '\(program)'"
        case .noPeerAddress(let interface, let prefix): "no free address for the external peer of \(interface) in \(prefix)"
        case .namespaceExists(let name): "network namespace \(name) already exists"
        case .invalidNamespaceName(let name): "invalid lab namespace name '\(name)'"
        case .invalidInterfaceName(let name): "invalid interface name '\(name)' (1–15 printable bytes without spaces, '/', quotes, '\\' or '#')"
        case .enterFailed(let namespace, let code): "cannot enter network namespace \(namespace): \(String(cString: strerror(code)))"
        case .socketFailed(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .serverStartTimedOut(let namespace): "server in \(namespace) did not start"
        case .teardownIncomplete(let names): "could not delete namespaces: \(names.joined(separator: ", "))"
        }
    }
}

/// Runs programs to completion; output goes through temporary files so large outputs cannot
/// dead-lock on a full pipe.
enum LabCommand {
    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> Result {
        let manager = FileManager.default
        let stem = manager.temporaryDirectory.appendingPathComponent("weirlab-cmd-\(getpid())-\(UUID().uuidString)").path
        let (inPath, outPath, errPath) = (stem + ".in", stem + ".out", stem + ".err")
        defer { for path in [inPath, outPath, errPath] { try? manager.removeItem(atPath: path) } }
        guard manager.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8)),
              manager.createFile(atPath: outPath, contents: nil),
              manager.createFile(atPath: errPath, contents: nil),
              let input = FileHandle(forReadingAtPath: inPath),
              let output = FileHandle(forWritingAtPath: outPath),
              let error = FileHandle(forWritingAtPath: errPath) else {
            throw LabError.programMissing("temporary files at \(stem).*")
        }
        defer { try? input.close(); try? output.close(); try? error.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        do { try process.run() } catch { throw LabError.programMissing(executable) }
        process.waitUntilExit()
        let read = { (path: String) in String(decoding: manager.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Result(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }

    /// Runs and throws `commandFailed` on a non-zero exit.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> Result {
        let result = try run(executable, arguments, stdin: stdin)
        guard result.status == 0 else {
            var command = ([executable] + arguments).joined(separator: " ")
            if let stdin, !stdin.isEmpty { command += " <<< " + stdin.split(separator: "\n").joined(separator: "; ") }
            throw LabError.commandFailed(command: command, status: result.status, stderr: result.stderr)
        }
        return result
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

    static func ip() throws -> String {
        guard let path = locate("ip") else { throw LabError.programMissing("ip") }
        return path
    }
}
