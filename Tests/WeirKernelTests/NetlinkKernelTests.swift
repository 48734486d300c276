import Foundation
import Testing
import WeirDiagnostics
import WeirModel
import WeirNetlink
import WeirNftables

/// Docker-shaped programs built by hand from the research note's native encodings (§2.3).
enum DockerLike {
    static func ifname(_ name: String, wildcard: Bool = false) -> [UInt8] {
        var bytes = Array(name.utf8)
        if !wildcard { bytes += [UInt8](repeating: 0, count: 16 - bytes.count) }
        return bytes
    }
    static let docker0 = ifname("docker0")
    static func iif(_ op: CmpExpression.Operator, _ name: [UInt8] = docker0) -> [any NftExpression] {
        [MetaExpression(.iifname), CmpExpression(op, name)]
    }
    static func oif(_ op: CmpExpression.Operator, _ name: [UInt8] = docker0) -> [any NftExpression] {
        [MetaExpression(.oifname), CmpExpression(op, name)]
    }
    static func tcpDport(_ port: UInt16) -> [any NftExpression] {
        [MetaExpression(.l4proto), CmpExpression(.eq, [6]),
         PayloadExpression(.transport, offset: 2, length: 2), CmpExpression(.eq, [UInt8(port >> 8), UInt8(port & 0xff)])]
    }
    static let localDestination: [any NftExpression] = [FibExpression(flags: .daddr, result: .addressType), CmpExpression(.eq, [2, 0, 0, 0])]
    static let counter = CounterExpression()
    static func verdict(_ v: ImmediateExpression.Verdict) -> ImmediateExpression { .verdict(v) }

    static func program(table: String = "weir") -> NftRuleset {
        let nat = { (hook: Hook, priority: Int32) in NftBaseChain(type: .nat, hook: hook, priority: priority, policy: .accept) }
        return NftRuleset(tables: [NftTable(family: .ipv4, name: table, chains: [
            NftChain(name: "PREROUTING", base: nat(.prerouting, -100), rules: [
                NftRule(localDestination + [counter, verdict(.jump("DOCKER"))]),
            ]),
            NftChain(name: "OUTPUT", base: nat(.output, -100), rules: [
                NftRule([PayloadExpression(.network, offset: 16, length: 1), CmpExpression(.neq, [127])] + localDestination
                        + [counter, verdict(.jump("DOCKER"))]),
            ]),
            NftChain(name: "POSTROUTING", base: nat(.postrouting, 100), rules: [
                NftRule([PayloadExpression(.network, offset: 12, length: 2), CmpExpression(.eq, [172, 17])] + oif(.neq)
                        + [counter, MasqExpression()], comment: "masquerade docker0"),
            ]),
            NftChain(name: "DOCKER", rules: [
                NftRule(iif(.eq) + [verdict(.return)]),
                NftRule(iif(.neq) + tcpDport(10080) + [counter,
                        ImmediateExpression(.data([172, 17, 0, 2]), into: .r1), ImmediateExpression(.data([0, 80]), into: .r2),
                        NatExpression(.dnat, family: .ipv4, addressMin: .r1, addressMax: .r1, protoMin: .r2, protoMax: .r2,
                                      flags: [.mapIPs, .protoSpecified])], comment: "publish 10080:80/tcp"),
            ]),
            NftChain(name: "FORWARD", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: [
                NftRule([counter, verdict(.jump("DOCKER-USER"))]),
                NftRule([counter, verdict(.jump("DOCKER-ISOLATION-STAGE-1"))]),
                NftRule(oif(.eq) + [CtExpression(.state), BitwiseExpression(mask: [6, 0, 0, 0]), CmpExpression(.neq, [0, 0, 0, 0]),
                                    counter, verdict(.accept)]),
                NftRule(oif(.eq) + [counter, verdict(.jump("DOCKER-FILTER"))]),
                NftRule(iif(.eq) + oif(.neq) + [counter, verdict(.accept)]),
                NftRule(iif(.eq) + oif(.eq) + [counter, verdict(.accept)]),
            ]),
            NftChain(name: "DOCKER-FILTER", rules: [
                NftRule([PayloadExpression(.network, offset: 16, length: 4), CmpExpression(.eq, [172, 17, 0, 2])] + iif(.neq) + oif(.eq)
                        + tcpDport(80) + [counter, verdict(.accept)]),
            ]),
            NftChain(name: "DOCKER-ISOLATION-STAGE-1", rules: [
                NftRule(iif(.eq) + oif(.neq) + [counter, verdict(.jump("DOCKER-ISOLATION-STAGE-2"))]),
                NftRule([counter, verdict(.return)]),
            ]),
            NftChain(name: "DOCKER-ISOLATION-STAGE-2", rules: [
                NftRule(oif(.eq) + [counter, verdict(.drop)]),
                NftRule(iif(.eq, ifname("docker", wildcard: true)) + [counter, verdict(.return)]),
            ]),
            NftChain(name: "DOCKER-USER", rules: [
                NftRule([counter, verdict(.return)], comment: "user rules go here"),
            ]),
        ])])
    }
}

