import Foundation
import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirNetlink
import WeirNftables
import WeirPolicy
import WeirSema
import WeirSimulator

/// Where a ruleset comes from for analysis: a policy, an `iptables-save` file, an nft batch
/// file, or a live namespace (`netns:NAME`).
public enum RulesetSource: Sendable, Equatable, CustomStringConvertible {
    case policy(String)
    case iptablesSave(String)
    case batch(String)
    case namespace(String)

    /// Classifies a command-line argument: `netns:NAME`, `*.weir`, a file starting with the
    /// netlink batch-begin message, or else an iptables-save text.
    public init(argument: String) {
        if argument.hasPrefix("netns:") { self = .namespace(String(argument.dropFirst(6))); return }
        if argument.hasSuffix(".weir") { self = .policy(argument); return }
        if let handle = FileHandle(forReadingAtPath: argument) {
            defer { try? handle.close() }
            let head = [UInt8](handle.readData(ofLength: 6))
            // nlmsghdr: u32 length, u16 type (NFNL_MSG_BATCH_BEGIN = 0x10)
            if head.count == 6, head[4] == 0x10, head[5] == 0 { self = .batch(argument); return }
        }
        self = .iptablesSave(argument)
    }

    public var description: String {
        switch self {
        case .policy(let path), .iptablesSave(let path), .batch(let path): path
        case .namespace(let name): "netns:\(name)"
        }
    }

    /// The ruleset, and the host model when the source is a policy.
    public func load() -> Result<(ruleset: Ruleset, host: HostModel?), DiagnosticError> {
        switch self {
        case .policy(let path):
            let (items, parsed) = PolicyLoader.load(path: path)
            let (checked, semantic) = Checker.check(items)
            guard let checked, !(parsed + semantic).contains(where: { $0.severity == .error }) else {
                return .failure(DiagnosticError(parsed + semantic))
            }
            return .success((DockerClassic.lower(checked), HostModel(policy: checked)))
        case .iptablesSave(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                return .failure(DiagnosticError([.error("no such file '\(path)'", at: nil)]))
            }
            let text = String(decoding: data, as: UTF8.self)
            // ip6tables-save text names IPv6 addresses; anything else is read as IPv4.
            let family: Family = text.split(separator: "\n").contains { $0.hasPrefix("-A ") && $0.contains(":") && $0.contains("/128") || $0.contains("::") } ? .ipv6 : .ipv4
            let (ruleset, diagnostics) = IptablesImporter.parse(SourceFile(path: path, bytes: [UInt8](data)), family: family)
            if diagnostics.contains(where: { $0.severity == .error }) { return .failure(DiagnosticError(diagnostics)) }
            return .success((ruleset, nil))
        case .batch(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                return .failure(DiagnosticError([.error("no such file '\(path)'", at: nil)]))
            }
            do {
                let batch = try NftBatch(decoding: [UInt8](data))
                let (ruleset, diagnostics) = NftLifting.lift(batch.program)
                if diagnostics.contains(where: { $0.severity == .error }) { return .failure(DiagnosticError(diagnostics)) }
                return .success((ruleset, nil))
            } catch {
                return .failure(DiagnosticError([.error("\(path): not a valid batch: \(error)", at: nil)]))
            }
        case .namespace(let name):
            let (ruleset, diagnostics) = Deployer.show(namespace: name)
            guard let ruleset, !diagnostics.contains(where: { $0.severity == .error }) else { return .failure(DiagnosticError(diagnostics)) }
            return .success((ruleset, nil))
        }
    }

    /// The host model of a policy file (for `--host`).
    public static func host(ofPolicy path: String) -> Result<HostModel, DiagnosticError> {
        switch RulesetSource.policy(path).load() {
        case .success(let loaded): .success(loaded.host!)
        case .failure(let error): .failure(error)
        }
    }
}
