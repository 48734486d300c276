import ArgumentParser
import Foundation
import WeirDriver

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove two rulesets treat every packet alike, on a host or on every host, or print a packet they do not.",
        discussion: """
            A and B are each a policy (.weir), an iptables-save file, an nft batch file, or netns:NAME. \
            With one argument, a policy: prove its iptables output equivalent to its nftables batch, \
            each read back from its own artifact. The host is --host's, else that of the first input \
            that is a policy, else (or with --every-host) every possible host: routes, local and \
            broadcast addresses and forwarding unconstrained, and a counterexample comes with a \
            host it holds on.

            Exit codes: 0 equivalent, 1 not equivalent (with a counterexample), 2 bad input, 64 usage errors.

            Examples:
              weir verify Policies/docker-default.weir
              weir verify Policies/docker-default.weir Generated/docker-default.iptables
              weir verify Policies/docker-default.weir netns:lab --format json
              weir verify Policies/docker-default.weir --every-host
              weir verify before.rules after.rules        # on every possible host
            """
    )

    enum Format: String, ExpressibleByArgument { case text, json }

    @Argument(help: "The left ruleset: a policy, an iptables-save file, a batch file, or netns:NAME.")
    var left: String

    @Argument(help: "The right ruleset (without it, LEFT must be a policy: its iptables output against its batch).")
    var right: String?

    @Option(help: "A policy whose host model to use (interfaces, addresses, routes).")
    var host: String?

    @Flag(help: "Prove it for every possible host, even when an input is a policy.")
    var everyHost = false

    @Option(help: "text or json.")
    var format: Format = .text

    func validate() throws {
        if everyHost && host != nil { throw ValidationError("--every-host and --host exclude each other") }
        guard right == nil else { return }
        guard case .policy = RulesetSource(argument: left) else {
            throw ValidationError("with one argument, it must be a policy (.weir): its iptables output is checked against its batch")
        }
    }

    func run() throws {
        let loaded = if let right {
            VerifyInputs.load(left, right, hostPolicy: host, everyHost: everyHost)
        } else {
            VerifyInputs.translation(ofPolicy: left, hostPolicy: host, everyHost: everyHost)
        }
        let inputs = try value(of: loaded, orExit: 2)
        let result = inputs.check()
        if let counterexample = result.counterexample, let problem = VerifyReport.simulatorDisagreement(inputs, counterexample) {
            printError("warning: \(problem)")
        }
        switch format {
        case .text: print(VerifyReport.text(inputs, result), terminator: "")
        case .json: print(VerifyReport.json(inputs, result))
        }
        if !result.equivalent { throw ExitCode(1) }
    }
}
