import WeirDiagnostics
import WeirModel
import WeirPolicy

/// `docker PROFILE`.
public struct Docker: PolicyItem {
    let profile: String
    let site: CallSite
    public init(_ profile: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.profile = profile
        site = CallSite(fileID, line, column)
    }
    public func build(into context: inout DSLContext) {
        context.items.append(Located(.docker(Located(profile, at: site.range)), at: site.range))
    }
}

/// `host NAME { … }`.
public struct Host: PolicyItem {
    let name: String
    let settings: [any HostElement]
    let site: CallSite
    public init(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                @ListBuilder<any HostElement> _ settings: () -> [any HostElement]) {
        self.name = name
        self.settings = settings()
        site = CallSite(fileID, line, column)
    }
    public func build(into context: inout DSLContext) {
        let built = settings.compactMap { $0.setting(&context) }
        context.items.append(Located(.host(HostDecl(name: Located(name, at: site.range), settings: built)), at: site.range))
    }
}

/// `network NAME { … }`.
public struct Network: PolicyItem {
    let name: String
    let settings: [any NetworkElement]
    let site: CallSite
    public init(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                @ListBuilder<any NetworkElement> _ settings: () -> [any NetworkElement]) {
        self.name = name
        self.settings = settings()
        site = CallSite(fileID, line, column)
    }
    public func build(into context: inout DSLContext) {
        let built = settings.compactMap { $0.setting(&context) }
        context.items.append(Located(.network(NetworkDecl(name: Located(name, at: site.range), settings: built)), at: site.range))
    }
}

/// `container NAME { … }`.
public struct Container: PolicyItem {
    let name: String
    let settings: [any ContainerElement]
    let site: CallSite
    public init(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                @ListBuilder<any ContainerElement> _ settings: () -> [any ContainerElement]) {
        self.name = name
        self.settings = settings()
        site = CallSite(fileID, line, column)
    }
    public func build(into context: inout DSLContext) {
        let built = settings.compactMap { $0.setting(&context) }
        context.items.append(Located(.container(ContainerDecl(name: Located(name, at: site.range), settings: built)), at: site.range))
    }
}

/// `set NAME KIND { … }`: `NamedSet("admins", .addresses, ["10.0.0.0/8"])`.
public struct NamedSet: PolicyItem {
    let name: String
    let kind: SetKind
    let elements: [String]
    let site: CallSite
    public init(_ name: String, _ kind: SetKind, _ elements: [String], fileID: String = #fileID, line: UInt = #line, column: UInt = #column) {
        self.name = name
        self.kind = kind
        self.elements = elements
        site = CallSite(fileID, line, column)
    }
    public func build(into context: inout DSLContext) {
        var built: [Located<SetElement>] = []
        for text in elements {
            let element: SetElement?
            switch kind {
            case .addresses: element = Prefix(text).map { .address($0) }
            case .ports: element = portRange(text).map { .port($0) }
            case .interfaces: element = .interface(InterfaceName(iptables: text))
            }
            guard let element else {
                context.invalid("invalid \(kind.rawValue) element '\(text)' in set '\(name)'", at: site)
                continue
            }
            built.append(Located(element, at: site.range))
        }
        let decl = SetDecl(name: Located(name, at: site.range), kind: Located(kind, at: site.range), elements: built)
        context.items.append(Located(.set(decl), at: site.range))
    }
}

/// `N` or `N-M` as a port range, or nil.
func portRange(_ text: String) -> PortRange? {
    let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
    let numbers = parts.compactMap { UInt16($0) }
    guard numbers.count == parts.count, numbers.allSatisfy({ $0 >= 1 }), let first = numbers.first else { return nil }
    let last = numbers.last!
    return first <= last ? PortRange(first, last) : nil
}
