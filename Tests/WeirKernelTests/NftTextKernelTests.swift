import Foundation
import Testing
import WeirDriver
import WeirModel
import WeirNetlink
import WeirTestFixtures
import WeirNftables

/// `NftTextPrinter`'s output against the real `nft` (1.0.6) and kernel, in fresh namespaces:
/// every policy loads with `nft -f`; loading it again replaces Weir's tables (the listing is
/// identical, one copy of each table) and leaves someone else's table alone; and the bytecode
/// the kernel then holds (`nft --debug=netlink list ruleset`, parsed here) is the program
/// `NftLowering` builds — up to nft's own spelling of port ranges — and lifts back to the model.
@Suite(.serialized, .enabled(if: KernelRequirement.enabled, "WEIR_SKIP_KERNEL_TESTS=1 is set"))
struct NftTextKernelTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var policies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".weir") }.sorted()
    }

    struct Tools {
        var ip: String
        var nft: String
    }

    static func tools(sourceLocation: SourceLocation = #_sourceLocation) -> Tools? {
        guard let base = KernelRequirement.check(sourceLocation: sourceLocation) else { return nil }
        guard let nft = CommandRunner.locate("nft") else {
            Issue.record("kernel tests need 'nft' (package nftables); set WEIR_SKIP_KERNEL_TESTS=1 to skip them", sourceLocation: sourceLocation)
            return nil
        }
        return Tools(ip: base.ip, nft: nft)
    }

    /// Someone else's table, which loading Weir's text must leave alone.
    static let otherTable = """
        table ip other {
        \tchain keep {
        \t\ttype filter hook input priority 10; policy accept;
        \t\ttcp dport 4242 counter accept
        \t}
        }

        """

    /// Runs `nft ARGS` in the namespace; records an issue and returns nil when it fails.
    static func nft(_ namespace: NetworkNamespace, _ tools: Tools, _ arguments: [String], stdin: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> String? {
        let result = try namespace.run(tools.nft, arguments, stdin: stdin)
        guard result.succeeded else {
            Issue.record("nft \(arguments.joined(separator: " ")) failed: \(result)", sourceLocation: sourceLocation)
            return nil
        }
        return result.stdout
    }

    static func load(_ text: String, _ namespace: NetworkNamespace, _ tools: Tools, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        let result = try namespace.run(tools.nft, ["-f", "/dev/stdin"], stdin: text)
        if !result.succeeded {
            Issue.record("nft -f refused the printer's output: \(result)\n--- input:\n\(text)", sourceLocation: sourceLocation)
        }
        return result.succeeded
    }

    /// Loads the model's text twice next to a foreign table and checks replacement, the
    /// kernel's bytecode and its lift. Returns the `nft list ruleset` text.
    @discardableResult
    static func check(_ model: Ruleset, name: String, tools: Tools, sourceLocation: SourceLocation = #_sourceLocation) throws -> String? {
        let unsupported = NftTextPrinter.unsupported(model).filter { $0.severity == .error }
        #expect(unsupported.map(\.description) == [], "\(name)", sourceLocation: sourceLocation)
        let text = NftTextPrinter.render(model)
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }

        guard try load(otherTable, namespace, tools, sourceLocation: sourceLocation),
              try load(text, namespace, tools, sourceLocation: sourceLocation),
              let first = try nft(namespace, tools, ["list", "ruleset"], sourceLocation: sourceLocation),
              try load(text, namespace, tools, sourceLocation: sourceLocation),
              let second = try nft(namespace, tools, ["list", "ruleset"], sourceLocation: sourceLocation) else { return nil }
        #expect(first == second, "\(name): loading the text again changed the ruleset", sourceLocation: sourceLocation)
        for table in model.tables {
            let header = "table \(table.family.rawValue) weir-\(table.name) {"
            #expect(second.components(separatedBy: header + "\n").count == 2, "\(name): expected one '\(header)'", sourceLocation: sourceLocation)
        }
        #expect(second.contains("table ip other {") && second.contains("tcp dport 4242 counter packets 0 bytes 0 accept"),
                "\(name): the foreign table did not survive", sourceLocation: sourceLocation)

        // The kernel's program: what NftLowering builds (nft spells port ranges as gte/lte)…
        guard let dump = try nft(namespace, tools, ["--debug=netlink", "list", "ruleset"], sourceLocation: sourceLocation),
              let chains = try nft(namespace, tools, ["-j", "list", "chains"], sourceLocation: sourceLocation) else { return nil }
        var kernel: NftRuleset
        do {
            kernel = try NetlinkDump.parse(dump: dump, chainsJSON: chains)
        } catch {
            Issue.record("\(name): cannot parse nft's netlink dump: \(error)", sourceLocation: sourceLocation)
            return nil
        }
        kernel.tables.removeAll { !NftLayout.isWeirTable($0.name) }
        // The debug text does not describe sets; take them (normalised) from the readback.
        let readback = try NftReadback.dump(try NetlinkSocket(namespace: namespace.name))
        for index in kernel.tables.indices {
            kernel.tables[index].sets = readback.tables.first { $0.family == kernel.tables[index].family && $0.name == kernel.tables[index].name }?.sets ?? []
        }
        // The kernel does not report the transaction ids the lookups were sent with.
        let lowered = NetlinkDump.withoutSetIDs(NftLowering.lower(model).program)
        let normalised = NetlinkDump.rangesAsRangeExpressions(kernel)
        let sameProgram = normalised == lowered
        #expect(sameProgram, "\(name): the kernel's program differs from NftLowering's", sourceLocation: sourceLocation)
        if !sameProgram {
            for (k, l) in zip(normalised.tables, lowered.tables) {
                for (kc, lc) in zip(k.chains, l.chains) where kc != lc {
                    for (kr, lr) in zip(kc.rules, lc.rules) where kr != lr {
                        Issue.record("\(k.family.rawValue) \(k.name) \(kc.name):\n kernel: \(kr.expressions.map(\.description)) \(kr.comment ?? "")\n lowered: \(lr.expressions.map(\.description)) \(lr.comment ?? "")",
                                     sourceLocation: sourceLocation)
                    }
                    if kc.rules.count != lc.rules.count || kc.base != lc.base || kc.name != lc.name {
                        Issue.record("chain \(kc.name) \(String(describing: kc.base)) \(kc.rules.count) rules vs \(lc.name) \(String(describing: lc.base)) \(lc.rules.count)", sourceLocation: sourceLocation)
                    }
                }
            }
        }
        // …and lifts back to the model.
        let (lifted, diagnostics) = NftLifting.lift(kernel)
        #expect(diagnostics.map(\.description) == [], "\(name)", sourceLocation: sourceLocation)
        let expected = NftLowering.normalForm(model)
        let sameModel = lifted == expected
        #expect(sameModel, "\(name): the kernel's rules lift to a different model", sourceLocation: sourceLocation)
        if !sameModel {
            for (a, b) in zip(lifted.tables, expected.tables) {
                for (x, y) in zip(a.chains, b.chains) where x != y {
                    for (r, q) in zip(x.rules, y.rules) where r != q {
                        Issue.record("\(a.family.rawValue) \(a.name) \(x.name): lifted \(r) ≠ \(q)", sourceLocation: sourceLocation)
                    }
                }
            }
        }
        return second
    }

    @Test("every policy's nft text loads, reloads in place and lifts back", arguments: policies)
    func policy(_ policy: String) throws {
        guard let tools = Self.tools() else { return }
        let result = Compiler.compile(path: Self.root + "/Policies/" + policy)
        let model = try #require(result.ruleset, "\(result.diagnostics)")
        let listing = try Self.check(model, name: policy, tools: tools)
        guard policy == "docker-default.weir", let listing else { return }
        // What nft itself says about the seed host's rules.
        for line in [
            "table ip weir-filter {", "table ip weir-nat {",
            "type filter hook forward priority filter; policy drop;",
            "iifname \"docker0\" oifname != \"docker0\" accept",
            "oifname \"docker0\" ct state established,related accept",
            "ip daddr 172.17.0.2 iifname != \"docker0\" oifname \"docker0\" tcp dport 80 accept",
            "fib daddr type local jump DOCKER",
            "ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER",
            "ip saddr 172.17.0.0/16 oifname != \"docker0\" masquerade",
            "iifname != \"docker0\" tcp dport 10080 dnat to 172.17.0.2:80",
            "jump DOCKER-ISOLATION-STAGE-1",
        ] {
            #expect(listing.contains("\t\(line)\n") || listing.contains("\(line)\n"), "nft list ruleset lacks '\(line)':\n\(listing)")
        }
    }

    @Test(arguments: [Family.ipv4, Family.ipv6])
    func kitchenSink(family: Family) throws {
        guard let tools = Self.tools() else { return }
        try Self.check(NftFixtures.kitchenSink(family), name: "kitchen sink \(family.rawValue)", tools: tools)
    }

    @Test func bothFamiliesInOneFile() throws {
        guard let tools = Self.tools() else { return }
        var model = NftFixtures.kitchenSink(.ipv4)
        for table in NftFixtures.kitchenSink(.ipv6).tables { model.add(table) }
        try Self.check(model, name: "both kitchen sinks", tools: tools)
    }

    /// Loading a changed model replaces the old rules (no merging), and a text nft refuses
    /// changes nothing at all.
    @Test func reloadReplacesAndFailuresChangeNothing() throws {
        guard let tools = Self.tools() else { return }
        let policy = Compiler.compile(path: Self.root + "/Policies/docker-default.weir")
        let model = try #require(policy.ruleset)
        var smaller = model
        smaller.modifyTable(.ipv4, "filter") { table in
            table.modifyChain("DOCKER") { $0.rules = [] }
        }
        let namespace = try NetworkNamespace(ip: tools.ip)
        defer { namespace.delete() }
        guard try Self.load(NftTextPrinter.render(model), namespace, tools),
              try Self.load(NftTextPrinter.render(smaller), namespace, tools),
              let listing = try Self.nft(namespace, tools, ["list", "table", "ip", "weir-filter"]) else { return }
        #expect(!listing.contains("tcp dport 80 accept"), "the old DOCKER rule survived a reload:\n\(listing)")
        #expect(listing.contains("chain DOCKER {\n\t}"))

        // A text with a jump to a missing chain: nft refuses the whole file, the old tables stay.
        let broken = NftTextPrinter.render(model).replacingOccurrences(of: "jump DOCKER-USER", with: "jump NO-SUCH-CHAIN")
        guard let before = try Self.nft(namespace, tools, ["list", "ruleset"]) else { return }
        let refused = try namespace.run(tools.nft, ["-f", "/dev/stdin"], stdin: broken)
        #expect(!refused.succeeded)
        let after = try Self.nft(namespace, tools, ["list", "ruleset"])
        #expect(after == before, "a refused load changed the ruleset")
    }
}

