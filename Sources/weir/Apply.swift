import ArgumentParser
import Foundation
import WeirDiagnostics
import WeirDriver
import WeirNetlink

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a policy (or a batch file) into the kernel in one transaction.",
        discussion: """
            nftables (the default): one netlink transaction that creates or replaces only Weir's
            tables (weir-filter, weir-nat, …), guarded by the ruleset generation id, so a change
            by another program in between aborts it. Nothing is half-applied: on any error the
            previous ruleset stays. With --target iptables the iptables output is loaded with
            iptables-restore, which is atomic per table only.
            Examples:
              weir apply Policies/docker-default.weir --netns lab
              weir apply /tmp/default.batch --netns lab --check
              weir apply Policies/docker-default.weir --target iptables --netns lab
            """
    )

    enum Target: String, ExpressibleByArgument, CaseIterable { case nft, iptables }

    @Argument(help: "A policy (.weir) or a batch file written by `weir compile --target batch`.")
    var source: String

    @Option(help: "The network namespace (a name under /run/netns); default: the current one.")
    var netns: String?

    @Flag(help: "Have the kernel validate everything, and commit nothing.")
    var check = false

    @Option(help: "nft (netlink batch) or iptables (iptables-restore).")
    var target: Target = .nft

    func run() throws {
        let batch: NftBatch
        if source.hasSuffix(".weir") {
            let result = Compiler.compile(path: source, backends: target == .nft ? [.nftables] : [.iptables])
            printDiagnostics(result.diagnostics)
            guard !result.hasErrors, let ruleset = result.ruleset else { throw ExitCode(1) }
            if target == .iptables {
                let failures = Deployer.applyIptables(ruleset, artifacts: result.artifacts, namespace: netns, checkOnly: check)
                printDiagnostics(failures)
                if !failures.isEmpty { throw ExitCode(1) }
                print(check ? "iptables-restore --test accepted \(source)" : "applied \(source) with iptables-restore")
                return
            }
            batch = result.batch!
        } else {
            guard target == .nft else { throw ValidationError("--target iptables needs a policy (.weir), not a batch file") }
            guard let data = FileManager.default.contents(atPath: source) else {
                printError("error: no such file '\(source)'")
                throw ExitCode(1)
            }
            do {
                batch = try NftBatch(decoding: [UInt8](data))
            } catch {
                printError("\(source): error: not a valid batch, nothing sent: \(error)")
                throw ExitCode(1)
            }
        }
        switch Deployer.apply(batch, namespace: netns, checkOnly: check) {
        case .success(let report):
            let verb = check ? "checked (nothing committed)" : "applied"
            print("\(verb) \(source): \(report.messageCount) messages, \(report.byteCount) bytes, generation \(report.generation) -> \(report.generationAfter)")
        case .failure(let error):
            printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
    }
}
