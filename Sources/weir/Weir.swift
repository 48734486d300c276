import ArgumentParser

@main
struct Weir: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weir",
        abstract: "Compile container-host firewall policies into netfilter rulesets.",
        discussion: """
            Exit codes: 0 success, 1 policy errors or stale outputs, 64 usage errors.
            """,
        subcommands: [Compile.self, Import.self, Bench.self, BenchPolicy.self],
        defaultSubcommand: Compile.self
    )
}
