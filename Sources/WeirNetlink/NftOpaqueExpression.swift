import WeirNftables

/// An expression read from the kernel (or a batch) that Weir's program form cannot hold
/// exactly — a kind it has no type for (`limit`, `dynset`, …) or a known kind with attributes
/// its type lacks (`meta set`, `masq` with flags, …). It keeps the kernel's bytes, so nothing
/// is dropped silently, and re-encodes to the same bytes.
public struct NftOpaqueExpression: NftExpression, Equatable {
    public static let kind = "opaque"
    /// The kernel's expression name (`NFTA_EXPR_NAME`).
    public var name: String
    /// The payload of `NFTA_EXPR_DATA`: the expression's attributes as the kernel encodes them.
    public var attributes: [UInt8]
    /// libnftnl's debug text (`[ limit rate 10/second burst 5 type packets flags 0x0 ]`).
    public var text: String
    /// Why it is opaque.
    public var reason: String

    public init(name: String, attributes: [UInt8], text: String, reason: String) {
        self.name = name
        self.attributes = attributes
        self.text = text
        self.reason = reason
    }

    public var description: String { text }

    /// Equal when the kernel would see the same expression.
    public static func == (lhs: NftOpaqueExpression, rhs: NftOpaqueExpression) -> Bool {
        lhs.name == rhs.name && lhs.attributes == rhs.attributes
    }
}
