import Foundation
import Testing

/// The `weir` executable as users run it: exit codes, output files, messages.
@Suite("weir command line")
struct CLITests {
    func weir(_ arguments: [String], in directory: String = Repository.root) throws -> WeirBinary.Run {
        try WeirBinary.run(arguments, in: directory)
    }

    func scratchDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("compile prints the generated text and exits 0")
    func compileDefault() throws {
        let run = try weir(["compile", "Policies/docker-default.weir"])
        #expect(run.status == 0)
        #expect(run.stderr.isEmpty)
        let golden = try #require(FileManager.default.contents(atPath: Repository.root + "/Generated/docker-default.iptables"))
        #expect(run.stdout == String(decoding: golden, as: UTF8.self))
    }

    @Test("a bad policy exits 1 with located, caret-marked errors and writes no file")
    func badPolicy() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policy = """
            docker classic
            network bridge {
                bridge docker0
                subnet 172.17.0.0/16
            }
            container c1 {
                network bridge address 172.18.0.2
                publish 70000:80
            }

            """
        try policy.write(toFile: directory + "/bad.weir", atomically: true, encoding: .utf8)
        let run = try weir(["compile", "bad.weir", "-o", "out.rules"], in: directory)
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("""
            bad.weir:8:13: error: port 70000 is outside 1-65535
                    publish 70000:80
                            ^~~~~
            """))
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.rules"))
    }

    @Test("-o writes the output file")
    func outputFile() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try weir(["compile", Repository.root + "/Policies/classic-s8-ipv6.weir", "--target", "ip6tables", "-o", directory + "/v6.rules"])
        #expect(run.status == 0)
        let written = try #require(FileManager.default.contents(atPath: directory + "/v6.rules"))
        #expect(String(decoding: written, as: UTF8.self).contains("--to-destination [fd00:db8:1::2]:80"))
    }

    @Test("usage errors exit 64", arguments: [["compile"], ["compile", "--check", "x.weir"], ["compile", "a.weir", "--target", "pf"]])
    func usage(_ arguments: [String]) throws {
        #expect(try weir(arguments).status == 64)
    }

    @Test("compile --check passes on the repository and fails on a stale directory")
    func check() throws {
        let good = try weir(["compile", "--check"])
        #expect(good.status == 0, "\(good.stderr)")
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stale = try weir(["compile", "--check", "--generated", directory])
        #expect(stale.status == 1)
        #expect(stale.stderr.contains("docker-default.iptables is missing"))
    }

    @Test("import reads an iptables-save dump back to the same text")
    func importDump() throws {
        let run = try weir(["import", Repository.shared + "/reference/docker-classic-default.rules"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == withoutComments(try Repository.sharedFile("reference/docker-classic-default.rules")))
    }

    @Test("import reports an unsupported match at its line and column")
    func importUnsupported() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m state --state NEW -j ACCEPT\nCOMMIT\n".write(toFile: directory + "/dump.rules", atomically: true, encoding: .utf8)
        let run = try weir(["import", "dump.rules"], in: directory)
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("dump.rules:3:"))
        #expect(run.stderr.contains("state"))
    }

    @Test("help shows examples")
    func help() throws {
        let run = try weir(["compile", "--help"])
        #expect(run.stdout.contains("weir compile Policies/docker-default.weir"))
    }
}
