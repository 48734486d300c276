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
        let backends: Set<Backend> = (target == .iptables || target == .ip6tables) ? [.iptables] : [.nftables]
        let result = Compiler.compile(path: policy!, backends: backends)
        printDiagnostics(result.diagnostics)
        guard !result.hasErrors else { throw ExitCode(1) }
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

func printDiagnostics(_ diagnostics: [Diagnostic]) {
    guard !diagnostics.isEmpty else { return }
    FileHandle.standardError.write(Data(DiagnosticRenderer.render(diagnostics).utf8))
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
