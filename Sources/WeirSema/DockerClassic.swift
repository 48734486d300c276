import WeirDiagnostics
import WeirModel
import WeirPolicy

/// Lowers a checked policy to the ruleset Docker Engine 18.05–27.5 ("classic") builds.
///
/// Written as the sequence of iptables calls the daemon makes on a fresh start (see
/// `docker-rules.md` §2.2): driver init, then each network in creation order, then each
/// container's port bindings in start order. Inserts, appends and "only if absent" checks
/// replay exactly, so rule order comes out as Docker's.
public enum DockerClassic {
    static let docker = "DOCKER"
    static let isolation1 = "DOCKER-ISOLATION-STAGE-1"
    static let isolation2 = "DOCKER-ISOLATION-STAGE-2"
    static let user = "DOCKER-USER"

    public static func lower(_ policy: CheckedPolicy) -> Ruleset {
        var editor = ChainEditor()
        let host = policy.host
        let origin = policy.profileRange
        func rule(_ matches: [Match], _ target: Target, _ at: SourceRange?) -> Rule { Rule(matches, target, provenance: at) }

        // Driver init: chains and the isolation chains' trailing RETURNs.
        for family in host.families {
            editor.newChain(family, "nat", docker)
            editor.newChain(family, "filter", docker)
            editor.newChain(family, "filter", isolation1)
            editor.newChain(family, "filter", isolation2)
            editor.append(family, "filter", isolation1, rule([], .return, origin))
            editor.append(family, "filter", isolation2, rule([], .return, origin))
        }
        // Docker turned forwarding on itself (policy drop) unless told it was on already;
        // with ip6tables the IPv6 policy is set to DROP unconditionally.
        editor.setPolicy(.ipv4, "filter", "FORWARD", host.forwardPolicy)
        if host.ip6tables { editor.setPolicy(.ipv6, "filter", "FORWARD", .drop) }
        userChainStep(&editor, host: host, origin: origin)

        for network in policy.networks {
            for family in host.families {
                if network.isInternal {
                    if network.subnets[family] != nil { internalNetwork(&editor, network, family) }
                } else if network.subnets[family] != nil {
                    bridgeNetwork(&editor, network, family, host: host)
                } else {
                    // From 20.10 the isolation pair is written to ip6tables for IPv4-only networks too.
                    isolationPair(&editor, network, family)
                }
            }
            userChainStep(&editor, host: host, origin: origin)
        }

        var portRules = PortRuleIndex(capacity: policy.containers.reduce(0) { $0 + $1.bindings.count })
        for container in policy.containers {
            guard let endpoint = container.endpoints.first else { continue }
            let network = policy.networks[endpoint.network]
            // 27.x sorts a container's bindings by container port (stable for equal ports).
            let bindings = container.bindings.enumerated().sorted {
                ($0.element.containerPort, $0.offset) < ($1.element.containerPort, $1.offset)
            }.map(\.element)
            for binding in bindings {
                let families = binding.hostAddress.map { [$0.family] } ?? host.families
                for family in families {
                    guard let address = endpoint.addresses[family] else { continue }
                    publish(&editor, binding, container: address, network: network, networkIndex: endpoint.network, host: host, index: &portRules)
                }
            }
        }

        // User rules sit above Docker's RETURN in DOCKER-USER, as `iptables -I DOCKER-USER` puts them.
        let returnRule = rule([], .return, origin)
        for family in host.families { editor.delete(family, "filter", user, returnRule) }
        for userRule in policy.userRules {
            let chain = userRule.chain == .user ? user : "INPUT"
            editor.appendNew(userRule.family, "filter", chain, userRule.rule)
        }
        for family in host.families { editor.append(family, "filter", user, returnRule) }
        return editor.ruleset
    }

    /// The controller's step after every network creation: DOCKER-USER exists, ends in RETURN,
    /// and FORWARD jumps to it first.
    private static func userChainStep(_ editor: inout ChainEditor, host: HostConfig, origin: SourceRange?) {
        for family in host.families {
            editor.newChain(family, "filter", user)
            editor.append(family, "filter", user, Rule([], .return, provenance: origin))
            editor.moveToTop(family, "filter", "FORWARD", Rule([], .jump(user), provenance: origin))
        }
    }

    private static func loopback(_ family: Family) -> Prefix {
        family == .ipv4 ? Prefix("127.0.0.0/8")! : Prefix("::1/128")!
    }

    /// `setupIPTablesInternal`, `ProgramChain` and the isolation rules for one bridge network.
    private static func bridgeNetwork(_ editor: inout ChainEditor, _ network: Network, _ family: Family, host: HostConfig) {
        let bridge = InterfaceName(network.bridge)
        let subnet = network.subnets[family]!
        let at = network.range
        let hairpin = !host.userlandProxy
        let routed = network.gatewayMode == .routed
        let sourceNAT: Target = network.snatSource[family].map { .snat(NATDestination(address: $0)) } ?? .masquerade(ports: nil)

        if network.masquerade && !routed {
            editor.insert(family, "nat", "POSTROUTING", Rule([.address(.source, subnet), .outInterface(bridge, negated: true)], sourceNAT, provenance: at))
        }
        if network.masquerade && !hairpin && !routed {
            editor.insert(family, "nat", docker, Rule([.inInterface(bridge)], .return, provenance: at))
        }
        if hairpin && !routed {
            editor.insert(family, "nat", "POSTROUTING", Rule([.outInterface(bridge), .addressType(.source, .local)], sourceNAT, provenance: at))
        }
        interContainerRule(&editor, network, family)
        editor.insert(family, "filter", "FORWARD", Rule([.inInterface(bridge), .outInterface(bridge, negated: true)], .accept, provenance: at))

        var outputMatches: [Match] = [.addressType(.destination, .local)]
        if !hairpin { outputMatches.insert(.address(.destination, loopback(family), negated: true), at: 0) }
        editor.append(family, "nat", "PREROUTING", Rule([.addressType(.destination, .local)], .jump(docker), provenance: at))
        editor.append(family, "nat", "OUTPUT", Rule(outputMatches, .jump(docker), provenance: at))
        editor.insert(family, "filter", "FORWARD", Rule([.outInterface(bridge)], .jump(docker), provenance: at))
        editor.insert(family, "filter", "FORWARD", Rule([.outInterface(bridge), .conntrackState([.related, .established])], .accept, provenance: at))
        editor.moveToTop(family, "filter", "FORWARD", Rule([], .jump(isolation1), provenance: at))
        isolationPair(&editor, network, family)
    }

