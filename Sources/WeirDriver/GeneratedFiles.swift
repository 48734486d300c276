import Foundation
import WeirDiagnostics

/// `Generated/` holds the compiled outputs of every policy in `Policies/`: `NAME.iptables`
/// (and `NAME.ip6tables` where the policy has IPv6 rules), `NAME.nft` and `NAME.batch.txt`.
public struct GeneratedFiles {
    public var policiesDirectory: String
    public var generatedDirectory: String

    public init(policies: String = "Policies", generated: String = "Generated") {
        self.policiesDirectory = policies
        self.generatedDirectory = generated
    }

    /// A difference between what is in `Generated/` and what the policies compile to.
    public enum Staleness: Equatable, CustomStringConvertible {
        case missing(String)
        case outdated(String)
        case orphaned(String)

        public var description: String {
            switch self {
            case .missing(let file): "\(file) is missing"
            case .outdated(let file): "\(file) is out of date"
            case .orphaned(let file): "\(file) belongs to no policy"
            }
        }
    }

    /// The policy files, sorted.
    public func policyPaths() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: policiesDirectory)
            .filter { $0.hasSuffix(".weir") }
            .sorted()
            .map { policiesDirectory + "/" + $0 }
    }

    /// What `Generated/` should hold: file name → contents. Fails with every policy's errors.
    public func expected() throws -> [String: String] {
        var files: [String: String] = [:]
        var errors: [Diagnostic] = []
        for path in try policyPaths() {
            let result = Compiler.compile(path: path)
            if result.hasErrors {
                errors += result.diagnostics
                continue
            }
            let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            for artifact in result.artifacts {
                files["\(base).\(artifact.kind.rawValue)"] = artifact.contents
            }
        }
        if !errors.isEmpty { throw DiagnosticError(errors) }
        return files
    }

    /// How `Generated/` differs from the policies' outputs (empty when in sync).
    public func check() throws -> [Staleness] {
        let wanted = try expected()
        var problems: [Staleness] = []
        for (name, contents) in wanted.sorted(by: { $0.key < $1.key }) {
            let path = generatedDirectory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                problems.append(.missing(path))
                continue
            }
            if String(decoding: data, as: UTF8.self) != contents { problems.append(.outdated(path)) }
        }
        for name in try existingOutputs() where wanted[name] == nil {
            problems.append(.orphaned(generatedDirectory + "/" + name))
        }
        return problems
    }

    /// Rewrites `Generated/` from the policies; returns the files written or removed.
    @discardableResult
    public func update() throws -> [String] {
        let wanted = try expected()
        try FileManager.default.createDirectory(atPath: generatedDirectory, withIntermediateDirectories: true)
        var changed: [String] = []
        for (name, contents) in wanted.sorted(by: { $0.key < $1.key }) {
            let path = generatedDirectory + "/" + name
            if FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) != contents {
                try contents.write(toFile: path, atomically: true, encoding: .utf8)
                changed.append(path)
            }
        }
        for name in try existingOutputs() where wanted[name] == nil {
            try FileManager.default.removeItem(atPath: generatedDirectory + "/" + name)
            changed.append(generatedDirectory + "/" + name)
        }
        return changed
    }

    private func existingOutputs() throws -> [String] {
        guard FileManager.default.fileExists(atPath: generatedDirectory) else { return [] }
        let kinds = Artifact.Kind.allCases.map { "." + $0.rawValue }
        return try FileManager.default.contentsOfDirectory(atPath: generatedDirectory)
            .filter { name in kinds.contains { name.hasSuffix($0) } }
    }
}
