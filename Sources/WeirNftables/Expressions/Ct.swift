import WeirModel

/// `ct load KEY => reg`: conntrack data.
public struct CtExpression: NftExpression, Equatable {
    public static let kind = "ct"
    public enum Key: UInt32, Sendable {
        case state = 0, direction = 1, status = 2, mark = 3
        var name: String { ["state", "direction", "status", "mark"][Int(rawValue)] }
    }
    public var key: Key
    public var destination: NftRegister
    public init(_ key: Key, into destination: NftRegister = .r1) {
        self.key = key
        self.destination = destination
    }
    public var description: String { "[ ct load \(key.name) => reg \(destination) ]" }

    /// `ct state` bits (host order) of each conntrack state.
    public static func stateBit(_ state: ConntrackState) -> UInt32 {
        switch state {
        case .invalid: 0x01
        case .established: 0x02
        case .related: 0x04
        case .new: 0x08
        case .untracked: 0x40
        }
    }
}
