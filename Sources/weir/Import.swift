import ArgumentParser
import Foundation
import WeirDiagnostics
import WeirIptables
import WeirModel

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read an iptables-save dump into Weir's model and print it back normalised.",
        discussion: """
            Unsupported matches and targets are reported with their line and column.
            Examples:
              iptables-save > dump.rules && weir import dump.rules
              ip6tables-save | weir import - --family ip6
            """
    )

    @Argument(help: "The iptables-save file, or - for standard input.")
    var file: String

    @Option(help: "The dump's family: ip (iptables-save) or ip6 (ip6tables-save).")
    var family: String = "ip"

    func run() throws {
        guard let family = Family(rawValue: family) else {
            throw ValidationError("--family must be ip or ip6")
        }
        let bytes: [UInt8]
        if file == "-" {
            bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: no such file '\(file)'")
                throw ExitCode(1)
            }
            bytes = [UInt8](data)
        }
        let source = SourceFile(path: file == "-" ? "<stdin>" : file, bytes: bytes)
        let (ruleset, diagnostics) = IptablesImporter.parse(source, family: family)
        printDiagnostics(diagnostics)
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode(1) }
        FileHandle.standardOutput.write(Data(IptablesPrinter.render(ruleset, family: family).utf8))
    }
}
