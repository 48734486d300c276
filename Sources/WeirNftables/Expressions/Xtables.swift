/// `match NAME rev N` / `target NAME rev N`: an x_tables extension iptables-nft stores as an
/// opaque blob (`info` is the extension's C struct in host byte order).
public struct XtablesExpression: NftExpression, Equatable {
    public static let kind = "xt"
    public enum Role: Sendable { case match, target }
    public var role: Role
    public var name: String
    public var revision: UInt32
    public var info: [UInt8]
    public init(_ role: Role, name: String, revision: UInt32, info: [UInt8]) {
        self.role = role
        self.name = name
        self.revision = revision
        self.info = info
    }
    public var description: String { "[ \(role == .match ? "match" : "target") name \(name) rev \(revision) ]" }
}
