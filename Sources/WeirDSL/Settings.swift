import WeirDiagnostics
import WeirModel
import WeirPolicy

/// A statement inside `Host { … }`.
public protocol HostElement {
    func setting(_ context: inout DSLContext) -> Located<HostSetting>?
}

/// A statement inside `Network { … }`.
public protocol NetworkElement {
    func setting(_ context: inout DSLContext) -> Located<NetworkSetting>?
}

/// A statement inside `Container { … }`.
public protocol ContainerElement {
    func setting(_ context: inout DSLContext) -> Located<ContainerSetting>?
}

/// `interface NAME [address PREFIX]…`.
public struct Interface: HostElement {
    let name: String, addresses: [String], site: CallSite
    public init(_ name: String, addresses: String..., fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.name = name
        self.addresses = addresses
        site = CallSite(fileID, line, column)
    }
    public func setting(_ context: inout DSLContext) -> Located<HostSetting>? {
        var prefixes: [Located<Prefix>] = []
        for text in addresses {
            guard let prefix = Prefix(text) else {
                context.invalid("invalid address prefix '\(text)'", at: site)
                return nil
            }
            prefixes.append(Located(prefix, at: site.range))
        }
        return Located(.interface(name: Located(name, at: site.range), addresses: prefixes), at: site.range)
    }
}

/// A host switch: `ForwardPolicy(.drop)`, `UserlandProxy(false)`, `IP6Tables(true)`.
public struct HostSwitch: HostElement {
    let value: HostSetting, site: CallSite
    init(_ value: HostSetting, _ site: CallSite) { self.value = value; self.site = site }
    public func setting(_ context: inout DSLContext) -> Located<HostSetting>? { Located(value, at: site.range) }
}

public func ForwardPolicy(_ policy: ChainPolicy, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> HostSwitch {
    HostSwitch(.forwardPolicy(policy), CallSite(fileID, line, column))
}
public func UserlandProxy(_ on: Bool, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> HostSwitch {
    HostSwitch(.userlandProxy(on), CallSite(fileID, line, column))
}
public func IP6Tables(_ on: Bool, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> HostSwitch {
    HostSwitch(.ip6tables(on), CallSite(fileID, line, column))
}

/// A network statement whose value is a literal to parse or a plain value.
public struct NetworkStatement: NetworkElement {
    let make: (inout DSLContext, CallSite) -> NetworkSetting?
    let site: CallSite
    public func setting(_ context: inout DSLContext) -> Located<NetworkSetting>? {
        make(&context, site).map { Located($0, at: site.range) }
    }
}

public func Bridge(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { _, _ in .bridge(name) }, site: CallSite(fileID, line, column))
}
public func Subnet(_ text: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { context, site in
        guard let prefix = Prefix(text) else { context.invalid("invalid address prefix '\(text)'", at: site); return nil }
        return .subnet(prefix)
    }, site: CallSite(fileID, line, column))
}
public func Gateway(_ text: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { context, site in
        guard let address = IPAddress(text) else { context.invalid("invalid IP address '\(text)'", at: site); return nil }
        return .gateway(address)
    }, site: CallSite(fileID, line, column))
}
public func SNATSource(_ text: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { context, site in
        guard let address = IPAddress(text) else { context.invalid("invalid IP address '\(text)'", at: site); return nil }
        return .snatSource(address)
    }, site: CallSite(fileID, line, column))
}
public func ICC(_ on: Bool, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { _, _ in .icc(on) }, site: CallSite(fileID, line, column))
}
public func Internal(_ on: Bool, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { _, _ in .internal(on) }, site: CallSite(fileID, line, column))
}
public func Masquerade(_ on: Bool, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { _, _ in .masquerade(on) }, site: CallSite(fileID, line, column))
}
public func GatewayModeSetting(_ mode: GatewayMode, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) -> NetworkStatement {
    NetworkStatement(make: { _, _ in .gatewayMode(mode) }, site: CallSite(fileID, line, column))
}

/// `network NAME address A [address B]` inside a container.
public struct Attach: ContainerElement {
    let network: String, addresses: [String], site: CallSite
    public init(_ network: String, address: String, _ more: String..., fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.network = network
        addresses = [address] + more
        site = CallSite(fileID, line, column)
    }
    public func setting(_ context: inout DSLContext) -> Located<ContainerSetting>? {
        var parsed: [Located<IPAddress>] = []
        for text in addresses {
            guard let address = IPAddress(text) else {
                context.invalid("invalid IP address '\(text)'", at: site)
                return nil
            }
            parsed.append(Located(address, at: site.range))
        }
        return Located(.attachment(network: Located(network, at: site.range), addresses: parsed), at: site.range)
    }
}

/// `publish [HOSTIP:]HOSTPORT:PORT[/PROTO]`: `Publish(10080, to: 80)`, `Publish(8000...8002, to: 8000...8002, .udp, on: "127.0.0.1")`.
public struct Publish: ContainerElement {
    let hostPorts: ClosedRange<Int>, containerPorts: ClosedRange<Int>
    let transport: TransportProtocol, hostAddress: String?, site: CallSite

    public init(_ hostPort: Int, to containerPort: Int, _ transport: TransportProtocol = .tcp, on hostAddress: String? = nil,
                fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.init(hostPort...hostPort, to: containerPort...containerPort, transport, on: hostAddress, fileID: fileID, line: line, column: column)
    }

    public init(_ hostPorts: ClosedRange<Int>, to containerPorts: ClosedRange<Int>, _ transport: TransportProtocol = .tcp, on hostAddress: String? = nil,
                fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.hostPorts = hostPorts
        self.containerPorts = containerPorts
        self.transport = transport
        self.hostAddress = hostAddress
        site = CallSite(fileID, line, column)
    }

    public func setting(_ context: inout DSLContext) -> Located<ContainerSetting>? {
        func ports(_ range: ClosedRange<Int>) -> PortRange? {
            guard range.lowerBound >= 1, range.upperBound <= 65535 else { return nil }
            return PortRange(UInt16(range.lowerBound), UInt16(range.upperBound))
        }
        guard let host = ports(hostPorts), let container = ports(containerPorts) else {
            context.invalid("port outside 1-65535 in Publish", at: site)
            return nil
        }
        guard transport.hasPorts else {
            context.invalid("Publish needs tcp, udp or sctp", at: site)
            return nil
        }
        var address: Located<IPAddress>? = nil
        if let hostAddress {
            guard let parsed = IPAddress(hostAddress) else {
                context.invalid("invalid host address '\(hostAddress)'", at: site)
                return nil
            }
            address = Located(parsed, at: site.range)
        }
        let spec = PublishSpec(hostAddress: address, hostPorts: Located(host, at: site.range),
                               containerPorts: Located(container, at: site.range), transport: Located(transport, at: site.range))
        return Located(.publish(spec), at: site.range)
    }
}
