import Foundation
import WeirDiagnostics
import WeirIptables
import WeirModel
import WeirNetlink
import WeirNftables

/// Puts rulesets into a kernel and reads them back: nftables through one netlink transaction,
/// iptables through `iptables-restore`. Failures are diagnostics located at the policy line
/// of the rule the kernel refused, when it is known.
public enum Deployer {
    /// Applies a batch in one transaction (`checkOnly`: validate, commit nothing).
    /// `generation` overrides the generation id read from the kernel (tests simulate races with it).
    public static func apply(_ batch: NftBatch, namespace: String?, checkOnly: Bool = false,
                             generation: UInt32? = nil) -> Result<ApplyReport, DiagnosticError> {
        let socket: NetlinkSocket
        do {
            socket = try NetlinkSocket(namespace: namespace)
        } catch {
            return .failure(DiagnosticError([.error("\(error)", at: nil)]))
        }
        do {
            return .success(try NftTransaction.apply(batch, on: socket, checkOnly: checkOnly, generation: generation))
        } catch {
            return .failure(DiagnosticError(diagnostics(for: error, batch: batch)))
        }
    }

    /// The kernel's complaint as diagnostics. nf_tables reports every message after the first
    /// failure with the same error, so the first one is the cause and the rest are counted.
    static func diagnostics(for error: NftTransactionError, batch: NftBatch) -> [Diagnostic] {
        switch error {
        case .transport(let failure):
            return [.error("netlink: \(failure)", at: nil)]
        case .rulesetChanged:
            return [.error("\(error) (run it again to apply on top of the new ruleset)", at: nil)]
        case .rejected(let errors):
            guard let first = errors.first else { return [.error("the kernel rejected the batch", at: nil)] }
            var notes: [Diagnostic] = []
            if errors.count > 1 {
                notes.append(.note("\(errors.count - 1) later message(s) failed after it with the same transaction", at: nil))
            }
            // The policy line of the rule or set the refused message writes.
            let at = first.provenance ?? first.message.flatMap { batch.provenance(for: $0) }
            return [.error("kernel rejected \(describe(first, batch: batch)): \(first.errnoText) (\(first.errnoName))",
                           at: at, notes: notes)]
        }
    }

    /// `rule \`iifname "docker0" accept\` in ip weir-filter FORWARD (#3)`,
    /// `set __map0 in ip weir-nat (element #7)`, or the message kind.
    static func describe(_ error: NftKernelError, batch: NftBatch) -> String {
        guard let message = error.message else { return "message seq \(error.seq)" }
        if message.kind == .newSet || message.kind == .newSetElement, let family = message.family, let set = message.set {
            var text = "set \(set) in \(family.rawValue) \(message.table ?? "?")"
            if let index = error.elementIndex {
                text += " (element #\(index))"
            } else if let elements = message.elements {
                text += " (\(message.kind.rawValue) of elements \(elements.count == 1 ? "#\(elements.lowerBound)" : "#\(elements.lowerBound)–#\(elements.upperBound - 1)"))"
            }
            return text
        }
        guard message.kind == .newRule, let family = message.family, let rule = batch.rule(for: message) else {
            return "\(message)"
        }
        var text = "rule"
        if case .success(let lifted) = NftLifting.lift(rule, family: family) {
            text += " `\(NftTextPrinter.render(lifted, family: family))`"
        }
        text += " in \(family.rawValue) \(message.table ?? "?") \(message.chain ?? "?")"
        if let index = message.ruleIndex { text += " (#\(index))" }
        if let expression = error.expressionName { text += " at its \(expression) expression" }
        return text
    }

    /// Loads a compiled policy's iptables text with `iptables-restore` (`ip6tables-restore` for
    /// IPv6) in `namespace`. Atomic per table only: each `COMMIT` block is its own transaction.
    /// `checkOnly` runs `--test`. A failed line is reported at its rule's policy line.
    public static func applyIptables(_ ruleset: Ruleset, artifacts: [Artifact], namespace: String?, checkOnly: Bool = false) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for family in ruleset.families {
            let kind: Artifact.Kind = family == .ipv4 ? .iptables : .ip6tables
            guard let text = artifacts.first(where: { $0.kind == kind })?.contents else { continue }
            let tool = family == .ipv4 ? "iptables-restore" : "ip6tables-restore"
            var arguments = checkOnly ? ["--test"] : []
            arguments.insert(tool, at: 0)
            let command = namespace.map { ["ip", "netns", "exec", $0] + arguments } ?? arguments
            let result: ProcessResult
            do {
                result = try ProcessRunner.run(command, stdin: text)
            } catch {
                diagnostics.append(.error("cannot run \(tool): \(error)", at: nil))
                continue
            }
            guard result.status != 0 else { continue }
            let output = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            let at = failedLine(in: output).flatMap { provenance(ofLine: $0, in: ruleset, family: family) }
            diagnostics.append(.error("\(tool) failed: \(output)", at: at))
        }
        return diagnostics
    }

    /// The line number in `Error occurred at line: N` or `iptables-restore: line N failed`.
    static func failedLine(in output: String) -> Int? {
        for marker in ["at line: ", "line "] {
            if let range = output.range(of: marker), let line = Int(output[range.upperBound...].prefix { $0.isNumber }) {
                return line
            }
        }
        return nil
    }

    /// The provenance of the rule printed on `line` (1-based) of the family's iptables text.
    static func provenance(ofLine line: Int, in ruleset: Ruleset, family: Family) -> SourceRange? {
        let text = IptablesPrinter.render(ruleset, family: family)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count, lines[line - 1].hasPrefix("-A ") else { return nil }
        let rulesBefore = lines[..<(line - 1)].filter { $0.hasPrefix("-A ") }.count
        let rules = ruleset.tables(of: family).flatMap { $0.chains.flatMap(\.rules) }
        return rulesBefore < rules.count ? rules[rulesBefore].provenance : nil
    }

    /// The kernel's nf_tables ruleset, lifted into the model (Weir's `weir-T` tables and
    /// iptables-nft's `T` tables both become `T`). Sets are read with their elements, and a rule
    /// that looks one up lifts to one rule per element (`NftLifting`, "Set lookups").
    public static func show(namespace: String?) -> (ruleset: Ruleset?, diagnostics: [Diagnostic]) {
        do {
            let socket = try NetlinkSocket(namespace: namespace)
            let snapshot = try NftReadback.snapshot(socket)
            var (ruleset, diagnostics) = NftLifting.lift(snapshot.ruleset)
            for table in snapshot.otherTables {
                diagnostics.append(.init(.warning, "table \(table) is of a family Weir does not model; not shown", at: nil))
            }
            return (ruleset, diagnostics)
        } catch {
            return (nil, [.error("\(error)", at: nil)])
        }
    }
}

/// A finished child process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum ProcessRunner {
    /// Runs `command` (looked up on PATH and the sbin directories) with `stdin`, capturing output.
    static func run(_ command: [String], stdin: String) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = (environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/sbin"
        process.environment = environment
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Write on another thread so a child that talks before reading cannot dead-lock us.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: err, as: UTF8.self))
    }
}
