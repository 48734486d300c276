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

/// A named block (`host`, `network`, `container`) and how to assemble its syntax node.
public struct Declaration<Element>: PolicyItem {
    let name: String
    let elements: [Element]
    let site: CallSite
    let assemble: (Located<String>, [Element], inout DSLContext) -> Item

    public func build(into context: inout DSLContext) {
        let item = assemble(Located(name, at: site.range), elements, &context)
        context.items.append(Located(item, at: site.range))
    }
}

/// `host NAME { … }`.
public func Host(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                 @ListBuilder<any HostElement> _ settings: () -> [any HostElement]) -> Declaration<any HostElement> {
    Declaration(name: name, elements: settings(), site: CallSite(fileID, line, column)) { name, elements, context in
        .host(HostDecl(name: name, settings: elements.compactMap { $0.setting(&context) }))
    }
}

/// `network NAME { … }`.
public func Network(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                    @ListBuilder<any NetworkElement> _ settings: () -> [any NetworkElement]) -> Declaration<any NetworkElement> {
    Declaration(name: name, elements: settings(), site: CallSite(fileID, line, column)) { name, elements, context in
        .network(NetworkDecl(name: name, settings: elements.compactMap { $0.setting(&context) }))
    }
}

/// `container NAME { … }`.
public func Container(_ name: String, fileID: String = #fileID, line: UInt = #line, column: UInt = #column,
                      @ListBuilder<any ContainerElement> _ settings: () -> [any ContainerElement]) -> Declaration<any ContainerElement> {
    Declaration(name: name, elements: settings(), site: CallSite(fileID, line, column)) { name, elements, context in
        .container(ContainerDecl(name: name, settings: elements.compactMap { $0.setting(&context) }))
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
