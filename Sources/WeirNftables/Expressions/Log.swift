/// `log [prefix P] [level L]`: logs the packet and continues.
public struct LogExpression: NftExpression, Equatable {
    public static let kind = "log"
    public var prefix: String?
    public var level: UInt32?
    public init(prefix: String?, level: UInt32?) {
        self.prefix = prefix
        self.level = level
    }
    public var description: String {
        var out = "[ log"
        if let prefix { out += " prefix \(prefix)" }
        if let level { out += " level \(level)" }
        return out + " ]"
    }
}
