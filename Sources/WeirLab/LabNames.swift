import Foundation

/// A lab's identity: `<owner>-<tag>`, by default the creating process's id and 8 random hex
/// digits (`4711-9f3a0c21`). Every namespace of the lab is named
/// `weirlab-<owner>-<tag>-<role>`, so `LabRegistry` finds a lab's namespaces by prefix alone.
public struct LabID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let owner: String
    public let tag: String

    /// `owner` and `tag`: 1–16 characters each of `A-Z a-z 0-9 _`.
    public init?(owner: String, tag: String) {
        guard Self.isComponent(owner), Self.isComponent(tag) else { return nil }
        self.owner = owner
        self.tag = tag
    }

    /// Parses `owner-tag`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        self.init(owner: String(parts[0]), tag: String(parts[1]))
    }

    /// A fresh id: this process's id and 32 random bits.
    public static func generate() -> LabID {
        let tag = String(format: "%08x", UInt32.random(in: .min ... .max))
        return LabID(owner: String(getpid()), tag: tag)!
    }

    public var description: String { "\(owner)-\(tag)" }

    /// `weirlab-<owner>-<tag>-`: the start of every namespace name of this lab.
    public var namespacePrefix: String { LabRegistry.prefix + description + "-" }

    /// The id of the process that made the lab, when `owner` is a number.
    public var ownerProcessID: Int32? { Int32(owner) }

    /// Whether the namespace name belongs to this lab.
    public func owns(_ namespace: String) -> Bool {
        namespace.hasPrefix(namespacePrefix) && namespace.count > namespacePrefix.count
    }

    public static func < (lhs: LabID, rhs: LabID) -> Bool { lhs.description < rhs.description }

    static func isComponent(_ text: String) -> Bool {
        (1...16).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x5f
        }
    }
}

/// The names a lab's pieces get, all derived from its id and topology, so they can be worked
/// out again without the lab (`weir lab …` in a later process).
///
/// - host: `weirlab-<id>-host`
/// - external peer of uplink *i*: `weirlab-<id>-peer<i>`, its interface `eth0`
/// - container: `weirlab-<id>-ctr-<name>` (characters outside `A-Za-z0-9_.-` become `_`; the
///   container's index is appended when that makes two names equal)
/// - the bridge-side veth of container *c*'s endpoint *e*: `veth<c>x<e>` in the host namespace
public struct LabLayout: Sendable, Equatable {
    public var id: LabID
    public var hostNamespace: String
    /// One per uplink, in order.
    public var peerNamespaces: [String]
    /// One per container, in order.
    public var containerNamespaces: [String]
    /// Per container, per endpoint: the veth end enslaved to the bridge.
    public var bridgePorts: [[String]]
    /// The interface name of the external peer's end of each uplink.
    public static let peerInterface = "eth0"

    public init(topology: LabTopology, id: LabID) {
        self.id = id
        let prefix = id.namespacePrefix
        hostNamespace = prefix + "host"
        peerNamespaces = topology.uplinks.indices.map { prefix + "peer\($0)" }
        var seen = Set<String>()
        containerNamespaces = topology.containers.enumerated().map { index, container in
            var name = prefix + "ctr-" + Self.sanitize(container.name)
            if seen.contains(name) || name.utf8.count > 200 { name = prefix + "ctr\(index)" }
            seen.insert(name)
            return name
        }
        bridgePorts = topology.containers.enumerated().map { index, container in
            container.endpoints.indices.map { "veth\(index)x\($0)" }
        }
    }

    /// Every namespace, host first, then peers, then containers.
    public var namespaces: [String] { [hostNamespace] + peerNamespaces + containerNamespaces }

    static func sanitize(_ name: String) -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
        let mapped = String(name.map { allowed.contains($0) ? $0 : "_" })
        return mapped.isEmpty ? "_" : mapped
    }
}

/// Finds and removes labs by their namespaces' names (`weirlab-<owner>-<tag>-<role>` in
/// `/run/netns`), for `weir lab down` and for leftovers of crashed runs. It never touches a
/// namespace whose name lacks the prefix.
public enum LabRegistry {
    public static let prefix = "weirlab-"
    /// Where `ip netns` keeps its namespace files.
    public static let netnsDirectory = "/run/netns"

    /// A lab found on the system.
    public struct Record: Sendable, Equatable {
        public var id: LabID
        /// Its namespaces, sorted.
        public var namespaces: [String]
        /// Whether the owner (a process id) is still running; false for other owners.
        public var ownerIsRunning: Bool
    }

    /// Every namespace whose name starts with `weirlab-`, sorted.
    public static func namespaces() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: netnsDirectory)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// The lab a namespace name belongs to.
    public static func labID(ofNamespace name: String) -> LabID? {
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else { return nil }
        return LabID(owner: String(parts[0]), tag: String(parts[1]))
    }

    /// Every lab with at least one namespace, sorted by id.
    public static func labs() -> [Record] {
        var grouped: [LabID: [String]] = [:]
        for name in namespaces() {
            if let id = labID(ofNamespace: name) { grouped[id, default: []].append(name) }
        }
        return grouped.keys.sorted().map { id in
            Record(id: id, namespaces: grouped[id]!.sorted(), ownerIsRunning: id.ownerProcessID.map(processIsRunning) ?? false)
        }
    }

    /// The namespaces of one lab.
    public static func namespaces(of id: LabID) -> [String] { namespaces().filter(id.owns) }

    /// Deletes every namespace of the lab; returns the names deleted. Throws when one is left.
    @discardableResult
    public static func remove(_ id: LabID) throws -> [String] {
        let names = namespaces(of: id)
        try NamespaceControl.delete(names)
        return names
    }

    /// Deletes the namespaces of every lab, or only of those whose owning process is gone.
    @discardableResult
    public static func removeAll(onlyWithoutRunningOwner: Bool = false) throws -> [String] {
        let chosen = labs().filter { !onlyWithoutRunningOwner || !$0.ownerIsRunning }
        let names = chosen.flatMap(\.namespaces)
        try NamespaceControl.delete(names)
        return names
    }

    static func processIsRunning(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
