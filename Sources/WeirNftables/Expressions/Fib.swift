/// `fib FLAGS RESULT => reg`: a routing lookup (Weir uses `fib saddr|daddr type`).
public struct FibExpression: NftExpression, Equatable {
    public static let kind = "fib"
    /// `NFTA_FIB_F_*` flags.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let saddr = Flags(rawValue: 1)
        public static let daddr = Flags(rawValue: 2)
        public static let mark = Flags(rawValue: 4)
        public static let iif = Flags(rawValue: 8)
        public static let oif = Flags(rawValue: 16)
    }
    public enum Result: UInt32, Sendable { case oif = 1, oifname = 2, addressType = 3 }
    public var flags: Flags
    public var result: Result
    public var destination: NftRegister
    public init(flags: Flags, result: Result, into destination: NftRegister = .r1) {
        self.flags = flags
        self.result = result
        self.destination = destination
    }
    public var description: String {
        var parts: [String] = []
        if flags.contains(.saddr) { parts.append("saddr") }
        if flags.contains(.daddr) { parts.append("daddr") }
        if flags.contains(.mark) { parts.append("mark") }
        if flags.contains(.iif) { parts.append("iif") }
        if flags.contains(.oif) { parts.append("oif") }
        let result = switch self.result { case .oif: "oif"; case .oifname: "oifname"; case .addressType: "type" }
        return "[ fib \(parts.joined(separator: " . ")) \(result) => reg \(destination) ]"
    }
}