/// Reads `nft --debug=netlink list ruleset` (libnftnl's expression debug text) and
/// `nft -j list chains` back into an `NftRuleset`. The debug text prints data as 32-bit words
/// without lengths; lengths come from what the register holds (a payload's length, a meta
/// key's size) and, for immediates, from the NAT statement that reads them.
enum NetlinkDump {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(dump: String, chainsJSON: String) throws -> NftRuleset {
        var program = NftRuleset()
        guard let object = try JSONSerialization.jsonObject(with: Data(chainsJSON.utf8)) as? [String: Any],
              let items = object["nftables"] as? [[String: Any]] else { throw ParseError(description: "bad JSON") }
        for item in items {
            guard let chain = item["chain"] as? [String: Any], let familyName = chain["family"] as? String,
                  let family = Family(rawValue: familyName), let table = chain["table"] as? String, let name = chain["name"] as? String else { continue }
            var base: NftBaseChain? = nil
            if let hookName = chain["hook"] as? String, let typeName = chain["type"] as? String, let prio = chain["prio"] as? Int,
               let policyName = chain["policy"] as? String {
                guard let hook = Hook(rawValue: hookName.uppercased()), let type = NftChainType(rawValue: typeName),
                      let policy = ChainPolicy(rawValue: policyName.uppercased()) else { throw ParseError(description: "bad chain \(chain)") }
                base = NftBaseChain(type: type, hook: hook, priority: Int32(prio), policy: policy)
            }
            if !program.tables.contains(where: { $0.family == family && $0.name == table }) {
                program.tables.append(NftTable(family: family, name: table))
            }
            let t = program.tables.firstIndex { $0.family == family && $0.name == table }!
            program.tables[t].chains.append(NftChain(name: name, base: base))
        }

