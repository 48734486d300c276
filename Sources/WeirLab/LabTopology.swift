import WeirModel
import WeirSema

/// What a lab builds: the policy's host reduced to interfaces, bridges and container endpoints,
/// with every address the lab needs already chosen. A plain value, so it can be written by hand
/// in tests or derived from a `CheckedPolicy` with `init(policy:)`.
public struct LabTopology: Sendable, Equatable {
    /// A host interface (`enp0s8`) and the external peer on the other end of its cable.
    public struct Uplink: Sendable, Equatable {
        /// The interface name in the host namespace.
        public var interface: String
        /// The host's addresses on it, with the subnet's length (`10.0.3.121/24`).
        public var addresses: [Prefix]
        /// The external peer's addresses, one per host address, same length (`10.0.3.122/24`).
        public var peerAddresses: [Prefix]

        public init(interface: String, addresses: [Prefix], peerAddresses: [Prefix]) {
            self.interface = interface
            self.addresses = addresses
            self.peerAddresses = peerAddresses
        }
    }

    /// A network's Linux bridge in the host namespace.
    public struct Bridge: Sendable, Equatable {
        /// The policy's network name (`bridge`).
        public var network: String
        /// The bridge device (`docker0`).
        public var device: String
        /// Gateway addresses with the subnet's length (`172.17.0.1/16`), one per family.
        public var gateways: [Prefix]
        /// Internal networks give their containers no default route.
        public var isInternal: Bool
        /// Docker with `userland-proxy off`: hairpin mode on the bridge's ports and
        /// `net.ipv4.conf.<bridge>.route_localnet=1`.
        public var hairpin: Bool

        public init(network: String, device: String, gateways: [Prefix], isInternal: Bool = false, hairpin: Bool = false) {
            self.network = network
            self.device = device
            self.gateways = gateways
            self.isInternal = isInternal
            self.hairpin = hairpin
        }
    }

    /// A container's interface on one bridge.
    public struct Endpoint: Sendable, Equatable {
        /// Index into `bridges`.
        public var bridge: Int
        /// The interface name inside the container (`eth0`, `eth1`, …).
        public var interface: String
        /// The container's addresses, with the subnet's length (`172.17.0.2/16`).
        public var addresses: [Prefix]
        /// Default routes through this interface (the network's gateways); empty for all but the
        /// first non-internal network of each family.
        public var defaultRoutes: [IPAddress]

        public init(bridge: Int, interface: String, addresses: [Prefix], defaultRoutes: [IPAddress]) {
            self.bridge = bridge
            self.interface = interface
            self.addresses = addresses
            self.defaultRoutes = defaultRoutes
        }
    }

    /// A published port, as the policy wrote it (ranges expanded).
    public struct Published: Sendable, Equatable {
        public var hostAddress: IPAddress?
        public var hostPort: UInt16
        public var containerPort: UInt16
        public var transport: TransportProtocol

        public init(hostAddress: IPAddress? = nil, hostPort: UInt16, containerPort: UInt16, transport: TransportProtocol = .tcp) {
            self.hostAddress = hostAddress
            self.hostPort = hostPort
            self.containerPort = containerPort
            self.transport = transport
        }
    }

    public struct Container: Sendable, Equatable {
        public var name: String
        public var endpoints: [Endpoint]
        public var published: [Published]

        public init(name: String, endpoints: [Endpoint], published: [Published] = []) {
            self.name = name
            self.endpoints = endpoints
            self.published = published
        }
    }

    public var uplinks: [Uplink]
    public var bridges: [Bridge]
    public var containers: [Container]

    public init(uplinks: [Uplink], bridges: [Bridge], containers: [Container]) {
        self.uplinks = uplinks
        self.bridges = bridges
        self.containers = containers
    }

    /// Whether any address is IPv6 (the host then forwards IPv6 too).
    public var hasIPv6: Bool {
        uplinks.contains { $0.addresses.contains { $0.family == .ipv6 } }
            || bridges.contains { $0.gateways.contains { $0.family == .ipv6 } }
    }

