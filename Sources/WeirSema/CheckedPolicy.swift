import WeirDiagnostics
import WeirModel
import WeirPolicy

/// A policy whose names are resolved and whose facts are checked: what lowering consumes.
public struct CheckedPolicy: Sendable {
    /// The Docker Engine era whose rule layout is reproduced.
    public var profile: DockerProfile
    /// Where the profile was chosen: provenance of Docker's fixed rules.
    public var profileRange: SourceRange?
    public var host: HostConfig
    /// Networks in creation order.
    public var networks: [Network]
    /// Containers in start order.
    public var containers: [Container]
    /// User rules, sets already expanded, per chain in policy order.
    public var userRules: [UserRule]
}

/// The Docker Engine rule layouts Weir can reproduce.
public enum DockerProfile: String, Sendable, CaseIterable {
    /// Docker 18.05 to 27.5: DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2, 27.x port order.
    case classic
}

/// The host's settings.
public struct HostConfig: Sendable {
    public struct Interface: Sendable, Equatable {
        public var name: String
        public var addresses: [Prefix]
    }
    public var name: String?
    public var interfaces: [Interface] = []
    public var forwardPolicy: ChainPolicy = .drop
    public var userlandProxy = true
    public var ip6tables = false

    /// The families Docker writes rules for.
    public var families: [Family] { ip6tables ? [.ipv4, .ipv6] : [.ipv4] }
}

/// A bridge network.
public struct Network: Sendable {
    public var name: String
    public var bridge: String
    /// One subnet per family the network has.
    public var subnets: [Family: Prefix]
    public var gateways: [Family: IPAddress]
    public var icc = true
    public var isInternal = false
    public var masquerade = true
    public var gatewayMode: GatewayMode = .nat
    /// SNAT to this address instead of MASQUERADE (per family).
    public var snatSource: [Family: IPAddress] = [:]
    public var range: SourceRange
}

/// A container's endpoint on one network.
public struct Endpoint: Sendable {
    /// Index into `CheckedPolicy.networks`.
    public var network: Int
    public var addresses: [Family: IPAddress]
}

/// One published host port → container port binding (a range is expanded to single ports).
public struct PortBinding: Sendable {
    public var hostAddress: IPAddress?
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var transport: TransportProtocol
    public var range: SourceRange
}

/// A container with its endpoints and port bindings.
public struct Container: Sendable {
    public var name: String
    public var endpoints: [Endpoint]
    /// Bindings as written (ranges expanded); lowering orders them as the profile does.
    public var bindings: [PortBinding]
    public var range: SourceRange
}

/// A user rule after set expansion: one model rule for one chain and family.
public struct UserRule: Sendable {
    public var chain: RuleChain
    public var family: Family
    public var rule: Rule
}
