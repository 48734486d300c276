import WeirDiagnostics

/// A value with the source range it was written at. Two located values are equal when their
/// values are: the parser and the Swift DSL build equal trees from different sources.
public struct Located<Value: Sendable & Equatable>: Sendable, Equatable {
    public var value: Value
    public var range: SourceRange

    public init(_ value: Value, at range: SourceRange) {
        self.value = value
        self.range = range
    }

    public static func == (lhs: Located, rhs: Located) -> Bool { lhs.value == rhs.value }

    /// The same range with a transformed value.
    public func map<T>(_ transform: (Value) -> T) -> Located<T> { Located<T>(transform(value), at: range) }
}
