/// What a rule does when it matches.
public enum Target: Sendable, Hashable {
    /// Ends this base chain's traversal, letting the packet continue to the next hook/chain.
    case accept
    /// Discards the packet.
    case drop
    /// Discards the packet and answers with an ICMP error (`nil`: the backend's default, port unreachable).
    case reject(with: String?)
    /// Returns from a user chain (or applies the base chain's policy).
    case `return`
    /// Calls a user chain; a `return` there continues after this rule.
    case jump(String)
    /// Continues in a user chain; a `return` there returns from the calling chain.
    case goto(String)
    /// Rewrites the destination (new connections; nat PREROUTING/OUTPUT).
    case dnat(NATDestination)
    /// Rewrites the source to a fixed address (nat POSTROUTING/INPUT).
    case snat(NATDestination)
    /// Rewrites the source to the out interface's primary address.
    case masquerade(ports: PortRange?)
    /// Logs the packet to the kernel log and continues.
    case log(prefix: String?, level: UInt8?)
    /// Fills in a missing checksum (iptables `CHECKSUM --checksum-fill`, used by Docker for SCTP).
    case checksumFill
}

/// An address (or address range) and optional port range a NAT target rewrites to.
public struct NATDestination: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var ports: PortRange?

    public init(address: IPAddress, ports: PortRange? = nil) {
        self.address = address
        self.ports = ports
    }

    /// iptables spelling: `172.17.0.2:80`, `[fd00::2]:80`, `1.2.3.4`.
    public var description: String {
        guard let ports else { return address.description }
        let host = address.family == .ipv6 ? "[\(address)]" : address.description
        return "\(host):\(ports)"
    }
}