/// A scratch namespace plus the tools, for one test.
struct NetlinkLab {
    let namespace: NetworkNamespace
    let nft: String

    init() throws {
        guard let tools = KernelRequirement.check() else { throw CancellationError() }
        guard let nft = CommandRunner.locate("nft") else {
            Issue.record("the netlink kernel tests need nft (package nftables)")
            throw CancellationError()
        }
        namespace = try NetworkNamespace(ip: tools.ip)
        self.nft = nft
    }

    func run(_ program: String, _ arguments: [String], stdin: String? = nil) throws -> String {
        let result = try namespace.run(program, arguments, stdin: stdin)
        guard result.succeeded else { throw CommandError(description: "\(program) \(arguments.joined(separator: " ")): \(result)") }
        return result.stdout
    }

    func nft(_ arguments: String...) throws -> String { try run(nft, arguments) }
    func listRuleset() throws -> String { try nft("list", "ruleset") }
    func socket() throws -> NetlinkSocket { try NetlinkSocket(namespace: namespace.name) }
}

/// The kernel side of WeirNetlink, each test in a fresh namespace: apply, readback, atomic
/// replace, coexistence with other tables, error attribution, check mode, the generation guard.
@Suite(.serialized, .enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct NetlinkKernelTests {
    @Test func dockerLikeProgramAppliesAndReadsBack() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let program = DockerLike.program()
        let report = try NftTransaction.apply(try NftBatch.replacing(program), on: socket)
        #expect(report.committed)
        #expect(report.generationAfter != report.generation)
        #expect(report.messageCount == 31)

        let listing = try lab.listRuleset()
        for line in ["table ip weir {", "type nat hook prerouting priority dstnat; policy accept;",
                     "fib daddr type local counter packets 0 bytes 0 jump DOCKER",
                     "ip daddr != 127.0.0.0/8 fib daddr type local counter packets 0 bytes 0 jump DOCKER",
                     "ip saddr 172.17.0.0/16 oifname != \"docker0\" counter packets 0 bytes 0 masquerade comment \"masquerade docker0\"",
                     "iifname != \"docker0\" tcp dport 10080 counter packets 0 bytes 0 dnat to 172.17.0.2:80 comment \"publish 10080:80/tcp\"",
                     "type filter hook forward priority filter; policy drop;",
                     "oifname \"docker0\" ct state established,related counter packets 0 bytes 0 accept",
                     "iifname \"docker*\" counter packets 0 bytes 0 return"] {
            #expect(listing.contains(line), "nft list ruleset lacks: \(line)\n\(listing)")
        }

        let snapshot = try NftReadback.snapshot(socket)
        #expect(snapshot.generation == report.generationAfter)
        #expect(snapshot.ruleset == NftReadback.kernelForm(of: program))
        // This program uses only shapes the kernel reports back unchanged.
        #expect(snapshot.ruleset == program)
        #expect(snapshot.otherTables.isEmpty)
    }

    @Test func kernelNormalisationsAreExactlyTheDocumentedOnes() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let reg9 = NftRegister(kernel: 9)
        let program = NftRuleset(tables: [NftTable(family: .ipv4, name: "shapes", chains: [
            NftChain(name: "post", base: NftBaseChain(type: .nat, hook: .postrouting, priority: 100, policy: .accept), rules: [
                NftRule([ImmediateExpression(.data([0x27, 0x10]), into: .r1), ImmediateExpression(.data([0x27, 0x20]), into: .r2),
                         MasqExpression(protoMin: .r1, protoMax: .r2)]),
                NftRule([ImmediateExpression(.data([0x27, 0x10]), into: .r1), MasqExpression(protoMin: .r1)]),
                NftRule([ImmediateExpression(.data([10, 0, 0, 1]), into: .r1),
                         NatExpression(.snat, family: .ipv4, addressMin: .r1, addressMax: nil, protoMin: nil, protoMax: nil, flags: [])]),
                NftRule([ImmediateExpression(.data([10, 0, 0, 1]), into: reg9), ImmediateExpression(.data([0, 1]), into: .r2),
                         NatExpression(.snat, family: .ipv4, addressMin: reg9, addressMax: nil, protoMin: .r2, protoMax: nil, flags: [])]),
            ]),
            NftChain(name: "fwd", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .accept), rules: [
                NftRule([LogExpression(prefix: nil, level: nil), LogExpression(prefix: "p ", level: nil), LogExpression(prefix: nil, level: 0)]),
                NftRule([MetaExpression(.l4proto), CmpExpression(.eq, [6]), RejectExpression(.tcpReset, code: 5)]),
                NftRule([RejectExpression(.icmpUnreachable, code: 3)], comment: "reject"),
                NftRule([CounterExpression(packets: 7, bytes: 4242)]),
                NftRule([PayloadExpression(.network, offset: 12, length: 4, into: reg9),
                         BitwiseExpression(mask: [255, 240, 0, 0], source: reg9, destination: .r2),
                         CmpExpression(.eq, [10, 0, 0, 0], source: .r2), CtExpression(.mark, into: NftRegister(kernel: 13)),
                         MetaExpression(.mark, into: NftRegister(kernel: 23)), ImmediateExpression.verdict(.continue)]),
                NftRule([PayloadExpression(.transport, offset: 2, length: 2), RangeExpression(.neq, from: [0, 1], to: [0, 9]),
                         ImmediateExpression.verdict(.goto("sub"))]),
            ]),
            NftChain(name: "sub", rules: [NftRule([]), NftRule([FibExpression(flags: [.saddr, .iif], result: .oif), CmpExpression(.eq, [1, 0, 0, 0])])]),
        ])])
        _ = try NftTransaction.apply(try NftBatch.replacing(program), on: socket)
        let back = try NftReadback.dump(socket)
        #expect(back != program)
        #expect(back == NftReadback.kernelForm(of: program))
        #expect(NftReadback.kernelForm(of: back) == back)
    }

    @Test func applyingTwiceReplacesTheTable() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let batch = try NftBatch.replacing(DockerLike.program())
        _ = try NftTransaction.apply(batch, on: socket)
        let first = try lab.listRuleset()
        _ = try NftTransaction.apply(batch, on: socket)
        #expect(try lab.listRuleset() == first)
        #expect(first.components(separatedBy: "table ip weir {").count == 2)
        #expect(try NftReadback.dump(socket) == DockerLike.program())

        // A smaller program in the same table replaces every chain and rule of the old one.
        var smaller = DockerLike.program()
        smaller.tables[0].chains = [NftChain(name: "FORWARD", base: NftBaseChain(type: .filter, hook: .forward, priority: 0, policy: .accept),
                                             rules: [NftRule([DockerLike.counter, DockerLike.verdict(.drop)])])]
        _ = try NftTransaction.apply(try NftBatch.replacing(smaller), on: socket)
        #expect(try NftReadback.dump(socket) == smaller)
        #expect(try lab.nft("list", "table", "ip", "weir") == "table ip weir {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tcounter packets 0 bytes 0 drop\n\t}\n}\n")
    }

    static let iptablesRules = """
        *filter
        :INPUT ACCEPT [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        :DOCKER - [0:0]
        -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A FORWARD -o docker0 -j DOCKER
        -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
        -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
        COMMIT
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        :DOCKER - [0:0]
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
        -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
        -A DOCKER ! -i docker0 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.2:80
        COMMIT

        """

    @Test func otherTablesSurviveAndReadBackAsBytecode() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        guard let restore = CommandRunner.locate("iptables-nft-restore"), let save = CommandRunner.locate("iptables-nft-save") else {
            Issue.record("iptables-nft-restore/iptables-nft-save are not installed")
            return
        }
        _ = try lab.run(restore, [], stdin: Self.iptablesRules)
        _ = try lab.nft("add", "table", "ip", "other")
        _ = try lab.nft("add", "chain", "ip", "other", "input", "{ type filter hook input priority 10; policy accept; }")
        _ = try lab.nft("add", "rule", "ip", "other", "input", "tcp", "dport", "{ 22, 443 }", "counter", "accept")
        _ = try lab.nft("add", "table", "inet", "foreign")
        let iptablesBefore = try lab.run(save, []).split(separator: "\n").filter { !$0.hasPrefix("#") }
        let otherBefore = try lab.nft("list", "table", "ip", "other")
        let foreignBefore = try lab.nft("list", "table", "inet", "foreign")

        let socket = try lab.socket()
        let batch = try NftBatch.replacing(DockerLike.program())
        _ = try NftTransaction.apply(batch, on: socket)
        _ = try NftTransaction.apply(batch, on: socket)

        #expect(try lab.run(save, []).split(separator: "\n").filter { !$0.hasPrefix("#") } == iptablesBefore)
        #expect(try lab.nft("list", "table", "ip", "other") == otherBefore)
        #expect(try lab.nft("list", "table", "inet", "foreign") == foreignBefore)

        let snapshot = try NftReadback.snapshot(socket)
        #expect(snapshot.otherTables == ["inet foreign"])
        #expect(Set(snapshot.ruleset.tables.map(\.name)) == ["filter", "nat", "other", "weir"])
        #expect(snapshot.ruleset.tables.first { $0.name == "weir" } == DockerLike.program().tables[0])

        // iptables-nft's x_tables extensions come back as match/target blobs, never as native
        // expressions (nft's text prints them as if they were native).
        let xt = snapshot.ruleset.tables.flatMap { $0.chains.flatMap { $0.rules.flatMap(\.expressions) } }.compactMap { $0 as? XtablesExpression }
        let seen = Set(xt.map { "\($0.role == .match ? "match" : "target") \($0.name) rev \($0.revision) \($0.info.count)B" })
        #expect(seen.isSuperset(of: ["match conntrack rev 3 168B", "match addrtype rev 1 8B", "target MASQUERADE rev 0 24B", "target DNAT rev 2 48B"]),
                "\(seen)")
        let addrtype = try #require(xt.first { $0.name == "addrtype" })
        #expect(addrtype.info == [0, 0, 4, 0, 0, 0, 0, 0])   // xt_addrtype_info_v1: dest = XT_ADDRTYPE_LOCAL
        // `tcp dport { 22, 443 }` looks up the anonymous set __set0, read back with its elements.
        let other = try #require(snapshot.ruleset.tables.first { $0.name == "other" })
        let lookup = try #require(other.chains[0].rules[0].expressions.compactMap { $0 as? LookupExpression }.first)
        #expect(lookup == LookupExpression(set: "__set0"))
        #expect(other.sets == [NftSet(name: "__set0", flags: [.anonymous, .constant], keyType: 13, keyLength: 2,
                                      elements: [NftSetElement(key: [0, 22]), NftSetElement(key: [1, 187])])])

        // Everything read back, foreign tables and their sets included, re-encodes into a batch
        // that decodes to the same (the lookups gain their sets' transaction ids, which the kernel
        // does not report).
        let rebuilt = try NftBatch.replacing(snapshot.ruleset)
        #expect(try NftBatch(decoding: rebuilt.bytes).program == rebuilt.program)
        #expect(NftReadback.kernelForm(of: rebuilt.program) == snapshot.ruleset)
    }

    /// A program whose DOCKER-USER chain's second rule jumps to a chain that does not exist.
    static var missingJumpTarget: NftRuleset {
        var program = DockerLike.program()
        let user = program.tables[0].chains.firstIndex { $0.name == "DOCKER-USER" }!
        let policy = SourceFile(path: "policy.weir", text: "user {\n    jump NO-SUCH-CHAIN\n}\n")
        program.tables[0].chains[user].rules.append(NftRule([DockerLike.counter, DockerLike.verdict(.jump("NO-SUCH-CHAIN"))],
                                                            provenance: SourceRange(file: policy, start: 11, end: 29)))
        return program
    }

    static func expectMissingChainError(_ error: NftTransactionError, _ batch: NftBatch) {
        guard case .rejected(let errors) = error else {
            Issue.record("expected a rejection, got \(error)")
            return
        }
        #expect(errors.count == 1)
        guard let first = errors.first else { return }
        #expect(first.errno == ENOENT)
        #expect(first.errnoName == "ENOENT")
        #expect(first.errnoText == "No such file or directory")
        #expect(first.message?.kind == .newRule)
        #expect(first.message?.family == .ipv4)
        #expect(first.message?.table == "weir")
        #expect(first.message?.chain == "DOCKER-USER")
        #expect(first.message?.ruleIndex == 1)
        #expect(first.seq == batch.messages[batch.messages.count - 2].seq)
        #expect(first.expressionIndex == 1)
        #expect(first.expressionName == "immediate")
        #expect(first.provenance?.description == "policy.weir:2:5")
        #expect(first.description == "NEWRULE ip weir DOCKER-USER rule #1, expression #1 (immediate): No such file or directory (ENOENT) [from policy.weir:2:5]")
        #expect(error.description == """
            the kernel rejected the batch (1 error); nothing applied:
              NEWRULE ip weir DOCKER-USER rule #1, expression #1 (immediate): No such file or directory (ENOENT) [from policy.weir:2:5]
            """)
    }

    @Test func aRuleJumpingToAMissingChainFailsWithItsLocationAndChangesNothing() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        _ = try NftTransaction.apply(try NftBatch.replacing(DockerLike.program()), on: socket)
        _ = try lab.nft("add", "table", "ip", "other")
        let before = try lab.listRuleset()
        let generation = try socket.generation()

        let bad = try NftBatch.replacing(Self.missingJumpTarget)
        let error = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(bad, on: socket) }
        if let error { Self.expectMissingChainError(error, bad) }
        #expect(try lab.listRuleset() == before)
        #expect(try socket.generation() == generation)
    }

    @Test func checkOnlyValidatesAndCommitsNothing() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        _ = try lab.nft("add", "table", "ip", "other")
        let socket = try lab.socket()
        let before = try lab.listRuleset()
        let generation = try socket.generation()

        let report = try NftTransaction.apply(try NftBatch.replacing(DockerLike.program()), on: socket, checkOnly: true)
        #expect(!report.committed)
        #expect(report.generation == generation)
        #expect(report.generationAfter == generation)
        #expect(try lab.listRuleset() == before)

        // Errors are found and attributed exactly as in a real apply.
        let bad = try NftBatch.replacing(Self.missingJumpTarget)
        let error = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(bad, on: socket, checkOnly: true) }
        if let error { Self.expectMissingChainError(error, bad) }
        #expect(try lab.listRuleset() == before)

        // What the kernel only checks at commit time is not checked: a jump loop passes a check
        // (as with `nft -c`) but fails the real apply with EMLINK on the looping rule.
        var loop = DockerLike.program()
        let stage2 = loop.tables[0].chains.firstIndex { $0.name == "DOCKER-ISOLATION-STAGE-2" }!
        loop.tables[0].chains[stage2].rules.append(NftRule([DockerLike.verdict(.jump("DOCKER-ISOLATION-STAGE-1"))]))
        let loopBatch = try NftBatch.replacing(loop)
        #expect(try NftTransaction.apply(loopBatch, on: socket, checkOnly: true).committed == false)
        let loopError = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(loopBatch, on: socket) }
        if case .rejected(let errors)? = loopError {
            #expect(errors.first?.errno == EMLINK)
            #expect(errors.first?.message?.chain == "DOCKER-ISOLATION-STAGE-2")
            #expect(errors.first?.message?.ruleIndex == 2)
        } else {
            Issue.record("expected EMLINK, got \(String(describing: loopError))")
        }
        #expect(try lab.listRuleset() == before)
        #expect(try socket.generation() == generation)
    }

    @Test func aStaleGenerationFailsWithERESTARTAndChangesNothing() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        let batch = try NftBatch.replacing(DockerLike.program())
        let read = try socket.generation()
        _ = try lab.nft("add", "table", "ip", "foreign")   // another program commits in between
        let after = try lab.listRuleset()
        let moved = try socket.generation()
        #expect(moved != read)

        let error = #expect(throws: NftTransactionError.self) { try NftTransaction.apply(batch, on: socket, generation: read) }
        guard case .rulesetChanged(let expected, let kernelError)? = error else {
            Issue.record("expected rulesetChanged, got \(String(describing: error))")
            return
        }
        #expect(expected == read)
        #expect(kernelError.errno == ERESTART)
        #expect(kernelError.message?.kind == .batchBegin)
        #expect(error?.description == "ruleset changed by another program between read and commit (generation \(read) is stale); nothing applied")
        #expect(try lab.listRuleset() == after)
        #expect(try socket.generation() == moved)

        // Re-reading the generation and retrying commits.
        let report = try NftTransaction.apply(batch, on: socket)
        #expect(report.generation == moved)
        #expect(report.committed)
    }

    @Test func applyIsOneSendmsgBetweenTwoGenerationReads() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let recorder = CallRecorder()
        let batch = try NftBatch.replacing(DockerLike.program())
        let report = try recorder.record {
            let socket = try lab.socket()
            return try NftTransaction.apply(batch, on: socket)
        }
        #expect(report.committed)
        let calls = recorder.calls
        // Enter the namespace only around socket(): open both namespace files, setns, open, setns back.
        #expect(Array(calls.prefix(6)) == ["open", "open", "setns", "mnl_socket_open", "setns", "close"])
        #expect(calls.filter { $0 == "setns" }.count == 2)
        // GETGEN, the batch, GETGEN: three datagrams, the batch being one of them.
        #expect(calls.filter { $0 == "mnl_socket_sendto" }.count == 3)
        let send = try #require(calls.indices.filter { calls[$0] == "mnl_socket_sendto" }.dropFirst().first)
        #expect(Array(calls[(send - 4)..<send]) == ["setsockopt", "setsockopt", "recv", "clock_gettime"])
        #expect(calls[send + 1] == "recv")   // the non-blocking drain
        #expect(calls.filter { $0 == "nftnl_gen_nlmsg_parse" }.count == 2)
        #expect(calls.last == "mnl_socket_close")
    }

    @Test func fiftyThousandRules() throws {
        let lab = try NetlinkLab()
        defer { lab.namespace.delete() }
        let socket = try lab.socket()
        var rules: [NftRule] = []
        rules.reserveCapacity(50_000)
        for i in 0..<50_000 {
            let port = UInt16(1024 + i % 60_000)
            rules.append(NftRule([PayloadExpression(.network, offset: 12, length: 4), CmpExpression(.eq, [10, UInt8(i >> 16), UInt8(i >> 8 & 0xff), UInt8(i & 0xff)]),
                                  MetaExpression(.l4proto), CmpExpression(.eq, [6]),
                                  PayloadExpression(.transport, offset: 2, length: 2), CmpExpression(.eq, [UInt8(port >> 8), UInt8(port & 0xff)]),
                                  CounterExpression(), ImmediateExpression.verdict(.accept)]))
        }
        let program = NftRuleset(tables: [NftTable(family: .ipv4, name: "big", chains: [
            NftChain(name: "input", base: NftBaseChain(type: .filter, hook: .input, priority: 0, policy: .accept), rules: rules),
        ])])
        let t0 = Date()
        let batch = try NftBatch.replacing(program)
        let t1 = Date()
        let first = try NftTransaction.apply(batch, on: socket)
        let t2 = Date()
        let second = try NftTransaction.apply(batch, on: socket)
        let t3 = Date()
        let back = try NftReadback.dump(socket)
        let t4 = Date()
        #expect(back == program)
        let ms = { (a: Date, b: Date) in String(format: "%.0f ms", b.timeIntervalSince(a) * 1000) }
        print("""
            50k rules, \(batch.messages.count) messages, \(batch.bytes.count) bytes:
              build \(ms(t0, t1)); apply into an empty namespace \(ms(t1, t2)) (kernel \(String(format: "%.0f ms", first.kernelSeconds * 1000)));
              replace 50k by 50k \(ms(t2, t3)) (kernel \(String(format: "%.0f ms", second.kernelSeconds * 1000))); readback \(ms(t3, t4))
            """)
    }
}
