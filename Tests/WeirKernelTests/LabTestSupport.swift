import Foundation
import Testing
import WeirDriver
import WeirLab
import WeirModel
import WeirSema

/// A ruleset backend the lab tests run against: how it loads a compiled policy into the lab's host
/// namespace. Every traffic test runs once per entry of `LabBackend.all`.
struct LabBackend: Sendable, CustomTestStringConvertible {
    var name: String
    var apply: @Sendable (_ compiled: CompileResult, _ hostNamespace: String) throws -> Void

    var testDescription: String { name }

    /// `ip netns exec HOST iptables-restore` of the `.iptables` artifact.
    static let iptables = LabBackend(name: "iptables") { compiled, namespace in
        guard let artifact = compiled.artifact(.iptables) else {
            throw CommandError(description: "the policy compiled to no iptables artifact: \(compiled.diagnostics)")
        }
        guard let ip = CommandRunner.locate("ip"), let restore = CommandRunner.locate("iptables-restore") else {
            throw CommandError(description: "ip or iptables-restore is not installed")
        }
        let result = try CommandRunner.run(ip, ["netns", "exec", namespace, restore], stdin: artifact.contents)
        guard result.succeeded else { throw CommandError(description: "iptables-restore in \(namespace) failed: \(result)") }
    }

    /// `Deployer.apply` of the policy's netlink batch: one nftables transaction.
    static let nftables = LabBackend(name: "nftables") { compiled, namespace in
        guard let batch = compiled.batch else {
            throw CommandError(description: "the policy compiled to no nftables batch: \(compiled.diagnostics)")
        }
        if case .failure(let error) = Deployer.apply(batch, namespace: namespace) {
            throw CommandError(description: "weir apply in \(namespace) failed: \(error)")
        }
    }

    static let all: [LabBackend] = [.iptables, .nftables]
}

/// A compiled policy and the lab topology of its host.
struct LabPolicy: Sendable {
    var compiled: CompileResult
    var topology: LabTopology

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A policy under `Policies/`.
    static func named(_ name: String) throws -> LabPolicy {
        let path = root + "/Policies/" + name
        let loaded = PolicyLoader.load(path: path)
        let (checked, semantic) = Checker.check(loaded.items)
        let failed = (loaded.diagnostics + semantic).contains { $0.severity == .error }
        return try make(Compiler.compile(path: path), checked: failed ? nil : checked)
    }

    /// Policy text that is not on disk.
    static func text(_ text: String, path: String = "lab-variant.weir") throws -> LabPolicy {
        let loaded = PolicyLoader.load(text: text, path: path)
        let (checked, semantic) = Checker.check(loaded.items)
        let failed = (loaded.diagnostics + semantic).contains { $0.severity == .error }
        return try make(Compiler.compile(text: text, path: path), checked: failed ? nil : checked)
    }

    private static func make(_ compiled: CompileResult, checked: CheckedPolicy?) throws -> LabPolicy {
        guard !compiled.hasErrors, let checked else {
            throw CommandError(description: "policy does not compile: \(compiled.diagnostics)")
        }
        return LabPolicy(compiled: compiled, topology: try LabTopology(policy: checked))
    }

    /// The seed host (`Policies/docker-default.weir`).
    static func seed() throws -> LabPolicy { try named("docker-default.weir") }

    /// Builds the lab and loads the policy with `backend`.
    func up(_ backend: LabBackend) async throws -> Lab {
        let compiled = compiled
        return try await Lab.up(topology) { namespace in try backend.apply(compiled, namespace) }
    }
}

/// Namespaces `ip netns list` shows, by name.
func listedNamespaces() throws -> [String] {
    guard let ip = CommandRunner.locate("ip") else { throw CommandError(description: "ip is not installed") }
    let result = try CommandRunner.run(ip, ["netns", "list"])
    guard result.succeeded else { throw CommandError(description: "ip netns list failed: \(result)") }
    return result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
}

/// Timeouts: probes expected to connect may take long (they return as soon as they do); probes
/// expected to fail wait this long, far more than a namespace-to-namespace round trip needs.
enum LabTimeout {
    static let success: Duration = .seconds(3)
    static let failure: Duration = .milliseconds(500)
}