        var current: (table: Int, chain: Int)? = nil
        var rule: NftRule? = nil
        var widths: [UInt32: Int] = [:]
        var immediates: [UInt32: Int] = [:]  // register → index of the immediate that wrote it
        func finish() {
            if let r = rule, let (t, c) = current { program.tables[t].chains[c].rules.append(r) }
            rule = nil
        }
        for line in dump.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let words = line.split(separator: " ").map(String.init)
            if let first = words.first, let family = Family(rawValue: first), words.count >= 4, !line.hasPrefix(" ") {
                finish()
                guard let t = program.tables.firstIndex(where: { $0.family == family && $0.name == words[1] }),
                      let c = program.tables[t].chains.firstIndex(where: { $0.name == words[2] }) else {
                    throw ParseError(description: "rule of unknown chain: \(line)")
                }
                current = (t, c)
                rule = NftRule([])
                widths = [:]
                immediates = [:]
                continue
            }
            guard rule != nil else { continue }
            if line.hasPrefix("  userdata = { ") && line.hasSuffix(" }") {
                let inner = String(line.dropFirst("  userdata = { ".count).dropLast(2))
                rule!.comment = try comment(fromUserdata: unescape(inner))
                continue
            }
            guard line.hasPrefix("  [ ") && line.hasSuffix(" ]") else {
                if line.isEmpty || !line.hasPrefix("  ") { finish() }
                continue
            }
            let body = String(line.dropFirst(4).dropLast(2))
            let expression = try parseExpression(body, widths: &widths)
            if let immediate = expression as? ImmediateExpression, case .data = immediate.value {
                immediates[immediate.destination.index32] = rule!.expressions.count
            }
            // Ports read by NAT and masquerade are 2 bytes.
            var protoRegisters: [NftRegister?] = []
            if let nat = expression as? NatExpression { protoRegisters = [nat.protoMin, nat.protoMax] }
            if let masq = expression as? MasqExpression { protoRegisters = [masq.protoMin, masq.protoMax] }
            for register in protoRegisters.compactMap({ $0 }) {
                if let index = immediates[register.index32], var immediate = rule!.expressions[index] as? ImmediateExpression,
                   case .data(let bytes) = immediate.value {
                    immediate.value = .data(Array(bytes.prefix(2)))
                    rule!.expressions[index] = immediate
                }
            }
            rule!.expressions.append(expression)
        }
        finish()
        return program
    }

    /// `program` with every lookup's set id removed.
    static func withoutSetIDs(_ program: NftRuleset) -> NftRuleset {
        var out = program
        for t in out.tables.indices {
            for c in out.tables[t].chains.indices {
                for r in out.tables[t].chains[c].rules.indices {
                    out.tables[t].chains[c].rules[r].expressions = out.tables[t].chains[c].rules[r].expressions.map { expression in
                        guard var lookup = expression as? LookupExpression else { return expression }
                        lookup.setID = nil
                        return lookup
                    }
                }
            }
        }
        return out
    }

    static func words(_ tokens: some Sequence<String>) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for token in tokens {
            guard token.hasPrefix("0x"), let word = UInt32(token.dropFirst(2), radix: 16) else { throw ParseError(description: "bad word \(token)") }
            bytes += (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) }
        }
        return bytes
    }

    static func register(_ token: String) throws -> NftRegister {
        guard let value = UInt32(token) else { throw ParseError(description: "bad register \(token)") }
        return NftRegister(kernel: value)
    }

    static func parseExpression(_ body: String, widths: inout [UInt32: Int]) throws -> any NftExpression {
        let t = body.split(separator: " ").map(String.init)
        // Registers holding an interface name (meta iifname/oifname), by the width marker -16.
        let interfaceRegisters = Set(widths.filter { $0.value == -16 }.keys)
        func width(of register: NftRegister) -> Int {
            let w = widths[register.index32] ?? 16
            return w == -16 ? 16 : w
        }
        func data(_ tokens: ArraySlice<String>, width: Int) throws -> [UInt8] { Array(try words(tokens).prefix(width)) }
        switch t.first {
        case "payload":
            // payload load 4b @ network header + 12 => reg 1
            let bases: [String: PayloadExpression.Base] = ["link": .link, "network": .network, "transport": .transport]
            guard t.count == 11, let length = UInt32(t[2].dropLast()), let base = bases[t[4]], let offset = UInt32(t[7]) else { break }
            let reg = try register(t[10])
            widths[reg.index32] = Int(length)
            return PayloadExpression(base, offset: offset, length: length, into: reg)
        case "meta":
            let keys: [String: (MetaExpression.Key, Int)] = ["iifname": (.iifname, -16), "oifname": (.oifname, -16), "l4proto": (.l4proto, 1),
                                                             "nfproto": (.nfproto, 1), "protocol": (.protocol, 2)]
            guard t.count == 6, let entry = keys[t[2]] else { break }
            let reg = try register(t[5])
            widths[reg.index32] = entry.1
            return MetaExpression(entry.0, into: reg)
        case "ct":
            guard t.count == 6, t[2] == "state" else { break }
            let reg = try register(t[5])
            widths[reg.index32] = 4
            return CtExpression(.state, into: reg)
        case "fib":
            guard t.count == 6, t[2] == "type" else { break }
            let flags: FibExpression.Flags = t[1] == "saddr" ? .saddr : .daddr
            let reg = try register(t[5])
            widths[reg.index32] = 4
            return FibExpression(flags: flags, result: .addressType, into: reg)
        case "bitwise":
            // bitwise reg 1 = ( reg 1 & MASK… ) ^ XOR…
            guard let close = t.firstIndex(of: ")"), let amp = t.firstIndex(of: "&") else { break }
            let destination = try register(t[2])
            let source = try register(t[6])
            let size = width(of: source)
            widths[destination.index32] = size
            return BitwiseExpression(mask: try data(t[(amp + 1)..<close], width: size), xor: try data(t[(close + 2)...], width: size),
                                     source: source, destination: destination)
        case "cmp":
            let ops: [String: CmpExpression.Operator] = ["eq": .eq, "neq": .neq, "lt": .lt, "lte": .lte, "gt": .gt, "gte": .gte]
            guard t.count >= 5, let op = ops[t[1]] else { break }
            let source = try register(t[3])
            var bytes = try data(t[4...], width: width(of: source))
            // An interface wildcard compares its prefix bytes only; the debug text pads them to a
            // word. (nft writes exact names as all 16 bytes, so shorter data is a wildcard here.)
            if interfaceRegisters.contains(source.index32), bytes.count < 16 {
                while bytes.last == 0 { bytes.removeLast() }
            }
            return CmpExpression(op, bytes, source: source)
        case "range":
            guard t.count >= 6 else { break }
            let source = try register(t[3])
            let all = Array(t[4...])
            let half = all.count / 2
            return RangeExpression(t[1] == "neq" ? .neq : .eq, from: try data(all[..<half], width: width(of: source)),
                                   to: try data(all[half...], width: width(of: source)), source: source)
        case "immediate":
            let reg = try register(t[2])
            if reg == .verdict {
                switch t[3] {
                case "accept": return ImmediateExpression.verdict(.accept)
                case "drop": return ImmediateExpression.verdict(.drop)
                case "return": return ImmediateExpression.verdict(.return)
                case "continue": return ImmediateExpression.verdict(.continue)
                case "jump": return ImmediateExpression.verdict(.jump(t[5]))
                case "goto": return ImmediateExpression.verdict(.goto(t[5]))
                default: break
                }
                break
            }
            let bytes = try words(t[3...])
            widths[reg.index32] = bytes.count
            return ImmediateExpression(.data(bytes), into: reg)
        case "nat":
            guard t.count >= 3, let family = Family(rawValue: t[2]) else { break }
            var regs: [String: NftRegister] = [:]
            var flags: UInt32 = 0
            var i = 3
            while i + 1 < t.count {
                if t[i] == "flags" { flags = UInt32(t[i + 1].dropFirst(2), radix: 16) ?? 0; i += 2; continue }
                regs[t[i]] = try register(t[i + 2])
                i += 3
            }
            return NatExpression(t[1] == "snat" ? .snat : .dnat, family: family, addressMin: regs["addr_min"], addressMax: regs["addr_max"],
                                 protoMin: regs["proto_min"], protoMax: regs["proto_max"], flags: NatExpression.Flags(rawValue: flags))
        case "masq":
            var regs: [String: NftRegister] = [:]
            var flags: UInt32 = 0
            var i = 1
            while i + 1 < t.count {
                if t[i] == "flags" { flags = UInt32(t[i + 1].dropFirst(2), radix: 16) ?? 0; i += 2; continue }
                regs[t[i]] = try register(t[i + 2])
                i += 3
            }
            let masq = MasqExpression(protoMin: regs["proto_min"], protoMax: regs["proto_max"])
            guard masq.flags.rawValue == flags else { throw ParseError(description: "masq flags 0x\(String(flags, radix: 16)) are not what MasqExpression.flags says: \(body)") }
            return masq
        case "reject":
            guard t.count == 5, let type = UInt32(t[2]).flatMap({ RejectExpression.RejectType(rawValue: $0) }), let code = UInt8(t[4]) else { break }
            return RejectExpression(type, code: code)
        case "log":
            // log [prefix TEXT] [level N]
            var rest = Substring(body.dropFirst(3))
            var level: UInt32? = nil
            if let range = rest.range(of: " level ", options: .backwards) {
                level = UInt32(rest[range.upperBound...])
                rest = rest[..<range.lowerBound]
            }
            var prefix: String? = nil
            if rest.hasPrefix(" prefix ") { prefix = String(rest.dropFirst(" prefix ".count)) }
            return LogExpression(prefix: prefix, level: level)
        case "counter":
            return CounterExpression()
        case "lookup":
            // lookup reg 1 set NAME [dreg N] 0xFLAGS
            guard t.count >= 6, t[3] == "set", let flags = UInt32(t[t.count - 1].dropFirst(2), radix: 16) else { break }
            let destination = t.count == 8 && t[5] == "dreg" ? try register(t[6]) : nil
            return LookupExpression(set: t[4], source: try register(t[2]), destination: destination, invert: flags & 1 != 0)
        default:
            break
        }
        throw ParseError(description: "unknown expression [ \(body) ]")
    }

    /// `\xNN` escapes → bytes.
    static func unescape(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count, utf8[i + 1] == UInt8(ascii: "x"),
               let value = UInt8(String(decoding: utf8[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return bytes
    }

    /// The comment TLV (`NFTNL_UDATA_RULE_COMMENT` 0: type, length, NUL-terminated text).
    static func comment(fromUserdata bytes: [UInt8]) throws -> String? {
        var i = 0
        while i + 2 <= bytes.count {
            let type = bytes[i], length = Int(bytes[i + 1])
            guard i + 2 + length <= bytes.count else { throw ParseError(description: "bad userdata \(bytes)") }
            if type == 0 {
                let value = bytes[(i + 2)..<(i + 2 + length)]
                return String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
            }
            i += 2 + length
        }
        return nil
    }

    /// nft 1.0.6 writes a positive port range as `cmp gte` + `cmp lte`; NftLowering as `range eq`.
    static func rangesAsRangeExpressions(_ program: NftRuleset) -> NftRuleset {
        var result = program
        for t in result.tables.indices {
            for c in result.tables[t].chains.indices {
                for r in result.tables[t].chains[c].rules.indices {
                    var out: [any NftExpression] = []
                    for expression in result.tables[t].chains[c].rules[r].expressions {
                        if let lte = expression as? CmpExpression, lte.op == .lte, let gte = out.last as? CmpExpression, gte.op == .gte,
                           gte.source == lte.source {
                            out[out.count - 1] = RangeExpression(.eq, from: gte.data, to: lte.data, source: gte.source)
                        } else {
                            out.append(expression)
                        }
                    }
                    result.tables[t].chains[c].rules[r].expressions = out
                }
            }
        }
        return result
    }
}
