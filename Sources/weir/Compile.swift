import ArgumentParser
import Foundation
import WeirDiagnostics
import WeirDriver

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a policy to iptables-restore text, or check Generated/.",
        discussion: """
            Examples:
              weir compile Policies/docker-default.weir
              weir compile Policies/docker-ipv6.weir --target ip6tables -o /tmp/rules.v6
              weir compile --check            # fail when Generated/ is stale
              weir compile --update           # rewrite Generated/ from Policies/
              weir compile Policies/docker-default.weir --verify   # and prove iptables ≡ batch
            """
    )

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case iptables, ip6tables, nft, batch
    }

    @Argument(help: "The policy file (.weir).")
    var policy: String?

    @Option(help: "What to produce: iptables (IPv4), ip6tables (IPv6), nft (nft -f text) or batch (netlink bytes).")
    var target: Target = .iptables

    @Flag(help: "With --target batch: print the batch message by message instead of its bytes.")
    var explain = false

    @Option(name: [.customShort("o"), .customLong("output")], help: "Write to this file instead of standard output.")
    var output: String?

    @Flag(help: "Compile every policy in --policies and fail when --generated differs.")
    var check = false

    @Flag(help: "Compile every policy in --policies and rewrite --generated.")
    var update = false

    @Flag(help: "Prove the iptables output equivalent to the nftables batch (weir verify POLICY); a failed proof writes nothing and exits 1.")
    var verify = false

    @Option(help: "The policies directory for --check and --update.")
    var policies = "Policies"

    @Option(help: "The generated-outputs directory for --check and --update.")
    var generated = "Generated"

    func validate() throws {
        if check && update { throw ValidationError("--check and --update exclude each other") }
        if (check || update) && policy != nil { throw ValidationError("--check and --update take no policy argument") }
        if !(check || update) && policy == nil { throw ValidationError("missing a policy file (or --check / --update)") }
        if explain && target != .batch { throw ValidationError("--explain goes with --target batch") }
        if target == .batch && !explain && output == nil { throw ValidationError("--target batch writes binary: give -o FILE, or --explain") }
    }

    func run() throws {
        if check || update {
            try runGenerated()
            return
        }
        let backends: Set<Backend> = verify ? Set(Backend.allCases) : (target == .iptables || target == .ip6tables) ? [.iptables] : [.nftables]
        let result = Compiler.compile(path: policy!, backends: backends)
        printDiagnostics(result.diagnostics)
        guard !result.hasErrors else { throw ExitCode(1) }
        if verify, !prove(policy!, result) { throw ExitCode(1) }
        let bytes: [UInt8]
        switch target {
        case .iptables: bytes = Array((result.artifact(.iptables)?.contents ?? "").utf8)
        case .ip6tables: bytes = Array((result.artifact(.ip6tables)?.contents ?? "").utf8)
        case .nft: bytes = Array((result.artifact(.nft)?.contents ?? "").utf8)
        case .batch: bytes = explain ? Array((result.artifact(.batchText)?.contents ?? "").utf8) : result.batch?.bytes ?? []
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                printError("error: cannot write '\(output)'")
                throw ExitCode(1)
            }
        } else {
            FileHandle.standardOutput.write(Data(bytes))
        }
    }

    private func runGenerated() throws {
        let files = GeneratedFiles(policies: policies, generated: generated)
        do {
            if verify {
                // Every proof before anything is written; a policy that does not compile is
                // left to the check or update below, which reports its errors.
                var proved = true
                for path in try files.policyPaths() {
                    let result = Compiler.compile(path: path)
                    if !result.hasErrors, !prove(path, result) { proved = false }
                }
                if !proved { throw ExitCode(1) }
            }
            if check {
                let stale = try files.check()
                for problem in stale { printError("error: \(problem)") }
                if !stale.isEmpty {
                    printError("run 'make generate' (weir compile --update) and review the diff")
                    throw ExitCode(1)
                }
                print("\(generated)/ is up to date")
            } else {
                for path in try files.update() { print("wrote \(path)") }
            }
        } catch let error as DiagnosticError {
            printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error.localizedDescription)")
            throw ExitCode(1)
        }
    }
}

/// The one-policy proof of `--verify`: its iptables output ≡ its batch, each read back from its
/// artifact. Prints the one-line result (and a counterexample) to standard error.
private func prove(_ path: String, _ result: CompileResult) -> Bool {
    let loaded = RulesetSource.host(ofPolicy: path).flatMap { host in
        VerifyInputs.translation(of: result, policy: path, host: host)
    }
    switch loaded {
    case .failure(let error):
        printDiagnostics(error.diagnostics)
        return false
    case .success(let inputs):
        let proof = inputs.check()
        if proof.equivalent {
            printError(VerifyReport.summary(inputs, proof))
            return true
        }
        if let counterexample = proof.counterexample, let problem = VerifyReport.simulatorDisagreement(inputs, counterexample) {
            printError("warning: \(problem)")
        }
        FileHandle.standardError.write(Data(("error: " + VerifyReport.text(inputs, proof)).utf8))
        return false
    }
}

func printDiagnostics(_ diagnostics: [Diagnostic]) {
    guard !diagnostics.isEmpty else { return }
    FileHandle.standardError.write(Data(DiagnosticRenderer.render(diagnostics).utf8))
}

/// The value of a result, or its diagnostics printed and the command ended with `code`.
func value<T>(of result: Result<T, DiagnosticError>, orExit code: Int32) throws -> T {
    switch result {
    case .success(let value): return value
    case .failure(let error):
        printDiagnostics(error.diagnostics)
        throw ExitCode(code)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
