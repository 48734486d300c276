import ArgumentParser

@main
struct Weir: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weir",
        abstract: "Compile container-host firewall policies into netfilter rulesets.",
        discussion: """
            Examples:
              weir compile Policies/docker-default.weir
              weir apply Policies/docker-default.weir --netns lab
              weir show --netns lab --format iptables
              weir verify Policies/docker-default.weir
            Exit codes: 0 success, 1 policy, kernel or input errors (or stale outputs), 64 usage errors \
            (weir verify: 1 not equivalent, 2 bad input).
            """,
        subcommands: [Compile.self, Apply.self, Show.self, ShowBatch.self, Trace.self, Verify.self, Import.self, Bench.self, BenchPolicy.self, LabCommands.self],
        defaultSubcommand: Compile.self
    )
}
