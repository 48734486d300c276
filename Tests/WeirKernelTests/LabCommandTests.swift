import Foundation
import Testing
import WeirLab
import WeirModel

/// `weir lab up`, `list` and `down` as users run them: the namespaces appear, the ruleset works
/// (a published port answers, an unpublished container does not), and `down` leaves nothing;
/// failures and interrupts leave no namespace of the command behind. Serialized: `weir lab down`
/// removes every lab whose process is gone, which includes the other tests' `weir lab up` labs.
@Suite(.serialized, .enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct LabCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The `weir` process's id: the owner part of the labs it makes.
        var pid: Int32
    }

    /// The `weir` built alongside these tests (whatever the scratch path), else `.build/debug/weir`.
    static let binary: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("weir").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return LabPolicy.root + "/.build/debug/weir"
    }()

    /// Runs `weir` in the package root; `interruptAfter` sends it SIGINT that long after it starts.
    func weir(_ arguments: [String], interruptAfter: Duration? = nil) throws -> Run {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("\(Self.binary) is missing: build with `swift build --build-tests` (make test does)")
            throw CancellationError()
        }
        let stem = FileManager.default.temporaryDirectory.appendingPathComponent("weir-lab-\(UUID().uuidString)").path
        let (outPath, errPath) = (stem + ".out", stem + ".err")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: LabPolicy.root)
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
        if let interruptAfter {
            Thread.sleep(forTimeInterval: Double(interruptAfter.components.attoseconds) / 1e18 + Double(interruptAfter.components.seconds))
            process.interrupt()
        }
        process.waitUntilExit()
        let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Run(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath), pid: process.processIdentifier)
    }

    /// Namespaces of labs a `weir` process made.
    func namespaces(ofProcess pid: Int32) throws -> [String] {
        try listedNamespaces().filter { $0.hasPrefix(LabRegistry.prefix + "\(pid)-") }
    }

    /// The lab id `weir lab up` printed on its first line (`lab 4711-9f3a0c21 is up: …`).
    func labID(_ run: Run) throws -> LabID {
        let words = run.stdout.split(separator: "\n").first?.split(separator: " ") ?? []
        guard words.count > 2, words[0] == "lab", words[2] == "is", let id = LabID(words[1]) else {
            Issue.record("no lab id in: \(run.stdout)\n\(run.stderr)")
            throw CancellationError()
        }
        return id
    }

    @Test("lab up builds the seed lab with the ruleset loaded, list shows it, lab down removes it", arguments: ["nft", "iptables"])
    func upProbeDown(target: String) async throws {
        guard KernelRequirement.check() != nil else { return }
        let up = try weir(["lab", "up", "Policies/docker-default.weir", "--target", target])
        let id = try labID(up)
        defer { _ = try? LabRegistry.remove(id) }
        #expect(up.status == 0, "\(up.stderr)")
        #expect(id.owner == String(up.pid))

        // The namespaces, as printed and as the system has them.
        let prefix = id.namespacePrefix
        let expected = ["host", "peer0", "ctr-c1", "ctr-c2"].map { prefix + $0 }
        #expect(Set(try listedNamespaces().filter(id.owns)) == Set(expected))
        for namespace in expected { #expect(up.stdout.contains(namespace), "\(namespace) is printed") }
        #expect(up.stdout.contains("enp0s8 10.0.3.121/24, docker0 172.17.0.1/16"))
        #expect(up.stdout.contains("eth0 10.0.3.122/24 (cabled to enp0s8)"))
        #expect(up.stdout.contains("eth0 172.17.0.2/16 on docker0; publishes 10080->80/tcp"))
        #expect(up.stdout.contains("ip netns exec \(prefix)host "), "how to enter it")
        #expect(up.stdout.contains("weir lab down \(id)"))

        // The ruleset works: the published port answers from outside, the unpublished container does not.
        let server = try TrafficServer.start(in: prefix + "ctr-c1", port: 80, reply: "c1")
        defer { server.stop() }
        let other = try TrafficServer.start(in: prefix + "ctr-c2", port: 80, reply: "c2")
        defer { other.stop() }
        let published = await TrafficClient.probe(from: prefix + "peer0", to: SocketEndpoint(IPAddress("10.0.3.121")!, 10080),
                                                   timeout: LabTimeout.success)
        #expect(published.outcome == .connected, "\(published)")
        #expect(published.reply?.hasPrefix("c1 ") == true, "\(published)")
        let unpublished = await TrafficClient.probe(from: prefix + "peer0", to: SocketEndpoint(IPAddress("172.17.0.3")!, 80),
                                                    timeout: LabTimeout.failure)
        #expect(unpublished.outcome == .timedOut, "FORWARD's policy drops it: \(unpublished)")

        let list = try weir(["lab", "list"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("\(id)  4 namespaces (process gone)"), "\(list.stdout)")

        let down = try weir(["lab", "down", "\(id)"])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(down.stdout.contains("removed lab \(id) (4 namespaces)"), "\(down.stdout)")
        #expect(try listedNamespaces().filter(id.owns).isEmpty)
        #expect(LabRegistry.namespaces(of: id).isEmpty)

        let again = try weir(["lab", "down", "\(id)"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no lab \(id)"))
    }

    @Test("lab down without ids removes labs whose process is gone and leaves those of running processes")
    func downByOwner() async throws {
        guard KernelRequirement.check() != nil else { return }
        // A lab of this (running) test process, and one of a `weir lab up` that has exited.
        let mine = try await Lab.up(try LabPolicy.seed().topology) { _ in }
        mine.keep()
        defer { try? mine.down() }
        let up = try weir(["lab", "up", "Policies/docker-default.weir"])
        let orphan = try labID(up)
        defer { _ = try? LabRegistry.remove(orphan) }
        #expect(up.status == 0, "\(up.stderr)")

        let down = try weir(["lab", "down"])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(down.stdout.contains("removed lab \(orphan)"), "\(down.stdout)")
        #expect(down.stdout.contains("whose process is still running"), "\(down.stdout)")
        #expect(try listedNamespaces().filter(orphan.owns).isEmpty)
        #expect(Set(try listedNamespaces().filter(mine.id.owns)) == Set(mine.namespaces), "a running owner's lab stays")

        // Named explicitly, it goes whoever made it.
        let named = try weir(["lab", "down", "\(mine.id)"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(try listedNamespaces().filter(mine.id.owns).isEmpty)
    }

    @Test("a lab that cannot be built leaves no namespace: ip refuses a bridge named like a host interface")
    func failedBuildLeavesNothing() throws {
        guard KernelRequirement.check() != nil else { return }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-lab-clash-\(UUID().uuidString).weir").path
        try """
            docker classic
            host h { interface enp0s8 address 10.0.3.121/24 }
            network bridge { bridge enp0s8; subnet 172.17.0.0/16 }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try weir(["lab", "up", path])
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("File exists"), "\(run.stderr)")
        #expect(run.stderr.contains("the lab's namespaces were removed"), "\(run.stderr)")
        #expect(try namespaces(ofProcess: run.pid).isEmpty)
    }

    @Test("bad input makes no namespace: a policy with errors, a missing file, a bad id")
    func badInput() throws {
        guard KernelRequirement.check() != nil else { return }
        let missing = try weir(["lab", "up", "no-such.weir"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no-such.weir"), "\(missing.stderr)")
        #expect(try namespaces(ofProcess: missing.pid).isEmpty)
        let badID = try weir(["lab", "down", "not-an-id"])
        #expect(badID.status == 64)
        #expect(badID.stderr.contains("not a lab id"))
        let both = try weir(["lab", "down", "1-a", "--all"])
        #expect(both.status == 64)
    }

    @Test("an interrupt while the lab is built removes it (or arrives too early or too late to matter)",
          arguments: [50, 150, 300])
    func interrupted(milliseconds: Int) throws {
        guard KernelRequirement.check() != nil else { return }
        let run = try weir(["lab", "up", "Policies/docker-default.weir"], interruptAfter: .milliseconds(milliseconds))
        let left = try namespaces(ofProcess: run.pid)
        if run.status == 0 {
            // Finished before the signal: a complete lab, kept.
            let id = try labID(run)
            #expect(left.count == 4)
            try LabRegistry.remove(id)
        } else {
            #expect(left.isEmpty, "exit \(run.status): \(left)\n\(run.stderr)")
        }
    }
}
