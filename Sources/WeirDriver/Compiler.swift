import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirPolicy
import WeirSema

/// One output file of a compile.
public struct Artifact: Sendable, Equatable {
    /// What the file holds; also its file-name extension in `Generated/`.
    public enum Kind: String, Sendable, CaseIterable {
        /// `iptables-restore` input (IPv4).
        case iptables
        /// `ip6tables-restore` input (IPv6).
        case ip6tables
    }

    public var kind: Kind
    public var contents: String
}

/// The result of compiling a policy: the model, its artifacts, and every diagnostic.
/// When `diagnostics` holds an error there is no ruleset and no artifact.
public struct CompileResult: Sendable {
    public var ruleset: Ruleset?
    public var artifacts: [Artifact]
    public var diagnostics: [Diagnostic]

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    public func artifact(_ kind: Artifact.Kind) -> Artifact? { artifacts.first { $0.kind == kind } }
}

/// The pipeline: load → parse → check → lower → backends.
public enum Compiler {
    /// Compiles a policy file and the files it includes.
    public static func compile(path: String) -> CompileResult {
        let (items, diagnostics) = PolicyLoader.load(path: path)
        return compile(items: items, diagnostics: diagnostics)
    }

    /// Compiles policy text that is not on disk.
    public static func compile(text: String, path: String) -> CompileResult {
        let (items, diagnostics) = PolicyLoader.load(text: text, path: path)
        return compile(items: items, diagnostics: diagnostics)
    }

    /// Compiles a syntax tree, such as one the Swift DSL built.
    public static func compile(_ ast: PolicyAST) -> CompileResult {
        compile(items: ast.items, diagnostics: [])
    }

    static func compile(items: [Located<Item>], diagnostics: [Diagnostic]) -> CompileResult {
        // Check even when parsing failed, to report semantic errors of the parts that parsed.
        let (checked, semantic) = Checker.check(items)
        let all = diagnostics + semantic
        guard let checked, !all.contains(where: { $0.severity == .error }) else {
            return CompileResult(ruleset: nil, artifacts: [], diagnostics: all)
        }
        let ruleset = DockerClassic.lower(checked)
        var unsupported: [Diagnostic] = []
        var artifacts: [Artifact] = []
        for family in ruleset.families {
            unsupported += IptablesPrinter.unsupported(ruleset, family: family)
            artifacts.append(Artifact(kind: family == .ipv4 ? .iptables : .ip6tables,
                                      contents: IptablesPrinter.render(ruleset, family: family)))
        }
        if unsupported.contains(where: { $0.severity == .error }) {
            return CompileResult(ruleset: nil, artifacts: [], diagnostics: all + unsupported)
        }
        return CompileResult(ruleset: ruleset, artifacts: artifacts, diagnostics: all + unsupported)
    }
}
