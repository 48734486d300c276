import Foundation
import WeirModel
import WeirSema

/// A policy's host built out of network namespaces, with real traffic between them.
///
/// `Lab.up` makes, all named `weirlab-<id>-…` (see `LabLayout`):
/// - the **host** namespace: loopback up, `net.ipv4.ip_forward=1` (and IPv6 forwarding when the
///   topology has IPv6), `net.bridge.bridge-nf-call-iptables=1`/`-ip6tables=1` when the kernel
///   has br_netfilter, each policy interface (`enp0s8 10.0.3.121/24`) as one end of a veth pair,
///   each network's bridge (`docker0 172.17.0.1/16`) up;
/// - per host interface an **external peer** namespace holding the pair's other end, `eth0`,
///   with the next free address of each subnet (`10.0.3.122/24`) and default routes via the host;
/// - per **container** a namespace with `eth0`, `eth1`, … (the policy's addresses, default route
///   via the first non-internal network's gateway), whose veth peers `veth<c>x<e>` in the host
///   namespace are enslaved to the bridges.
///
/// Then it calls `apply(hostNamespace)` to load a ruleset, so the lab depends on no backend.
/// Nothing is created in, moved through or changed in the root namespace. If any step fails
/// (including `apply`), every namespace made so far is deleted before the error is rethrown.
/// `down()` (or, at the latest, `deinit`, unless `keep()` was called) stops the lab's servers and
/// deletes its namespaces.
public final class Lab: @unchecked Sendable {
    public struct Options: Sendable {
        /// Run `modprobe br_netfilter` when the host namespace has no `net.bridge` sysctls. Off by
        /// default: loading the module changes bridged traffic in every namespace, the root
        /// one included (its bridges start passing through iptables).
        public var loadBridgeNetfilterModule: Bool

        public init(loadBridgeNetfilterModule: Bool = false) {
            self.loadBridgeNetfilterModule = loadBridgeNetfilterModule
        }
    }

    /// Whether frames bridged between two ports of one bridge pass the IP hooks (FORWARD with
    /// `-i docker0 -o docker0`), which `icc off` relies on.
    ///
    /// Since Linux 5.3 the `net.bridge.bridge-nf-call-*` switches are per network namespace and
    /// start at 1 in every new one, once br_netfilter is loaded (or built in). On the development
    /// kernel (6.18, `CONFIG_BRIDGE_NETFILTER=y`, no loadable modules, iptables 1.8.9 nf_tables)
    /// they exist in every namespace; the lab writes 1 anyway. Measured there
    /// (`LabBridgeNetfilterTests`): a c1 → c2 connection over docker0 passes nat PREROUTING and
    /// filter FORWARD with in = out = docker0; its SYN is the one packet that reaches
    /// `-i docker0 -o docker0 -j ACCEPT|DROP`, everything after it matches
    /// `-o docker0 --ctstate RELATED,ESTABLISHED` first. With the switch at 0 the same
    /// connection bypasses iptables completely.
    public enum BridgeNetfilter: String, Sendable, Equatable {
        /// `net.bridge.bridge-nf-call-iptables` (and `-ip6tables`) are 1 in the host namespace.
        case enabled
        /// The kernel has no br_netfilter: bridged frames bypass iptables and `icc off` has no effect.
        case unavailable
    }

    /// An external peer: the machine on the other end of a host interface.
    public struct Peer: Sendable, Equatable {
        public var namespace: String
        /// Its interface (`eth0`).
        public var interface: String
        /// The host interface it is cabled to (`enp0s8`).
        public var hostInterface: String
        public var addresses: [Prefix]
        public var hostAddresses: [Prefix]

        /// The peer's address of a family.
        public func address(_ family: Family = .ipv4) -> IPAddress? { addresses.first { $0.family == family }?.address }
        /// The host's address on this link.
        public func hostAddress(_ family: Family = .ipv4) -> IPAddress? { hostAddresses.first { $0.family == family }?.address }
    }

    /// A container's namespace.
    public struct Container: Sendable, Equatable {
        public struct Interface: Sendable, Equatable {
            /// The name inside the container (`eth0`).
            public var name: String
            /// The bridge device (`docker0`).
            public var bridge: String
            /// The veth end on the bridge, in the host namespace.
            public var bridgePort: String
            public var addresses: [Prefix]
        }
        public var name: String
        public var namespace: String
        public var interfaces: [Interface]
        public var published: [LabTopology.Published]

        /// The container's first address of a family.
        public func address(_ family: Family = .ipv4) -> IPAddress? {
            interfaces.lazy.compactMap { $0.addresses.first { $0.family == family }?.address }.first
        }
    }

    public let id: LabID
    public let topology: LabTopology
    public let layout: LabLayout
    public let peers: [Peer]
    public let containers: [Container]
    public let bridgeNetfilter: BridgeNetfilter

    public var hostNamespace: String { layout.hostNamespace }
    /// Every namespace, host first.
    public var namespaces: [String] { layout.namespaces }

