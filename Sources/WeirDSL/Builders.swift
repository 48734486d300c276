import WeirDiagnostics
import WeirPolicy

/// Collects the parts of a block written with the DSL (`if`, `for` and `switch` work too).
@resultBuilder
public enum ListBuilder<Element> {
    public static func buildExpression(_ element: Element) -> [Element] { [element] }
    public static func buildExpression(_ elements: [Element]) -> [Element] { elements }
    public static func buildBlock(_ parts: [Element]...) -> [Element] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Element]?) -> [Element] { part ?? [] }
    public static func buildEither(first part: [Element]) -> [Element] { part }
    public static func buildEither(second part: [Element]) -> [Element] { part }
    public static func buildArray(_ parts: [[Element]]) -> [Element] { parts.flatMap { $0 } }
}

/// Where a DSL element was written: its Swift call site.
public struct CallSite: Sendable {
    let range: SourceRange
    init(_ fileID: String, _ line: UInt, _ column: UInt) {
        range = .callSite(fileID: fileID, line: line, column: column)
    }
}

/// The state of building a policy: the items so far and any invalid literal found.
public struct DSLContext {
    public internal(set) var items: [Located<Item>] = []
    public internal(set) var diagnostics: [Diagnostic] = []

    mutating func invalid(_ message: String, at site: CallSite) {
        diagnostics.append(.error(message, at: site.range))
    }
}

/// A policy written in Swift; it builds the same syntax tree as the `.weir` parser.
///
///     let policy = Policy {
///         Docker("classic")
///         Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/16") }
///         Container("c1") { Attach("bridge", address: "172.17.0.2"); Publish(10080, to: 80) }
///     }
///     let result = Compiler.compile(policy.ast)   // after checking policy.diagnostics
public struct Policy: Sendable {
    /// The syntax tree.
    public let ast: PolicyAST
    /// Literals that did not parse (a bad address, say), located at their Swift call sites.
    public let diagnostics: [Diagnostic]

    public init(@ListBuilder<any PolicyItem> _ content: () -> [any PolicyItem]) {
        var context = DSLContext()
        for item in content() { item.build(into: &context) }
        ast = PolicyAST(items: context.items)
        diagnostics = context.diagnostics
    }
}

/// A top-level element of a DSL policy.
public protocol PolicyItem {
    func build(into context: inout DSLContext)
}
