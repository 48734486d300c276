import WeirDiagnostics
import WeirModel
import WeirPolicy

/// Resolves names and checks a policy's facts, collecting every error it finds.
public struct Checker {
    private var diagnostics = DiagnosticBag()

    /// Checks the items of a policy (includes already expanded by the driver).
    /// Returns a checked policy only when there is no error.
    public static func check(_ items: [Located<Item>]) -> (policy: CheckedPolicy?, diagnostics: [Diagnostic]) {
        var checker = Checker()
        let policy = checker.run(items)
        let found = checker.diagnostics
        return (found.hasErrors ? nil : policy, found.sorted)
    }

    // MARK: Name rules

    /// Linux interface names: 1-15 bytes (IFNAMSIZ - 1), characters both iptables and nft carry.
    static func interfaceNameProblem(_ name: String, wildcard: Bool = false) -> String? {
        if name.isEmpty { return wildcard ? "an interface wildcard needs a prefix before '+'" : "interface name is empty" }
        if name.utf8.count > 15 { return "interface name '\(name)' is longer than 15 bytes" }
        if name == "." || name == ".." { return "'\(name)' is not a valid interface name" }
        if let bad = name.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0))) }) {
            return "interface name '\(name)' contains '\(bad)', which iptables and nft cannot carry (use letters, digits, '_', '.', '-')"
        }
        return nil
    }

    /// Strings written into the ruleset (comments, log prefixes).
    static func textProblem(_ text: String, what: String, maxBytes: Int) -> String? {
        if text.utf8.count > maxBytes { return "\(what) is longer than \(maxBytes) bytes" }
        if text.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" }) {
            return "\(what) contains a quote or backslash, which would break the generated rules"
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "\(what) contains a newline or control character"
        }
        return nil
    }

    static let rejectTypes: [Family: Set<String>] = [
        .ipv4: ["icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable", "icmp-proto-unreachable",
                "icmp-net-prohibited", "icmp-host-prohibited", "icmp-admin-prohibited", "tcp-reset"],
        .ipv6: ["icmp6-no-route", "icmp6-adm-prohibited", "icmp6-addr-unreachable", "icmp6-port-unreachable", "tcp-reset"],
    ]

    // MARK: Pass

    private mutating func run(_ items: [Located<Item>]) -> CheckedPolicy {
        var profile: Located<DockerProfile>? = nil
        var host = HostConfig()
        var hostRange: SourceRange? = nil
        var networks: [Network] = []
        var networkIndex: [String: Int] = [:]
        var bridges: [String: SourceRange] = [:]
        var sets: [String: SetDecl] = [:]
        var containerDecls: [ContainerDecl] = []
        var containerRanges: [String: SourceRange] = [:]
        var ruleBlocks: [RuleBlock] = []

        for item in items {
            switch item.value {
            case .include:
                break
            case .docker(let name):
                if let previous = profile {
                    diagnostics.error("the Docker profile is chosen twice", at: name.range, notes: [.note("first chosen here", at: previous.range)])
                } else if let chosen = DockerProfile(rawValue: name.value) {
                    profile = Located(chosen, at: name.range)
                } else {
                    diagnostics.error("unknown Docker profile '\(name.value)' (known: \(DockerProfile.allCases.map(\.rawValue).joined(separator: ", ")))", at: name.range)
                    profile = Located(.classic, at: name.range)
                }
            case .host(let decl):
                if let hostRange {
                    diagnostics.error("a policy describes one host; '\(decl.name.value)' is a second", at: decl.name.range, notes: [.note("first host here", at: hostRange)])
                    continue
                }
                hostRange = decl.name.range
                host = checkHost(decl)
            case .network(let decl):
                if let index = networkIndex[decl.name.value] {
                    diagnostics.error("network '\(decl.name.value)' is declared twice", at: decl.name.range, notes: [.note("first declared here", at: networks[index].range)])
                    continue
                }
                guard let network = checkNetwork(decl) else { continue }
                // Point at the offending value (`bridge NAME`, `subnet PREFIX`), not the network's name.
                let bridgeRange = decl.settings.last(where: { if case .bridge = $0.value { true } else { false } })?.range ?? decl.name.range
                if let previous = bridges[network.bridge] {
                    diagnostics.error("bridge '\(network.bridge)' is used by two networks", at: bridgeRange, notes: [.note("first used here", at: previous)])
                    continue
                }
                for other in networks {
                    for (family, subnet) in network.subnets {
                        if let theirs = other.subnets[family], theirs.overlaps(subnet) {
                            let subnetRange = decl.settings.first(where: { $0.value == .subnet(subnet) })?.range ?? decl.name.range
                            diagnostics.error("subnet \(subnet) of network '\(network.name)' overlaps \(theirs) of network '\(other.name)'", at: subnetRange, notes: [.note("'\(other.name)' declared here", at: other.range)])
                        }
                    }
                }
                bridges[network.bridge] = bridgeRange
                networkIndex[network.name] = networks.count
                networks.append(network)
            case .container(let decl):
                if let previous = containerRanges[decl.name.value] {
                    diagnostics.error("container '\(decl.name.value)' is declared twice", at: decl.name.range, notes: [.note("first declared here", at: previous)])
                    continue
                }
                containerRanges[decl.name.value] = decl.name.range
                containerDecls.append(decl)
            case .set(let decl):
                if let previous = sets[decl.name.value] {
                    diagnostics.error("set '\(decl.name.value)' is declared twice", at: decl.name.range, notes: [.note("first declared here", at: previous.name.range)])
                    continue
                }
                checkSet(decl)
                sets[decl.name.value] = decl
            case .rules(let block):
                ruleBlocks.append(block)
            }
        }

        if profile == nil, let first = items.first {
            diagnostics.error("the policy does not choose a Docker profile; add 'docker classic'", at: first.range)
        }

        let containers = checkContainers(containerDecls, networks: networks, networkIndex: networkIndex, host: host)
        var context = RuleContext(host: host, sets: sets, containers: containers)
        var userRules: [UserRule] = []
        for block in ruleBlocks {
            for rule in block.rules {
                userRules += context.expand(rule, chain: block.chain.value, diagnostics: &diagnostics)
            }
        }
        return CheckedPolicy(profile: profile?.value ?? .classic, profileRange: profile?.range, host: host,
                             networks: networks, containers: containers, userRules: userRules)
    }

    /// Reports a setting given twice in one block; returns true when it is a repeat.
    private mutating func isRepeat(_ key: String, at range: SourceRange, in seen: inout [String: SourceRange]) -> Bool {
        if let first = seen[key] {
            diagnostics.error("'\(key)' is set twice", at: range, notes: [.note("first set here", at: first)])
            return true
        }
        seen[key] = range
        return false
    }

    private mutating func checkHost(_ decl: HostDecl) -> HostConfig {
        var host = HostConfig(name: decl.name.value)
        var seen: [String: SourceRange] = [:]
        for setting in decl.settings {
            switch setting.value {
            case .interface(let name, let addresses):
                if let problem = Self.interfaceNameProblem(name.value) {
                    diagnostics.error(problem, at: name.range)
                }
                if isRepeat("interface \(name.value)", at: name.range, in: &seen) { continue }
                host.interfaces.append(.init(name: name.value, addresses: addresses.map(\.value)))
            case .forwardPolicy(let policy):
                if !isRepeat("forward-policy", at: setting.range, in: &seen) { host.forwardPolicy = policy }
            case .userlandProxy(let on):
                if !isRepeat("userland-proxy", at: setting.range, in: &seen) { host.userlandProxy = on }
            case .ip6tables(let on):
                if !isRepeat("ip6tables", at: setting.range, in: &seen) { host.ip6tables = on }
            }
        }
        return host
    }

    private mutating func checkNetwork(_ decl: NetworkDecl) -> Network? {
        var seen: [String: SourceRange] = [:]
        var bridge: String? = nil
        var subnets: [Family: Prefix] = [:]
        var gateways: [Family: IPAddress] = [:]
        var gatewayRanges: [Family: SourceRange] = [:]
        var network = Network(name: decl.name.value, bridge: "", subnets: [:], gateways: [:], range: decl.name.range)
        var ok = true
        for setting in decl.settings {
            let range = setting.range
            switch setting.value {
            case .bridge(let name):
                if isRepeat("bridge", at: range, in: &seen) { ok = false; continue }
                if let problem = Self.interfaceNameProblem(name) {
                    diagnostics.error(problem, at: range)
                    ok = false
                }
                bridge = name
            case .subnet(let prefix):
                if isRepeat("subnet \(prefix.family == .ipv4 ? "(IPv4)" : "(IPv6)")", at: range, in: &seen) { ok = false; continue }
                if !prefix.isCanonical {
                    diagnostics.error("subnet \(prefix) has host bits set (did you mean \(prefix.canonical)?)", at: range)
                    ok = false
                } else if prefix.length > prefix.family.bitWidth - 2 {
                    diagnostics.error("subnet \(prefix) is too small for a gateway and a container", at: range)
                    ok = false
                }
                subnets[prefix.family] = prefix
            case .gateway(let address):
                if isRepeat("gateway \(address.family == .ipv4 ? "(IPv4)" : "(IPv6)")", at: range, in: &seen) { ok = false; continue }
                gateways[address.family] = address
                gatewayRanges[address.family] = range
            case .icc(let on):
                if !isRepeat("icc", at: range, in: &seen) { network.icc = on }
            case .internal(let on):
                if !isRepeat("internal", at: range, in: &seen) { network.isInternal = on }
            case .masquerade(let on):
                if !isRepeat("masquerade", at: range, in: &seen) { network.masquerade = on }
            case .gatewayMode(let mode):
                if !isRepeat("gateway-mode", at: range, in: &seen) { network.gatewayMode = mode }
            case .snatSource(let address):
                if !isRepeat("snat-source \(address.family == .ipv4 ? "(IPv4)" : "(IPv6)")", at: range, in: &seen) {
                    network.snatSource[address.family] = address
                }
            }
        }
        guard let bridge else {
            diagnostics.error("network '\(decl.name.value)' has no 'bridge' device", at: decl.name.range)
            return nil
        }
        guard subnets[.ipv4] != nil else {
            diagnostics.error("network '\(decl.name.value)' has no IPv4 'subnet'", at: decl.name.range)
            return nil
        }
        for (family, gateway) in gateways {
            guard let subnet = subnets[family], subnet.contains(gateway) else {
                diagnostics.error("gateway \(gateway) is outside the network's \(family == .ipv4 ? "IPv4" : "IPv6") subnet", at: gatewayRanges[family])
                ok = false
                continue
            }
            if gateway == subnet.network || gateway == subnet.last, family == .ipv4 {
                diagnostics.error("gateway \(gateway) is the subnet's \(gateway == subnet.network ? "network" : "broadcast") address", at: gatewayRanges[family])
                ok = false
            }
        }
        for (family, subnet) in subnets where gateways[family] == nil {
            // Wrapping: only a subnet already rejected as too small can end in all ones.
            gateways[family] = IPAddress(family: family, bits: subnet.network.bits &+ 1)
        }
        if network.isInternal, seen["gateway-mode"] != nil {
            diagnostics.error("an internal network has no gateway, so it takes no 'gateway-mode'", at: seen["gateway-mode"])
            ok = false
        }
        network.bridge = bridge
        network.subnets = subnets
        network.gateways = gateways
        return ok ? network : nil
    }

    private mutating func checkSet(_ decl: SetDecl) {
        if decl.elements.isEmpty {
            diagnostics.error("set '\(decl.name.value)' is empty", at: decl.name.range)
        }
        for element in decl.elements {
            if case .interface(let name) = element.value, let problem = Self.interfaceNameProblem(name.name, wildcard: name.isWildcard) {
                diagnostics.error(problem, at: element.range)
            }
            if case .address(let prefix) = element.value, !prefix.isCanonical {
                diagnostics.error("address \(prefix) has host bits set (did you mean \(prefix.canonical)?)", at: element.range)
            }
        }
    }

    private mutating func checkContainers(_ decls: [ContainerDecl], networks: [Network], networkIndex: [String: Int], host: HostConfig) -> [Container] {
        var containers: [Container] = []
        var addressOwners: [IPAddress: (String, SourceRange)] = [:]
        var bound: [BindingKey: [(address: IPAddress?, range: SourceRange)]] = [:]
        for decl in decls {
            var endpoints: [Endpoint] = []
            var bindings: [PortBinding] = []
            var attached: [Int: SourceRange] = [:]
            var attachesSomewhere = false  // an unknown network is reported once, not also as "not attached"
            for setting in decl.settings {
                switch setting.value {
                case .attachment(let networkName, let addresses):
                    attachesSomewhere = true
                    guard let index = networkIndex[networkName.value] else {
                        diagnostics.error("unknown network '\(networkName.value)'", at: networkName.range)
                        continue
                    }
                    if let first = attached[index] {
                        diagnostics.error("container '\(decl.name.value)' is attached to network '\(networkName.value)' twice", at: networkName.range, notes: [.note("first attached here", at: first)])
                        continue
                    }
                    attached[index] = networkName.range
                    let network = networks[index]
                    var byFamily: [Family: IPAddress] = [:]
                    for address in addresses {
                        let family = address.value.family
                        let familyName = family == .ipv4 ? "IPv4" : "IPv6"
                        if byFamily[family] != nil {
                            diagnostics.error("container '\(decl.name.value)' has two \(familyName) addresses on '\(network.name)'", at: address.range)
                            continue
                        }
                        guard let subnet = network.subnets[family] else {
                            diagnostics.error("network '\(network.name)' has no \(familyName) subnet for address \(address.value)", at: address.range)
                            continue
                        }
                        guard subnet.contains(address.value) else {
                            diagnostics.error("address \(address.value) is outside subnet \(subnet) of network '\(network.name)'", at: address.range)
                            continue
                        }
                        if address.value == subnet.network || (family == .ipv4 && address.value == subnet.last) {
                            diagnostics.error("address \(address.value) is the \(address.value == subnet.network ? "network" : "broadcast") address of \(subnet)", at: address.range)
                            continue
                        }
                        if address.value == network.gateways[family] {
                            diagnostics.error("address \(address.value) is the gateway of network '\(network.name)'", at: address.range)
                            continue
                        }
                        if let (owner, range) = addressOwners[address.value] {
                            diagnostics.error("address \(address.value) is already used by container '\(owner)'", at: address.range, notes: [.note("first used here", at: range)])
                            continue
                        }
                        addressOwners[address.value] = (decl.name.value, address.range)
                        byFamily[family] = address.value
                    }
                    if byFamily.isEmpty { continue }
                    if byFamily[.ipv4] == nil {
                        diagnostics.error("container '\(decl.name.value)' needs an IPv4 address on network '\(network.name)'", at: networkName.range)
                        continue
                    }
                    endpoints.append(Endpoint(network: index, addresses: byFamily))
                case .publish(let spec):
                    bindings += checkPublish(spec, host: host, bound: &bound)
                }
            }
            if endpoints.isEmpty, !attachesSomewhere {
                diagnostics.error("container '\(decl.name.value)' is not attached to any network", at: decl.name.range)
            }
            if let gatewayEndpoint = endpoints.first, !bindings.isEmpty {
                let network = networks[gatewayEndpoint.network]
                if network.isInternal {
                    diagnostics.error("container '\(decl.name.value)' publishes ports, but its first network '\(network.name)' is internal", at: bindings[0].range)
                }
                for binding in bindings {
                    if let address = binding.hostAddress, gatewayEndpoint.addresses[address.family] == nil {
                        diagnostics.error("host address \(address) is IPv6 but container '\(decl.name.value)' has no IPv6 address on '\(network.name)'", at: binding.range)
                    }
                }
            }
            containers.append(Container(name: decl.name.value, endpoints: endpoints, bindings: bindings, range: decl.name.range))
        }
        return containers
    }

    /// A host port in use, per family and protocol.
    struct BindingKey: Hashable {
        var family: Family
        var transport: TransportProtocol
        var port: UInt16
    }

    private mutating func checkPublish(_ spec: PublishSpec, host: HostConfig, bound: inout [BindingKey: [(address: IPAddress?, range: SourceRange)]]) -> [PortBinding] {
        let hostPorts = spec.hostPorts.value
        let containerPorts = spec.containerPorts.value
        guard hostPorts.count == containerPorts.count else {
            diagnostics.error("host ports \(hostPorts) and container ports \(containerPorts) differ in length", at: spec.hostPorts.range.union(spec.containerPorts.range))
            return []
        }
        if let address = spec.hostAddress, address.value.family == .ipv6, !host.ip6tables {
            diagnostics.error("host address \(address.value) is IPv6, which needs 'ip6tables on' in the host", at: address.range)
            return []
        }
        let families: [Family] = spec.hostAddress.map { [$0.value.family] } ?? host.families
        for family in families {
            for port in hostPorts.first...hostPorts.last {
                let portKey = BindingKey(family: family, transport: spec.transport.value, port: port)
                let mine = spec.hostAddress?.value
                if let clash = bound[portKey]?.first(where: { $0.address == nil || mine == nil || $0.address == mine }) {
                    let shown = mine.map { "\($0):" } ?? ""
                    diagnostics.error("host port \(shown)\(port)/\(spec.transport.value) is published twice", at: spec.hostPorts.range, notes: [.note("first published here", at: clash.range)])
                    return []
                }
                bound[portKey, default: []].append((mine, spec.hostPorts.range))
            }
        }
        return (0..<hostPorts.count).map { offset in
            PortBinding(hostAddress: spec.hostAddress?.value, hostPort: hostPorts.first + UInt16(offset),
                        containerPort: containerPorts.first + UInt16(offset), transport: spec.transport.value,
                        range: spec.hostPorts.range.union(spec.containerPorts.range))
        }
    }
}