    public func container(named name: String) -> Container? { containers.first { $0.name == name } }

    /// The host's topology as a policy describes it. Every host interface gets an external peer
    /// with the next free address of each of its subnets (10.0.3.121/24 → 10.0.3.122/24).
    public init(policy: CheckedPolicy) throws {
        var used = Set<IPAddress>()
        for interface in policy.host.interfaces { for prefix in interface.addresses { used.insert(prefix.address) } }
        for network in policy.networks { for (_, gateway) in network.gateways { used.insert(gateway) } }
        for container in policy.containers {
            for endpoint in container.endpoints { for (_, address) in endpoint.addresses { used.insert(address) } }
        }

        var uplinks: [Uplink] = []
        // `lo` is the host namespace's own loopback, not an uplink with an external peer.
        for interface in policy.host.interfaces where interface.name != "lo" {
            var peers: [Prefix] = []
            for prefix in interface.addresses {
                guard let peer = Self.nextFreeAddress(after: prefix, avoiding: used) else {
                    throw LabError.noPeerAddress(interface: interface.name, prefix: prefix)
                }
                used.insert(peer)
                peers.append(Prefix(address: peer, length: prefix.length))
            }
            uplinks.append(Uplink(interface: interface.name, addresses: interface.addresses, peerAddresses: peers))
        }

        let bridges = policy.networks.map { network in
            Bridge(network: network.name, device: network.bridge,
                   gateways: Family.allCases.compactMap { family in
                       guard let gateway = network.gateways[family], let subnet = network.subnets[family] else { return nil }
                       return Prefix(address: gateway, length: subnet.length)
                   },
                   isInternal: network.isInternal,
                   hairpin: !policy.host.userlandProxy)
        }

        let containers = policy.containers.map { container in
            var routed = Set<Family>()
            var endpoints: [Endpoint] = []
            for (index, endpoint) in container.endpoints.enumerated() {
                let network = policy.networks[endpoint.network]
                var addresses: [Prefix] = []
                var routes: [IPAddress] = []
                for family in Family.allCases {
                    guard let address = endpoint.addresses[family], let subnet = network.subnets[family] else { continue }
                    addresses.append(Prefix(address: address, length: subnet.length))
                    if !network.isInternal, !routed.contains(family), let gateway = network.gateways[family] {
                        routed.insert(family)
                        routes.append(gateway)
                    }
                }
                endpoints.append(Endpoint(bridge: endpoint.network, interface: "eth\(index)", addresses: addresses, defaultRoutes: routes))
            }
            let published = container.bindings.map {
                Published(hostAddress: $0.hostAddress, hostPort: $0.hostPort, containerPort: $0.containerPort, transport: $0.transport)
            }
            return Container(name: container.name, endpoints: endpoints, published: published)
        }
        self.init(uplinks: uplinks, bridges: bridges, containers: containers)
    }

    /// The first usable address after `prefix.address` in its subnet, wrapping around, that is
    /// not in `used`: no network or broadcast address for IPv4 up to /30, no subnet-router
    /// anycast address for IPv6 up to /126. Nil when the subnet has no room (/32, /128).
    public static func nextFreeAddress(after prefix: Prefix, avoiding used: Set<IPAddress> = []) -> IPAddress? {
        let family = prefix.family
        let hostBits = family.bitWidth - prefix.length
        guard hostBits >= 1 else { return nil }
        let first = prefix.network.bits
        let last = prefix.last.bits
        var low = first, high = last
        if family == .ipv4, hostBits >= 2 { low += 1; high -= 1 }
        if family == .ipv6, hostBits >= 2 { low += 1 }
        guard low <= high else { return nil }
        let size = high - low + 1
        let own = prefix.address.bits
        // Search at most 65,536 candidates: the lab never needs more than a handful.
        var candidate = own
        for _ in 0..<min(size, 65_536) {
            candidate = (candidate >= high || candidate < low) ? low : candidate + 1
            let address = IPAddress(family: family, bits: candidate)
            if candidate != own, !used.contains(address) { return address }
        }
        return nil
    }
}