    private let lock = NSLock()
    private var isDown = false
    private var isKept = false
    private var servers: [TrafficServer] = []

    private init(id: LabID, topology: LabTopology, layout: LabLayout, bridgeNetfilter: BridgeNetfilter) {
        self.id = id
        self.topology = topology
        self.layout = layout
        self.bridgeNetfilter = bridgeNetfilter
        peers = topology.uplinks.enumerated().map { index, uplink in
            Peer(namespace: layout.peerNamespaces[index], interface: LabLayout.peerInterface, hostInterface: uplink.interface,
                 addresses: uplink.peerAddresses, hostAddresses: uplink.addresses)
        }
        containers = topology.containers.enumerated().map { index, container in
            Container(name: container.name, namespace: layout.containerNamespaces[index],
                      interfaces: container.endpoints.enumerated().map { e, endpoint in
                          .init(name: endpoint.interface, bridge: topology.bridges[endpoint.bridge].device,
                                bridgePort: layout.bridgePorts[index][e], addresses: endpoint.addresses)
                      },
                      published: container.published)
        }
    }

    deinit {
        let keep = lock.withLock { isKept }
        if !keep { try? down() }
    }

    // MARK: Building

    /// Builds the lab for a topology and loads the ruleset with `apply(hostNamespace)`.
    public static func up(_ topology: LabTopology, id: LabID = .generate(), options: Options = Options(),
                          apply: (_ hostNamespace: String) throws -> Void) throws -> Lab {
        let layout = LabLayout(topology: topology, id: id)
        var created: [String] = []
        do {
            for name in layout.namespaces {
                try NamespaceControl.add(name)
                created.append(name)
            }
            let bridgeNetfilter = try build(topology, layout, options)
            let lab = Lab(id: id, topology: topology, layout: layout, bridgeNetfilter: bridgeNetfilter)
            created = []  // the lab owns them now
            do {
                try apply(layout.hostNamespace)
            } catch {
                try? lab.down()
                throw error
            }
            return lab
        } catch {
            try? NamespaceControl.delete(created.reversed())
            throw error
        }
    }

    /// Builds the lab for a checked policy's host.
    public static func up(policy: CheckedPolicy, id: LabID = .generate(), options: Options = Options(),
                          apply: (_ hostNamespace: String) throws -> Void) throws -> Lab {
        try up(LabTopology(policy: policy), id: id, options: options, apply: apply)
    }

    /// `up` on a thread of its own, so waiting for `ip` never blocks Swift concurrency's pool.
    public static func up(_ topology: LabTopology, id: LabID = .generate(), options: Options = Options(),
                          apply: @escaping @Sendable (_ hostNamespace: String) throws -> Void) async throws -> Lab {
        try await offload { try up(topology, id: id, options: options, apply: apply) }
    }