    private static func isolationPair(_ editor: inout ChainEditor, _ network: Network, _ family: Family) {
        let bridge = InterfaceName(network.bridge)
        editor.insert(family, "filter", isolation1, Rule([.inInterface(bridge), .outInterface(bridge, negated: true)], .jump(isolation2), provenance: network.range))
        editor.insert(family, "filter", isolation2, Rule([.outInterface(bridge)], .drop, provenance: network.range))
    }

    private static func interContainerRule(_ editor: inout ChainEditor, _ network: Network, _ family: Family) {
        let bridge = InterfaceName(network.bridge)
        let matches: [Match] = [.inInterface(bridge), .outInterface(bridge)]
        if network.icc {
            editor.insert(family, "filter", "FORWARD", Rule(matches, .accept, provenance: network.range))
        } else {
            editor.append(family, "filter", "FORWARD", Rule(matches, .drop, provenance: network.range))
        }
    }

    /// `setupInternalNetworkRules`: no traffic leaves or enters the subnet through the bridge.
    private static func internalNetwork(_ editor: inout ChainEditor, _ network: Network, _ family: Family) {
        let bridge = InterfaceName(network.bridge)
        let subnet = network.subnets[family]!
        editor.insert(family, "filter", isolation1, Rule([.inInterface(bridge), .address(.destination, subnet, negated: true)], .drop, provenance: network.range))
        editor.insert(family, "filter", isolation1, Rule([.outInterface(bridge), .address(.source, subnet, negated: true)], .drop, provenance: network.range))
        interContainerRule(&editor, network, family)
        editor.moveToTop(family, "filter", "FORWARD", Rule([], .jump(isolation1), provenance: network.range))
    }

    /// The per-port rules already written, so that Docker's "only if absent" check costs O(1)
    /// for bulk port maps. Two bindings to one container port share their ACCEPT and hairpin
    /// MASQUERADE; SCTP checksum rules depend on the port only. DNAT rules never repeat: the
    /// checker rejects a host port published twice.
    struct PortRuleIndex {
        struct Key: Hashable {
            var family: Family
            var container: IPAddress?
            var network: Int
            var transport: TransportProtocol
            var port: UInt16
        }
        private var seen: Set<Key>

        init(capacity: Int) { seen = Set(minimumCapacity: capacity) }

        /// Whether this is the key's first use (and records it).
        mutating func isNew(_ key: Key) -> Bool { seen.insert(key).inserted }
    }

    /// `ChainInfo.Forward`: DNAT, the filter ACCEPT and the hairpin MASQUERADE of one binding.
    private static func publish(_ editor: inout ChainEditor, _ binding: PortBinding, container: IPAddress, network: Network, networkIndex: Int, host: HostConfig, index: inout PortRuleIndex) {
        let family = container.family
        let bridge = InterfaceName(network.bridge)
        let proto = binding.transport
        let containerPort = PortRange(binding.containerPort)
        let at = binding.range
        let key = PortRuleIndex.Key(family: family, container: container, network: networkIndex, transport: proto, port: binding.containerPort)
        let firstForPort = index.isNew(key)
        let accept = Rule([.address(.destination, Prefix(host: container)), .inInterface(bridge, negated: true),
                           .outInterface(bridge), .protocol(proto), .port(.destination, containerPort)], .accept, provenance: at)
        if network.gatewayMode == .routed {
            if firstForPort { editor.appendNew(family, "filter", docker, accept) }
            return
        }
        var dnatMatches: [Match] = [.protocol(proto), .port(.destination, PortRange(binding.hostPort))]
        if let address = binding.hostAddress, !address.isUnspecified {
            dnatMatches.append(.address(.destination, Prefix(host: address)))
        }
        if host.userlandProxy { dnatMatches.append(.inInterface(bridge, negated: true)) }
        editor.appendNew(family, "nat", docker, Rule(dnatMatches, .dnat(NATDestination(address: container, ports: containerPort)), provenance: at))
        guard firstForPort else { return }
        editor.appendNew(family, "filter", docker, accept)
        editor.appendNew(family, "nat", "POSTROUTING", Rule([.address(.source, Prefix(host: container)), .address(.destination, Prefix(host: container)),
                                                             .protocol(proto), .port(.destination, containerPort)], .masquerade(ports: nil), provenance: at))
        if proto == .sctp, index.isNew(.init(family: family, container: nil, network: -1, transport: proto, port: binding.containerPort)) {
            editor.appendNew(family, "mangle", "POSTROUTING", Rule([.protocol(proto), .port(.source, containerPort)], .checksumFill, provenance: at))
        }
    }
}
