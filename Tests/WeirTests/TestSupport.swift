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