    private static func build(_ topology: LabTopology, _ layout: LabLayout, _ options: Options) throws -> BridgeNetfilter {
        let ip = try LabCommand.ip()
        func batch(_ namespace: String, _ lines: [String]) throws {
            try LabCommand.check(ip, ["-n", namespace, "-batch", "-"], stdin: lines.map { $0 + "\n" }.joined())
        }
        func addressLine(_ prefix: Prefix, _ device: String) -> String {
            "addr add \(prefix) dev \(device)" + (prefix.family == .ipv6 ? " nodad" : "")
        }
        func routeLine(_ gateway: IPAddress, _ device: String) -> String {
            "route add \(gateway.family == .ipv6 ? "::/0" : "0.0.0.0/0") via \(gateway) dev \(device)"
        }

        // Names go into `ip -batch` lines: each must be one harmless word.
        let names = topology.uplinks.map(\.interface) + topology.bridges.map(\.device)
            + topology.containers.flatMap { $0.endpoints.map(\.interface) }
        for name in names where !isInterfaceName(name) { throw LabError.invalidInterfaceName(name) }

        // No IPv6 duplicate address detection anywhere: interfaces born in these namespaces get
        // usable link-local addresses at once. (With DAD, the first forwarded IPv6 packets wait
        // about a second for the host's neighbour discovery on a still-tentative link.)
        for namespace in layout.namespaces {
            try Sysctl.write("net.ipv6.conf.all.accept_dad", "0", in: namespace)
            try Sysctl.write("net.ipv6.conf.default.accept_dad", "0", in: namespace)
        }

        // The host: every veth pair is created here with its other end born in the peer's or
        // container's namespace, so nothing ever exists in the root namespace.
        var host = ["link set lo up"]
        for (index, uplink) in topology.uplinks.enumerated() {
            host.append("link add \(uplink.interface) type veth peer name \(LabLayout.peerInterface) netns \(layout.peerNamespaces[index])")
            host += uplink.addresses.map { addressLine($0, uplink.interface) }
            host.append("link set \(uplink.interface) up")
        }
        for bridge in topology.bridges {
            host.append("link add \(bridge.device) type bridge")
            host += bridge.gateways.map { addressLine($0, bridge.device) }
            host.append("link set \(bridge.device) up")
        }
        for (c, container) in topology.containers.enumerated() {
            for (e, endpoint) in container.endpoints.enumerated() {
                let port = layout.bridgePorts[c][e]
                let bridge = topology.bridges[endpoint.bridge]
                host.append("link add \(port) type veth peer name \(endpoint.interface) netns \(layout.containerNamespaces[c])")
                host.append("link set \(port) master \(bridge.device)")
                if bridge.hairpin { host.append("link set \(port) type bridge_slave hairpin on") }
                host.append("link set \(port) up")
            }
        }
        try batch(layout.hostNamespace, host)

        for (index, uplink) in topology.uplinks.enumerated() {
            let device = LabLayout.peerInterface
            var peer = ["link set lo up"]
            peer += uplink.peerAddresses.map { addressLine($0, device) }
            peer.append("link set \(device) up")
            peer += uplink.addresses.map { routeLine($0.address, device) }
            try batch(layout.peerNamespaces[index], peer)
        }
        for (c, container) in topology.containers.enumerated() {
            var lines = ["link set lo up"]
            for endpoint in container.endpoints {
                lines += endpoint.addresses.map { addressLine($0, endpoint.interface) }
                lines.append("link set \(endpoint.interface) up")
            }
            for endpoint in container.endpoints {
                lines += endpoint.defaultRoutes.map { routeLine($0, endpoint.interface) }
            }
            try batch(layout.containerNamespaces[c], lines)
        }

        // Sysctls of the host namespace, written from a thread inside it.
        let host0 = layout.hostNamespace
        guard try Sysctl.write("net.ipv4.ip_forward", "1", in: host0) else {
            throw LabError.commandFailed(command: "sysctl net.ipv4.ip_forward=1 in \(host0)", status: 1, stderr: "no such key")
        }
        if topology.hasIPv6 { try Sysctl.write("net.ipv6.conf.all.forwarding", "1", in: host0) }
        for bridge in topology.bridges where bridge.hairpin {
            try Sysctl.write("/proc/sys/net/ipv4/conf/\(bridge.device)/route_localnet", "1", in: host0)
        }
        var enabled = try Sysctl.write("net.bridge.bridge-nf-call-iptables", "1", in: host0)
        if !enabled, options.loadBridgeNetfilterModule, let modprobe = LabCommand.locate("modprobe") {
            _ = try? LabCommand.run(modprobe, ["br_netfilter"])
            enabled = try Sysctl.write("net.bridge.bridge-nf-call-iptables", "1", in: host0)
        }
        if enabled { try Sysctl.write("net.bridge.bridge-nf-call-ip6tables", "1", in: host0) }
        return enabled ? .enabled : .unavailable
    }

    static func isInterfaceName(_ name: String) -> Bool {
        (1...15).contains(name.utf8.count) && name != "." && name != ".." && name.utf8.allSatisfy { byte in
            byte > 0x20 && byte < 0x7f && !"/\\\"'#".utf8.contains(byte)
        }
    }

    // MARK: Using

    public func container(_ name: String) -> Container? { containers.first { $0.name == name } }

    /// Starts a server inside one of the lab's namespaces; `down()` stops it.
    @discardableResult
    public func serve(in namespace: String, transport: TransportProtocol = .tcp, port: UInt16, address: IPAddress = .v4(0),
                      reply: String? = nil, limits: TrafficServer.Limits = .init()) throws -> TrafficServer {
        guard namespaces.contains(namespace) else { throw LabError.invalidNamespaceName(namespace) }
        let label = reply ?? String(namespace.dropFirst(id.namespacePrefix.count))
        let server = try TrafficServer.start(in: namespace, transport: transport, port: port, address: address, reply: label, limits: limits)
        lock.withLock { servers.append(server) }
        return server
    }

    /// Probes from one of the lab's namespaces.
    public func probe(from namespace: String, to destination: SocketEndpoint, transport: TransportProtocol = .tcp,
                      timeout: Duration = .seconds(1)) async -> ProbeResult {
        await TrafficClient.probe(from: namespace, to: destination, transport: transport, timeout: timeout)
    }

    // MARK: Tearing down

    /// Leaves the lab in place when this value goes away (`weir lab up`); `LabRegistry.remove`
    /// or `down()` removes it later.
    public func keep() { lock.withLock { isKept = true } }

    /// Whether `down()` has finished.
    public var isTornDown: Bool { lock.withLock { isDown } }

    /// Stops the lab's servers and deletes its namespaces. Later calls do nothing; throws
    /// `LabError.teardownIncomplete` naming what could not be deleted.
    public func down() throws {
        let running: [TrafficServer]? = lock.withLock {
            if isDown { return nil }
            defer { servers = [] }
            return servers
        }
        guard let running else { return }
        for server in running { server.stop() }
        try NamespaceControl.delete(layout.namespaces.reversed())
        lock.withLock { isDown = true }
    }
}
