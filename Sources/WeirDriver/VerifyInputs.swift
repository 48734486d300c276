import Foundation
import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirNetlink
import WeirNftables
import WeirSimulator
import WeirVerifier

/// What `weir verify` compares: two rulesets, what to call them, and the host to compare them on.
public struct VerifyInputs: Sendable {
    /// One side: a ruleset and the name it is shown under.
    public struct Side: Sendable {
        public var label: String
        public var ruleset: Ruleset
        public init(label: String, ruleset: Ruleset) {
            self.label = label
            self.ruleset = ruleset
        }
    }

    public var left: Side
    public var right: Side
    /// Nil: every possible host.
    public var host: HostModel?

    public init(left: Side, right: Side, host: HostModel?) {
        self.left = left
        self.right = right
        self.host = host
    }

    /// Two sources (policies, iptables-save files, batch files, `netns:NAME`). The host is
    /// `hostPolicy`'s, else that of the first source that is a policy, else every possible
    /// host; `everyHost` asks for every possible host whatever the sources are.
    public static func load(_ left: String, _ right: String, hostPolicy: String?, everyHost: Bool = false) -> Result<VerifyInputs, DiagnosticError> {
        var errors: [Diagnostic] = []
        var sides: [(side: Side, host: HostModel?)] = []
        for argument in [left, right] {
            let source = RulesetSource(argument: argument)
            switch source.load() {
            case .success(let loaded): sides.append((Side(label: source.description, ruleset: loaded.ruleset), loaded.host))
            case .failure(let error): errors += error.diagnostics
            }
        }
        var host: HostModel? = sides.lazy.compactMap(\.host).first
        if let hostPolicy {
            switch RulesetSource.host(ofPolicy: hostPolicy) {
            case .success(let model): host = model
            case .failure(let error): errors += error.diagnostics
            }
        }
        guard errors.isEmpty else { return .failure(DiagnosticError(errors)) }
        return .success(VerifyInputs(left: sides[0].side, right: sides[1].side, host: everyHost ? nil : host))
    }

    /// Translation validation of one policy: its iptables output (IPv4 and IPv6 artifacts,
    /// read back by `IptablesImporter`) against its netlink batch (decoded from its bytes and
    /// lifted by `NftLifting`), on the policy's host or `hostPolicy`'s, or on every possible host.
    public static func translation(ofPolicy path: String, hostPolicy: String?, everyHost: Bool = false) -> Result<VerifyInputs, DiagnosticError> {
        let result = Compiler.compile(path: path)
        guard !result.hasErrors else { return .failure(DiagnosticError(result.diagnostics)) }
        if everyHost { return translation(of: result, policy: path, host: nil) }
        switch RulesetSource.host(ofPolicy: hostPolicy ?? path) {
        case .success(let host): return translation(of: result, policy: path, host: host)
        case .failure(let error): return .failure(error)
        }
    }

    /// Translation validation of a compile that ran both backends.
    public static func translation(of result: CompileResult, policy path: String, host: HostModel?) -> Result<VerifyInputs, DiagnosticError> {
        switch liftedArtifacts(of: result, policy: path) {
        case .success(let lifted):
            return .success(VerifyInputs(left: Side(label: "\(path) (iptables)", ruleset: lifted.iptables),
                                         right: Side(label: "\(path) (batch)", ruleset: lifted.batch),
                                         host: host))
        case .failure(let error):
            return .failure(error)
        }
    }

    /// The rulesets a compile's outputs stand for, each read back from its own artifact: the
    /// iptables and ip6tables texts imported and merged, and the batch decoded and lifted.
    public static func liftedArtifacts(of result: CompileResult, policy path: String) -> Result<(iptables: Ruleset, batch: Ruleset), DiagnosticError> {
        guard let bytes = result.batch?.bytes else {
            return .failure(DiagnosticError([.error("\(path): the compile produced no nftables batch", at: nil)]))
        }
        var errors: [Diagnostic] = []
        var iptables = Ruleset()
        let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        for (kind, family) in [(Artifact.Kind.iptables, Family.ipv4), (.ip6tables, .ipv6)] {
            guard let artifact = result.artifact(kind) else { continue }
            let file = SourceFile(path: "\(base).\(kind.rawValue)", bytes: Array(artifact.contents.utf8))
            let (imported, diagnostics) = IptablesImporter.parse(file, family: family)
            errors += diagnostics.filter { $0.severity == .error }
            for table in imported.tables { iptables.add(table) }
        }
        var batch = Ruleset()
        do {
            let decoded = try NftBatch(decoding: bytes)
            let (lifted, diagnostics) = NftLifting.lift(decoded.program)
            errors += diagnostics.filter { $0.severity == .error }
            batch = lifted
        } catch {
            errors.append(.error("\(path): the compiled batch does not decode: \(error)", at: nil))
        }
        guard errors.isEmpty else { return .failure(DiagnosticError(errors)) }
        return .success((iptables, batch))
    }

    /// Runs the proof.
    public func check() -> EquivalenceResult {
        Verifier.check(left.ruleset, right.ruleset, host: host)
    }
}
