import WeirModel

/// The header fields the model's matches look at, plus the packet's conntrack state.
public struct Packet: Sendable, Hashable, CustomStringConvertible {
    public var source: IPAddress
    public var destination: IPAddress
    public var transport: TransportProtocol
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var state: ConntrackState

    public init(source: IPAddress, destination: IPAddress, transport: TransportProtocol,
                sourcePort: UInt16 = 0, destinationPort: UInt16 = 0, state: ConntrackState = .new) {
        self.source = source
        self.destination = destination
        self.transport = transport
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.state = state
    }

    public var family: Family { source.family }

    /// `SRC=… DST=… PROTO=TCP SPT=… DPT=…` as the kernel's packet log prints it.
    public var description: String {
        var text = "SRC=\(source) DST=\(destination) PROTO=\(protocolName)"
        if transport.hasPorts { text += " SPT=\(sourcePort) DPT=\(destinationPort)" }
        return text
    }

    /// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, or the number.
    var protocolName: String {
        switch transport {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        case .icmp: "ICMP"
        case .icmpv6: "ICMPv6"
        default: String(transport.number)
        }
    }
}

/// Where a packet enters the host.
public enum Origin: Sendable, Hashable {
    /// Received on an interface.
    case interface(String)
    /// Sent by a local process.
    case local
}

/// One line of a trace: a rule that matched, a return, or a base chain's policy — the kernel's
/// `TRACE` format `table:chain:rule|return|policy:N`.
public struct TraceStep: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case rule, `return`, policy }
    public var table: String
    public var chain: String
    public var kind: Kind
    /// 1-based: the rule's position, or the chain's rule count + 1 for an implicit return/policy.
    public var number: Int
    public var input: String?
    public var output: String?
    public var packet: Packet

    /// `table:chain:kind:N`.
    public var location: String { "\(table):\(chain):\(kind.rawValue):\(number)" }

    public var description: String { "\(location) IN=\(input ?? "") OUT=\(output ?? "") \(packet)" }
}

/// What finally happens to a packet.
public enum Outcome: Sendable, Equatable, CustomStringConvertible {
    /// Given to a local process.
    case deliveredLocally
    /// Routed through the host and sent out an interface.
    case forwarded(String)
    /// Sent by a local process out an interface (not back to the host itself).
    case sent(String)
    /// Dropped (or rejected) by a rule or policy, at that trace step.
    case dropped(at: String)
    /// No route to the destination, or forwarding is off.
    case unroutable

    public var description: String {
        switch self {
        case .deliveredLocally: "delivered locally"
        case .forwarded(let interface): "forwarded out \(interface)"
        case .sent(let interface): "sent out \(interface)"
        case .dropped(let location): "dropped at \(location)"
        case .unroutable: "dropped: no route"
        }
    }
}

/// The address and port rewrites applied to a new connection, so replies can be un-NATed.
public struct Translation: Sendable, Equatable {
    /// The packet as it arrived, and as it left.
    public var original: Packet
    public var translated: Packet
}

/// A packet's path through the host.
public struct Traversal: Sendable, Equatable {
    public var steps: [TraceStep]
    public var outcome: Outcome
    /// The packet as it was delivered or sent (after NAT).
    public var packet: Packet
    /// The interface it left by (or `lo` when delivered locally), for replies.
    public var exitInterface: String?
    public var origin: Origin
    public var translation: Translation?
}
