import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirNetlink
import WeirNftables
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
        /// `nft -f` input: Weir's own tables, both families.
        case nft
        /// The netlink batch message by message, in libnftnl's debug notation.
        case batchText = "batch.txt"
    }

    public var kind: Kind
    public var contents: String
}

/// The backends a compile runs.
public enum Backend: Sendable, Hashable, CaseIterable {
    /// iptables-restore text per family.
    case iptables
    /// nftables: the netlink batch, its explanation and the nft text.
    case nftables
}

/// The result of compiling a policy: the model, its artifacts, and every diagnostic.
/// When `diagnostics` holds an error there is no ruleset and no artifact.
public struct CompileResult: Sendable {
    public var ruleset: Ruleset?
    public var artifacts: [Artifact]
    /// The nftables program and its batch (with the nftables backend).
    public var nftProgram: NftRuleset?
    public var batch: NftBatch?
    public var diagnostics: [Diagnostic]

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    public func artifact(_ kind: Artifact.Kind) -> Artifact? { artifacts.first { $0.kind == kind } }

    static func failed(_ diagnostics: [Diagnostic]) -> CompileResult {
        CompileResult(ruleset: nil, artifacts: [], nftProgram: nil, batch: nil, diagnostics: diagnostics)
    }
}

/// The pipeline: load → parse → check → lower → backends.
public enum Compiler {
    /// Compiles a policy file and the files it includes.
    public static func compile(path: String, backends: Set<Backend> = Set(Backend.allCases)) -> CompileResult {
        let (items, diagnostics) = PolicyLoader.load(path: path)
        return compile(items: items, diagnostics: diagnostics, backends: backends)
    }

    /// Compiles policy text that is not on disk.
    public static func compile(text: String, path: String, backends: Set<Backend> = Set(Backend.allCases)) -> CompileResult {
        let (items, diagnostics) = PolicyLoader.load(text: text, path: path)
        return compile(items: items, diagnostics: diagnostics, backends: backends)
    }

    /// Compiles a syntax tree, such as one the Swift DSL built.
    public static func compile(_ ast: PolicyAST, backends: Set<Backend> = Set(Backend.allCases)) -> CompileResult {
        compile(items: ast.items, diagnostics: [], backends: backends)
    }

    static func compile(items: [Located<Item>], diagnostics: [Diagnostic], backends: Set<Backend>) -> CompileResult {
        // Check even when parsing failed, to report semantic errors of the parts that parsed.
        let (checked, semantic) = Checker.check(items)
        var all = diagnostics + semantic
        guard let checked, !all.contains(where: { $0.severity == .error }) else { return .failed(all) }
        let ruleset = DockerClassic.lower(checked)
        var result = CompileResult(ruleset: ruleset, artifacts: [], nftProgram: nil, batch: nil, diagnostics: [])
        if backends.contains(.iptables) {
            for family in ruleset.families {
                all += IptablesPrinter.unsupported(ruleset, family: family)
                result.artifacts.append(Artifact(kind: family == .ipv4 ? .iptables : .ip6tables,
                                                 contents: IptablesPrinter.render(ruleset, family: family)))
            }
        }
        if backends.contains(.nftables) {
            let (program, found) = NftLowering.lower(ruleset)
            all += found + NftTextPrinter.unsupported(ruleset)
            if !all.contains(where: { $0.severity == .error }) {
                do {
                    let batch = try NftBatch.replacing(program)
                    result.nftProgram = program
                    result.batch = batch
                    result.artifacts.append(Artifact(kind: .nft, contents: NftTextPrinter.render(ruleset)))
                    result.artifacts.append(Artifact(kind: .batchText, contents: batch.explain()))
                } catch {
                    all.append(.error("cannot encode the nftables batch: \(error)", at: nil))
                }
            }
        }
        if all.contains(where: { $0.severity == .error }) { return .failed(all) }
        result.diagnostics = all
        return result
    }
}
