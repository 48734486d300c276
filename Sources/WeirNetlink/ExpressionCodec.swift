import WeirNftables

/// Why an expression of a program cannot be written faithfully (libnftnl would truncate it, or
/// it does not fit a netlink attribute).
struct ExpressionEncodingError: Error {
    var message: String
}

/// Why an expression libnftnl parsed has no faithful program form (it is then kept as an
/// `NftOpaqueExpression`).
struct Unrepresentable: Error {
    var reason: String
}

/// An expression kind WeirNetlink encodes with libnftnl and decodes back; each kind conforms in
/// its own file (`Expressions+Meta.swift`, …).
protocol NetlinkExpression: NftExpression {
    /// libnftnl's names of the kind (`meta`; `match` and `target` for x_tables).
    static var nftnlNames: [String] { get }
    /// The libnftnl name of this value.
    var nftnlName: String { get }
    /// Sets the attributes of an expression `nftnl_expr_alloc(nftnlName)` returned.
    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError)
    /// Reads an expression libnftnl parsed; throws when the program form cannot hold it exactly.
    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> Self
}

extension NetlinkExpression {
    var nftnlName: String { Self.nftnlNames[0] }
}

enum ExpressionCodec {
    /// Every kind with a libnftnl codec. Adding a kind adds its file and one entry here.
    static let kinds: [any NetlinkExpression.Type] = [
        MetaExpression.self, PayloadExpression.self, CmpExpression.self, BitwiseExpression.self,
        RangeExpression.self, CtExpression.self, FibExpression.self, ImmediateExpression.self,
        NatExpression.self, MasqExpression.self, RejectExpression.self, LogExpression.self,
        CounterExpression.self, XtablesExpression.self, LookupExpression.self,
    ]

    static let byName: [String: any NetlinkExpression.Type] = {
        var table: [String: any NetlinkExpression.Type] = [:]
        for kind in kinds { for name in kind.nftnlNames { table[name] = kind } }
        return table
    }()

    /// The program form of a parsed expression: its kind's decoder, or an opaque expression
    /// carrying the kernel's bytes when no decoder can hold it exactly.
    static func decode(_ e: NftnlExprRef, name: String, data: [UInt8]?) -> any NftExpression {
        if let kind = byName[name] {
            do {
                return try kind.decode(e)
            } catch {
                return NftOpaqueExpression(name: name, attributes: data ?? [], text: e.debugText, reason: error.reason)
            }
        }
        return NftOpaqueExpression(name: name, attributes: data ?? [], text: e.debugText,
                                   reason: "Weir's program form has no '\(name)' expression")
    }

    // Shared checks for encoders.

    /// Data values are copied into a fixed 64-byte buffer by libnftnl: longer would overrun it.
    static func checkValue(_ bytes: [UInt8], _ what: String) throws(ExpressionEncodingError) {
        guard bytes.count <= NF.dataValueMaxLength else {
            throw ExpressionEncodingError(message: "\(what) has \(bytes.count) bytes; a data value holds at most \(NF.dataValueMaxLength) (NFT_DATA_VALUE_MAXLEN)")
        }
    }

    /// libnftnl copies strings with strdup: a NUL would silently cut them.
    static func checkString(_ text: String, _ what: String, maxBytes: Int) throws(ExpressionEncodingError) {
        guard !text.utf8.contains(0) else {
            throw ExpressionEncodingError(message: "\(what) contains a NUL byte")
        }
        guard text.utf8.count <= maxBytes else {
            throw ExpressionEncodingError(message: "\(what) is \(text.utf8.count) bytes long; at most \(maxBytes) fit")
        }
    }

    /// Rejects attributes a decoder does not understand, so nothing is dropped silently.
    static func requireUnset(_ e: NftnlExprRef, _ attrs: [(UInt16, String)]) throws(Unrepresentable) {
        for (attr, what) in attrs where e.isSet(attr) {
            throw Unrepresentable(reason: "\(e.name) with \(what) has no program form")
        }
    }

    static func require<T>(_ value: T?, _ e: NftnlExprRef, _ what: String) throws(Unrepresentable) -> T {
        guard let value else { throw Unrepresentable(reason: "\(e.name) without \(what)") }
        return value
    }
}
