/// `meta load KEY => reg`: packet metadata.
public struct MetaExpression: NftExpression, Equatable {
    public static let kind = "meta"
    public enum Key: UInt32, Sendable {
        case length = 0, `protocol` = 1, mark = 3, iif = 4, oif = 5, iifname = 6, oifname = 7,
             nfproto = 15, l4proto = 16
        var name: String {
            switch self {
            case .length: "len"
            case .protocol: "protocol"
            case .mark: "mark"
            case .iif: "iif"
            case .oif: "oif"
            case .iifname: "iifname"
            case .oifname: "oifname"
            case .nfproto: "nfproto"
            case .l4proto: "l4proto"
            }
        }
    }
    public var key: Key
    public var destination: NftRegister
    public init(_ key: Key, into destination: NftRegister = .r1) {
        self.key = key
        self.destination = destination
    }
    public var description: String { "[ meta load \(key.name) => reg \(destination) ]" }
}
