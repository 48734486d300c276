import Foundation
import Testing

/// Paths of the checkout and of `../shared` beside it.
enum Repository {
    /// The package root: three levels above this file (Tests/WeirTests/TestSupport.swift).
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static let shared = root + "/../shared"

    static func policy(_ name: String) -> String { root + "/Policies/" + name }

    /// Reads a file of `../shared`; records a failure (not a skip) when it is missing.
    static func sharedFile(_ relative: String) throws -> String {
        let path = shared + "/" + relative
        guard let data = FileManager.default.contents(atPath: path) else {
            Issue.record("missing \(path): the shared reference material must sit beside the checkout")
            throw CancellationError()
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// An `iptables-save` text split into tables: name → block text (from `*name` to `COMMIT`),
/// with `#` comment lines removed.
func tablesOf(_ text: String) -> [String: String] {
    var tables: [String: String] = [:]
    var current: String? = nil
    var lines: [Substring] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.hasPrefix("#") {
        if line.hasPrefix("*") {
            current = String(line.dropFirst())
            lines = [line]
        } else if current != nil {
            lines.append(line)
            if line == "COMMIT" {
                tables[current!] = lines.joined(separator: "\n") + "\n"
                current = nil
            }
        }
    }
    return tables
}

/// Removes `#` comment lines.
func withoutComments(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .filter { !$0.hasPrefix("#") }
        .joined(separator: "\n")
}

/// The `weir` executable as users run it.
enum WeirBinary {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `weir` built alongside these tests (whatever the scratch path), else `.build/debug/weir`.
    static let path: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("weir").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return Repository.root + "/.build/debug/weir"
    }()

    /// Runs `weir` in `directory`; records a failure (not a skip) when it is not built.
    static func run(_ arguments: [String], in directory: String = Repository.root) throws -> Run {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("\(path) is missing: build with `swift build --build-tests` (make test does)")
            throw CancellationError()
        }
        let stem = FileManager.default.temporaryDirectory.appendingPathComponent("weir-run-\(UUID().uuidString)").path
        let (outPath, errPath) = (stem + ".out", stem + ".err")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
        process.waitUntilExit()
        let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Run(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }
}
