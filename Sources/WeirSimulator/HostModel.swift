import WeirModel
import WeirSema

/// The machine a ruleset runs on, as far as packet traversal needs it: interfaces and their
/// addresses, routes, forwarding, and whether bridged traffic passes through iptables.
public struct HostModel: Sendable {
    public struct Interface: Sendable, Equatable {
        public var name: String
        public var addresses: [Prefix]
        /// A Linux bridge (a network's `docker0`): a packet that arrives on it for an address
        /// routed back out of it is bridged between two of its ports, not routed (see
        /// `bridgeNetfilter`). Any other interface routes such a packet through FORWARD.
        public var isBridge: Bool
        public init(name: String, addresses: [Prefix], isBridge: Bool = false) {
            self.name = name
            self.addresses = addresses
            self.isBridge = isBridge
        }
    }

    public struct Route: Sendable, Equatable {
        public var destination: Prefix
        public var interface: String
        public init(destination: Prefix, interface: String) {
            self.destination = destination
            self.interface = interface
        }
    }

    public var interfaces: [Interface]
    /// Connected routes come from the interfaces' addresses; these are added to them.
    public var extraRoutes: [Route]
    /// `net.ipv4.ip_forward`: Docker turns it on.
    public var ipForward: Bool
    /// `net.bridge.bridge-nf-call-iptables`: traffic between two ports of one bridge traverses
    /// PREROUTING, FORWARD as `-i br -o br` and POSTROUTING, whatever `ipForward` says (on by
    /// default in every namespace on this kernel); off, it passes no chain at all.
    public var bridgeNetfilter: Bool

    public init(interfaces: [Interface], extraRoutes: [Route] = [], ipForward: Bool = true, bridgeNetfilter: Bool = true) {
        var all = interfaces
        if !all.contains(where: { $0.name == "lo" }) {
            all.insert(Interface(name: "lo", addresses: [Prefix("127.0.0.1/8")!, Prefix("::1/128")!]), at: 0)
        }
        self.interfaces = all
        self.extraRoutes = extraRoutes
        self.ipForward = ipForward
        self.bridgeNetfilter = bridgeNetfilter
    }

    /// A host no rule can tell apart from any other: only loopback.
    public static let empty = HostModel(interfaces: [])

    /// Whether an address is one of the host's own (all of 127.0.0.0/8 is).
    public func isLocal(_ address: IPAddress) -> Bool {
        if address.family == .ipv4, Prefix("127.0.0.0/8")!.contains(address) { return true }
        return interfaces.contains { $0.addresses.contains { $0.address == address } }
    }

    /// The interface a packet to `destination` leaves by: `lo` for local addresses, else the
    /// longest matching connected or extra route; nil when there is no route.
    public func route(_ destination: IPAddress) -> String? {
        if isLocal(destination) { return "lo" }
        var best: (length: Int, interface: String)? = nil
        let candidates = interfaces.flatMap { i in i.addresses.map { Route(destination: $0.canonical, interface: i.name) } } + extraRoutes
        for route in candidates where route.destination.contains(destination) {
            if best == nil || route.destination.length > best!.length { best = (route.destination.length, route.interface) }
        }
        return best?.interface
    }

    /// The address MASQUERADE picks on `interface`: its first address of the family.
    public func primaryAddress(of interface: String, family: Family) -> IPAddress? {
        interfaces.first { $0.name == interface }?.addresses.first { $0.family == family }?.address
    }

    /// The routing type of an address (what `addrtype` / `fib … type` match).
    public func addressType(of address: IPAddress) -> AddressType {
        if address.isUnspecified { return .unspec }
        if isLocal(address) { return .local }
        switch address {
        case .v4(let v):
            if v >> 28 == 0xE { return .multicast }
            if v == 0xFFFF_FFFF { return .broadcast }
            for i in interfaces { for p in i.addresses where p.family == .ipv4 && p.length < 31 && p.last == address { return .broadcast } }
        case .v6(let v):
            if v >> 120 == 0xFF { return .multicast }
        }
        return .unicast
    }
}

extension HostModel {
    /// The host of a checked policy: its interfaces (the first non-loopback one carries the
    /// default route), one bridge per network with its gateway addresses, forwarding on.
    public init(policy: CheckedPolicy) {
        var interfaces = policy.host.interfaces.map { Interface(name: $0.name, addresses: $0.addresses) }
        for network in policy.networks {
            let addresses = Family.allCases.compactMap { family -> Prefix? in
                guard let gateway = network.gateways[family], let subnet = network.subnets[family] else { return nil }
                return Prefix(address: gateway, length: subnet.length)
            }
            interfaces.append(Interface(name: network.bridge, addresses: addresses, isBridge: true))
        }
        var routes: [Route] = []
        if let uplink = policy.host.interfaces.first(where: { $0.name != "lo" }) {
            routes.append(Route(destination: Prefix("0.0.0.0/0")!, interface: uplink.name))
            routes.append(Route(destination: Prefix("::/0")!, interface: uplink.name))
        }
        self.init(interfaces: interfaces, extraRoutes: routes)
    }
}
