import ArgumentParser
import WeirDriver

struct BenchPolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-policy",
        abstract: "Print a generated policy of a given size (for benchmarks).",
        shouldDisplay: false
    )

    @Option(help: "How many bridge networks.")
    var networks = 100

    @Option(help: "How many published ports in all.")
    var publishes = 1000

    @Option(help: "Published ports per container.")
    var perContainer = 10

    func validate() throws {
        guard (1...60_000).contains(networks) else { throw ValidationError("--networks must be 1...60000") }
        guard (0...192_000).contains(publishes) else { throw ValidationError("--publishes must be 0...192000") }
        guard (1...1000).contains(perContainer) else { throw ValidationError("--per-container must be 1...1000") }
    }

    func run() {
        print(BenchmarkPolicy.text(networks: networks, publishes: publishes, perContainer: perContainer), terminator: "")
    }
}
