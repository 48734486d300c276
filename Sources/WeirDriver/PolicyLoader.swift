import Foundation
import WeirDiagnostics
import WeirPolicy

/// Reads a policy file and the files it includes, in order, into one list of items.
public struct PolicyLoader {
    /// Includes may nest at most this deep (a cycle is reported before that).
    public static let maximumIncludeDepth = 32

    private var diagnostics: [Diagnostic] = []
    private var stack: [String] = []

    /// Loads `path` and its includes. Items of an included file stand where its `include` was.
    public static func load(path: String) -> (items: [Located<Item>], diagnostics: [Diagnostic]) {
        var loader = PolicyLoader()
        let items = loader.loadFile(path, includedFrom: nil)
        return (items, loader.diagnostics)
    }

    /// Parses text that is not on disk (includes resolve against the current directory).
    public static func load(text: String, path: String) -> (items: [Located<Item>], diagnostics: [Diagnostic]) {
        var loader = PolicyLoader()
        let file = SourceFile(path: path, text: text)
        let items = loader.parseFile(file, canonicalPath: path)
        return (items, loader.diagnostics)
    }

    private mutating func loadFile(_ path: String, includedFrom: SourceRange?) -> [Located<Item>] {
        let canonical = URL(fileURLWithPath: path).standardizedFileURL.path
        if stack.contains(canonical) {
            diagnostics.append(.error("'\(path)' includes itself (through \(stack.count) file\(stack.count == 1 ? "" : "s"))", at: includedFrom))
            return []
        }
        guard stack.count < Self.maximumIncludeDepth else {
            diagnostics.append(.error("includes nest deeper than \(Self.maximumIncludeDepth) files", at: includedFrom))
            return []
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let message = FileManager.default.fileExists(atPath: path) ? "cannot read '\(path)'" : "no such file '\(path)'"
            diagnostics.append(.error(message, at: includedFrom))
            return []
        }
        return parseFile(SourceFile(path: path, bytes: [UInt8](data)), canonicalPath: canonical)
    }

    private mutating func parseFile(_ file: SourceFile, canonicalPath: String) -> [Located<Item>] {
        let (ast, found) = Parser.parse(file)
        diagnostics += found
        stack.append(canonicalPath)
        defer { stack.removeLast() }
        var items: [Located<Item>] = []
        let directory = URL(fileURLWithPath: file.path).deletingLastPathComponent()
        for item in ast.items {
            if case .include(let target) = item.value {
                let path = target.value.hasPrefix("/") ? target.value : directory.appendingPathComponent(target.value).relativePath
                items += loadFile(Self.tidy(path), includedFrom: target.range)
            } else {
                items.append(item)
            }
        }
        return items
    }

    /// `./a/../b.weir` → `b.weir`, keeping relative paths relative for messages.
    static func tidy(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }
}
