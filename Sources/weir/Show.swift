import ArgumentParser
import Foundation
import WeirDriver
import WeirIptables
import WeirNetlink
import WeirNftables

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the kernel's nf_tables ruleset back and print it.",
        discussion: """
            Lifts every rule into Weir's model — Weir's own native rules and the xt blobs
            iptables-nft writes — and prints it as nft text or as iptables-save text.
            Examples:
              weir show --netns lab
              weir show --netns lab --format iptables
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case nft, iptables }

    @Option(help: "The network namespace (a name under /run/netns); default: the current one.")
    var netns: String?

    @Option(help: "nft or iptables.")
    var format: Format = .nft

    func run() throws {
        let (ruleset, diagnostics) = Deployer.show(namespace: netns)
        printDiagnostics(diagnostics)
        guard let ruleset else { throw ExitCode(1) }
        switch format {
        case .nft:
            print(NftTextPrinter.render(ruleset), terminator: "")
        case .iptables:
            for family in ruleset.families { print(IptablesPrinter.render(ruleset, family: family), terminator: "") }
        }
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode(1) }
    }
}

struct ShowBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-batch",
        abstract: "Print a batch file message by message in libnftnl's debug notation.",
        discussion: """
            Examples:
              weir compile Policies/docker-default.weir --target batch -o /tmp/default.batch
              weir show-batch /tmp/default.batch
            """
    )

    @Argument(help: "A batch file written by `weir compile --target batch -o FILE`.")
    var file: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("error: no such file '\(file)'")
            throw ExitCode(1)
        }
        do {
            print(try NftBatch(decoding: [UInt8](data)).explain(), terminator: "")
        } catch {
            printError("\(file): error: not a valid batch: \(error)")
            throw ExitCode(1)
        }
    }
}
