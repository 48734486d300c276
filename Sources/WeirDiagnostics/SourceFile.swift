/// A text file (or an in-memory buffer) that diagnostics and provenance point into.
///
/// The text is kept as UTF-8 bytes; line starts are computed lazily once, so turning
/// an offset into `line:column` is a binary search.
public final class SourceFile: Sendable, Hashable, CustomStringConvertible {
    /// The path as the user gave it (printed in diagnostics as is).
    public let path: String
    /// The file's bytes.
    public let bytes: [UInt8]
    private let lineStarts: [Int]

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
        var starts = [0]
        starts.reserveCapacity(bytes.count / 24 + 1)
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            starts.append(index + 1)
        }
        self.lineStarts = starts
    }

    public convenience init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }

    public var description: String { path }

    /// The 1-based line and column (in bytes) of a byte offset.
    public func lineAndColumn(of offset: Int) -> (line: Int, column: Int) {
        let clamped = max(0, min(offset, bytes.count))
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= clamped { low = mid } else { high = mid - 1 }
        }
        return (low + 1, clamped - lineStarts[low] + 1)
    }

    /// The text of a 1-based line, without its newline.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// The bytes of a range as a string.
    public func text(of range: Range<Int>) -> String {
        String(decoding: bytes[range.clamped(to: 0..<bytes.count)], as: UTF8.self)
    }

    public static func == (lhs: SourceFile, rhs: SourceFile) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// A half-open byte range in one source file.
public struct SourceRange: Hashable, Sendable, CustomStringConvertible {
    public let file: SourceFile
    public let start: Int
    public let end: Int

    public init(file: SourceFile, start: Int, end: Int) {
        self.file = file
        self.start = start
        self.end = max(start, end)
    }

    /// `path:line:col` of the start.
    public var description: String {
        let (line, column) = file.lineAndColumn(of: start)
        return "\(file.path):\(line):\(column)"
    }

    /// The 1-based line of the start.
    public var line: Int { file.lineAndColumn(of: start).line }
    /// The 1-based byte column of the start.
    public var column: Int { file.lineAndColumn(of: start).column }

    /// The smallest range covering both.
    public func union(_ other: SourceRange) -> SourceRange {
        guard other.file === file else { return self }
        return SourceRange(file: file, start: min(start, other.start), end: max(end, other.end))
    }
}

extension SourceRange {
    /// A point in a Swift file that is not loaded: the call site of a DSL policy element,
    /// so provenance and diagnostics name `File.swift:line:column`.
    public static func callSite(fileID: String, line: UInt, column: UInt) -> SourceRange {
        let padding = Array(repeating: UInt8(ascii: "\n"), count: Int(max(line, 1)) - 1)
            + Array(repeating: UInt8(ascii: " "), count: Int(max(column, 1)) - 1)
        let file = SourceFile(path: fileID, bytes: padding)
        return SourceRange(file: file, start: padding.count, end: padding.count)
    }
}
