/// How bad a diagnostic is.
public enum Severity: String, Sendable, Hashable, Comparable {
    case note, warning, error

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        let order: [Severity] = [.note, .warning, .error]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}

/// One message about the input, located when possible. Diagnostics are values: passes
/// collect them and the driver decides what to print and which exit code to use.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var severity: Severity
    public var message: String
    public var range: SourceRange?
    /// Further located remarks ("first declared here").
    public var notes: [Diagnostic]

    public init(_ severity: Severity, _ message: String, at range: SourceRange?, notes: [Diagnostic] = []) {
        self.severity = severity
        self.message = message
        self.range = range
        self.notes = notes
    }

    public static func error(_ message: String, at range: SourceRange?, notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(.error, message, at: range, notes: notes)
    }

    public static func note(_ message: String, at range: SourceRange?) -> Diagnostic {
        Diagnostic(.note, message, at: range)
    }

    /// `path:line:col: error: message` (no snippet).
    public var description: String {
        if let range { return "\(range): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// An error thrown by a pass that gives up: it carries every diagnostic collected so far.
public struct DiagnosticError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics during a pass.
public struct DiagnosticBag: Sendable {
    public private(set) var diagnostics: [Diagnostic] = []
    public init() {}

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    public mutating func append(_ diagnostic: Diagnostic) { diagnostics.append(diagnostic) }
    public mutating func append(contentsOf other: [Diagnostic]) { diagnostics.append(contentsOf: other) }
    public mutating func error(_ message: String, at range: SourceRange?, notes: [Diagnostic] = []) {
        diagnostics.append(.error(message, at: range, notes: notes))
    }

    /// Diagnostics in source order (file path, then offset), stable for equal positions.
    public var sorted: [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            let (ra, rb) = (a.element.range, b.element.range)
            switch (ra, rb) {
            case let (x?, y?):
                if x.file.path != y.file.path { return x.file.path < y.file.path }
                if x.start != y.start { return x.start < y.start }
                return a.offset < b.offset
            case (nil, _?): return false
            case (_?, nil): return true
            case (nil, nil): return a.offset < b.offset
            }
        }.map(\.element)
    }
}
