import WeirDiagnostics
import WeirModel

/// A parsed policy file: the syntax tree both the `.weir` parser and the Swift DSL produce.
public struct PolicyAST: Sendable, Equatable {
    public var items: [Located<Item>]
    public init(items: [Located<Item>]) { self.items = items }
}

/// A top-level declaration.
public enum Item: Sendable, Equatable {
    /// `include "path"`: another policy file, relative to this one.
    case include(Located<String>)
    /// `docker classic`: which Docker Engine era's rule layout to reproduce.
    case docker(Located<String>)
    case host(HostDecl)
    case network(NetworkDecl)
    case container(ContainerDecl)
    case set(SetDecl)
    case rules(RuleBlock)
}

/// `host NAME { … }`: the machine the rules are for.
public struct HostDecl: Sendable, Equatable {
    public var name: Located<String>
    public var settings: [Located<HostSetting>]
    public init(name: Located<String>, settings: [Located<HostSetting>]) {
        self.name = name
        self.settings = settings
    }
}

public enum HostSetting: Sendable, Equatable {
    /// `interface NAME [address PREFIX]…`
    case interface(name: Located<String>, addresses: [Located<Prefix>])
    /// `forward-policy drop|accept`: filter FORWARD's policy. Docker sets DROP when it had to
    /// turn on `ip_forward` itself (the default), and leaves ACCEPT when forwarding was on.
    case forwardPolicy(ChainPolicy)
    /// `userland-proxy on|off` (dockerd `--userland-proxy`).
    case userlandProxy(Bool)
    /// `ip6tables on|off` (dockerd `--ip6tables`): whether Docker also writes IPv6 rules.
    case ip6tables(Bool)
}

/// `network NAME { … }`: a Docker bridge network.
public struct NetworkDecl: Sendable, Equatable {
    public var name: Located<String>
    public var settings: [Located<NetworkSetting>]
    public init(name: Located<String>, settings: [Located<NetworkSetting>]) {
        self.name = name
        self.settings = settings
    }
}

/// How a bridge network reaches the outside (`com.docker.network.bridge.gateway_mode_ipv4`).
public enum GatewayMode: String, Sendable, Equatable, CaseIterable {
    case nat, routed
}

public enum NetworkSetting: Sendable, Equatable {
    /// `bridge NAME`: the Linux bridge device.
    case bridge(String)
    /// `subnet PREFIX` (one IPv4 and optionally one IPv6).
    case subnet(Prefix)
    /// `gateway ADDRESS`: the bridge's own address.
    case gateway(IPAddress)
    /// `icc on|off`: inter-container communication on this bridge.
    case icc(Bool)
    /// `internal on|off`: no traffic in or out of the network.
    case `internal`(Bool)
    /// `masquerade on|off`: source NAT for traffic leaving the network.
    case masquerade(Bool)
    /// `gateway-mode nat|routed`.
    case gatewayMode(GatewayMode)
    /// `snat-source ADDRESS`: SNAT to this address instead of MASQUERADE (`host_ipv4`).
    case snatSource(IPAddress)
}

/// `container NAME { … }`.
public struct ContainerDecl: Sendable, Equatable {
    public var name: Located<String>
    public var settings: [Located<ContainerSetting>]
    public init(name: Located<String>, settings: [Located<ContainerSetting>]) {
        self.name = name
        self.settings = settings
    }
}

public enum ContainerSetting: Sendable, Equatable {
    /// `network NAME address A [address B]`: an endpoint on a network.
    case attachment(network: Located<String>, addresses: [Located<IPAddress>])
    /// `publish [HOSTIP:]HOSTPORT[-END]:PORT[-END][/PROTO]`.
    case publish(PublishSpec)
}

/// A published port mapping (`docker run -p`).
public struct PublishSpec: Sendable, Equatable {
    public var hostAddress: Located<IPAddress>?
    public var hostPorts: Located<PortRange>
    public var containerPorts: Located<PortRange>
    public var transport: Located<TransportProtocol>

    public init(hostAddress: Located<IPAddress>?, hostPorts: Located<PortRange>, containerPorts: Located<PortRange>, transport: Located<TransportProtocol>) {
        self.hostAddress = hostAddress
        self.hostPorts = hostPorts
        self.containerPorts = containerPorts
        self.transport = transport
    }
}

/// What a named set holds.
public enum SetKind: String, Sendable, Equatable, CaseIterable {
    case addresses, ports, interfaces
}

/// An element of a named set.
public enum SetElement: Sendable, Equatable {
    case address(Prefix)
    case port(PortRange)
    case interface(InterfaceName)
}

/// `set NAME KIND { E, … }`.
public struct SetDecl: Sendable, Equatable {
    public var name: Located<String>
    public var kind: Located<SetKind>
    public var elements: [Located<SetElement>]
    public init(name: Located<String>, kind: Located<SetKind>, elements: [Located<SetElement>]) {
        self.name = name
        self.kind = kind
        self.elements = elements
    }
}

/// Where a block of user rules goes.
public enum RuleChain: String, Sendable, Equatable, CaseIterable {
    /// `user { … }`: Docker's DOCKER-USER chain, seen by all forwarded traffic first.
    case user
    /// `input { … }`: the filter INPUT chain (traffic to the host itself).
    case input
}

/// `user { … }` or `input { … }`.
public struct RuleBlock: Sendable, Equatable {
    public var chain: Located<RuleChain>
    public var rules: [Located<RuleDecl>]
    public init(chain: Located<RuleChain>, rules: [Located<RuleDecl>]) {
        self.chain = chain
        self.rules = rules
    }
}

/// One user rule: a verdict followed by matches, e.g. `drop in enp0s8 proto tcp dport 22`.
public struct RuleDecl: Sendable, Equatable {
    public var verdict: Located<RuleVerdict>
    public var matches: [Located<RuleMatch>]
    public init(verdict: Located<RuleVerdict>, matches: [Located<RuleMatch>]) {
        self.verdict = verdict
        self.matches = matches
    }
}

public enum RuleVerdict: Sendable, Equatable {
    case accept, drop, `return`
    /// `reject [with TYPE]`.
    case reject(with: String?)
    /// `log [prefix "…"] [level N]`.
    case log(prefix: String?, level: UInt8?)
}

/// A literal value or a reference to a named set (`@name`).
public enum Operand<Value: Sendable & Equatable>: Sendable, Equatable {
    case value(Value)
    case set(String)
}

public enum RuleMatch: Sendable, Equatable {
    case inInterface(Operand<InterfaceName>, negated: Bool)
    case outInterface(Operand<InterfaceName>, negated: Bool)
    case source(Operand<Prefix>, negated: Bool)
    case destination(Operand<Prefix>, negated: Bool)
    case transport(TransportProtocol, negated: Bool)
    case sourcePort(Operand<PortRange>, negated: Bool)
    case destinationPort(Operand<PortRange>, negated: Bool)
    case state(Set<ConntrackState>, negated: Bool)
    case sourceType(AddressType, negated: Bool)
    case destinationType(AddressType, negated: Bool)
    case comment(String)
}
