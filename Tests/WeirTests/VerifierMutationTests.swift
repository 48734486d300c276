import Foundation
import Testing
import WeirDriver
import WeirModel
import WeirSimulator
import WeirVerifier

/// The verifier on mutants of real rulesets: the reference dumps of `../shared/reference` (on the
/// host of `Policies/docker-default.weir`) and every policy's compiled model (on its own host).
///
/// A mutant deletes a rule, swaps two neighbours, changes a port, an address, a prefix length, an
/// interface, a negation, a verdict, a jump target or a NAT target, or flips a chain policy.
/// Whether a mutant means something else is not known in advance, so it is decided
/// independently: (a) every mutant the verifier calls different must come with a counterexample
/// the simulator confirms; (b) every mutant it calls equivalent must treat ≥ 200 random packets
/// (half of them steered at the mutated rule) exactly as the original does. (c) and (d) are
/// hand-picked mutants of the seed ruleset whose answer is argued in a comment.
///
/// Mutants are sampled (`WEIR_VERIFY_MUTANTS` per ruleset, default 30, of 125–650 each) with
/// the seeded generator; the seed is printed and `WEIR_VERIFY_SEED` replays it.
/// `WEIR_VERIFY_ONLY=NAME` checks one ruleset (`many-ports.weir`, `docker-classic-default.rules`);
/// `WEIR_VERIFY_VERBOSE=1` names each mutant as it is checked and lists those the verifier calls
/// equivalent (and every brute-force pair). A check that runs longer than `WEIR_VERIFY_TIMEOUT`
/// seconds (default 60) ends the test process with its name (`VerifierSupport.check`).
@Suite("Verifier mutations")
struct VerifierMutationTests {
    typealias Random = VerifierSupport.Random

    static let perRuleset: Int = ProcessInfo.processInfo.environment["WEIR_VERIFY_MUTANTS"].flatMap { Int($0) }.map { max($0, 1) } ?? 30
    static let samples = 200
    static let verbose = ProcessInfo.processInfo.environment["WEIR_VERIFY_VERBOSE"].map { !$0.isEmpty && $0 != "0" } ?? false

    struct Subject {
        var name: String
        var ruleset: Ruleset
        var host: HostModel
    }

    /// The reference dumps and every policy's model.
    static func subjects() throws -> [Subject] {
        var subjects: [Subject] = []
        let seedHost = try VerifierSupport.host(ofPolicy: "docker-default.weir")
        let reference = Repository.shared + "/reference"
        let files = try FileManager.default.contentsOfDirectory(atPath: reference).filter { $0.hasSuffix(".rules") }.sorted()
        #expect(!files.isEmpty, "no reference .rules files in \(reference)")
        for file in files {
            let text = try Repository.sharedFile("reference/" + file)
            subjects.append(Subject(name: file, ruleset: try VerifierSupport.importIptables(text: text, path: file), host: seedHost))
        }
        let policies = try FileManager.default.contentsOfDirectory(atPath: Repository.root + "/Policies").filter { $0.hasSuffix(".weir") }.sorted()
        for policy in policies {
            let result = Compiler.compile(path: Repository.policy(policy))
            guard let ruleset = result.ruleset, !result.hasErrors else {
                Issue.record("\(policy) does not compile: \(result.diagnostics)")
                continue
            }
            subjects.append(Subject(name: policy, ruleset: ruleset, host: try VerifierSupport.host(ofPolicy: policy)))
        }
        return subjects
    }

    // MARK: Mutants

    struct Mutant {
        var description: String
        var ruleset: Ruleset
        /// The rules to steer sample packets at: (family, hook of the base chain or nil, rule).
        var focus: [(Family, Hook?, Rule)]
    }

    /// The hook a chain runs on: its own, or that of the first base chain that reaches it.
    static func hook(of chain: String, in table: Table) -> Hook? {
        if let hook = table.chain(named: chain)?.hook { return hook }
        for base in table.chains where base.isBase {
            var seen: Set<String> = [base.name], work = [base.name]
            while let next = work.popLast() {
                for rule in table.chain(named: next)?.rules ?? [] {
                    switch rule.target {
                    case .jump(let to), .goto(let to):
                        if to == chain { return base.hook }
                        if seen.insert(to).inserted { work.append(to) }
                    default: break
                    }
                }
            }
        }
        return nil
    }

    /// Every single-step mutant of a ruleset.
    static func mutants(of ruleset: Ruleset, host: HostModel) -> [Mutant] {
        var out: [Mutant] = []
        let hostInterfaces = host.interfaces.map(\.name)
        for place in VerifierSupport.places(ruleset) {
            let table = ruleset.table(place.family, place.table)!
            let chain = table.chain(named: place.chain)!
            let rule = chain.rules[place.index]
            let hook = hook(of: place.chain, in: table)
            func mutant(_ what: String, _ body: (inout [Rule]) -> Void, focus extra: [Rule] = []) {
                let edited = VerifierSupport.editing(ruleset, place.family, place.table, place.chain) { body(&$0.rules) }
                guard !VerifierSupport.hasLoop(edited) else { return }
                let rules = edited.table(place.family, place.table)!.chain(named: place.chain)!.rules
                let changed = rules.indices.contains(place.index) ? [rules[place.index]] : []
                out.append(Mutant(description: "\(place): \(what)", ruleset: edited,
                                  focus: ([rule] + changed + extra).map { (place.family, hook, $0) }))
            }
            func replacing(_ what: String, _ new: Rule) {
                mutant(what, { $0[place.index] = new })
            }
            mutant("delete", { $0.remove(at: place.index) })
            if place.index + 1 < chain.rules.count {
                mutant("swap with the next rule", { $0.swapAt(place.index, place.index + 1) }, focus: [chain.rules[place.index + 1]])
            }
            for (j, match) in rule.matches.enumerated() {
                func with(_ m: Match) -> Rule {
                    var matches = rule.matches
                    matches[j] = m
                    return Rule(matches, rule.target)
                }
                switch match {
                case let .address(d, p, n):
                    replacing("negate \(match)", with(.address(d, p, negated: !n)))
                    // Another address: the neighbouring prefix of the same length.
                    if p.length > 0 {
                        let other = Prefix(address: IPAddress(family: p.family, bits: p.network.bits ^ (UInt128(1) << UInt128(p.family.bitWidth - p.length))), length: p.length)
                        replacing("address \(p) -> \(other)", with(.address(d, other, negated: n)))
                    }
                    let length = p.length >= 8 ? p.length - 8 : p.length + 8
                    replacing("prefix length \(p.length) -> \(length)", with(.address(d, Prefix(address: p.address, length: length).canonical, negated: n)))
                case let .port(d, range, n):
                    replacing("negate \(match)", with(.port(d, range, negated: !n)))
                    let moved = range.last < 65535 ? PortRange(range.first + 1, range.last + 1) : PortRange(range.first - 1, range.last - 1)
                    replacing("port \(range) -> \(moved)", with(.port(d, moved, negated: n)))
                case let .inInterface(name, n):
                    replacing("negate \(match)", with(.inInterface(name, negated: !n)))
                    let other = hostInterfaces.first { $0 != name.name && $0 != "lo" } ?? "eth9"
                    replacing("in interface \(name) -> \(other)", with(.inInterface(InterfaceName(other), negated: n)))
                case let .outInterface(name, n):
                    replacing("negate \(match)", with(.outInterface(name, negated: !n)))
                    let other = hostInterfaces.first { $0 != name.name && $0 != "lo" } ?? "eth9"
                    replacing("out interface \(name) -> \(other)", with(.outInterface(InterfaceName(other), negated: n)))
                case let .protocol(t, n):
                    replacing("negate \(match)", with(.protocol(t, negated: !n)))
                    let other: TransportProtocol = t == .tcp ? .udp : .tcp
                    replacing("protocol \(t) -> \(other)", with(.protocol(other, negated: n)))
                case let .conntrackState(states, n):
                    replacing("negate \(match)", with(.conntrackState(states, negated: !n)))
                    let other: Set<ConntrackState> = states.contains(.new) ? [.established] : [.new]
                    replacing("states -> \(other.map(\.rawValue).sorted())", with(.conntrackState(other, negated: n)))
                case let .addressType(d, type, n):
                    replacing("negate \(match)", with(.addressType(d, type, negated: !n)))
                    replacing("address type \(type) -> \(type == .local ? AddressType.unicast : .local)",
                              with(.addressType(d, type == .local ? .unicast : .local, negated: n)))
                case .comment:
                    break
                }
            }
            // Targets.
            func target(_ what: String, _ t: Target) { replacing(what, Rule(rule.matches, t)) }
            switch rule.target {
            case .accept: target("ACCEPT -> DROP", .drop)
            case .drop, .reject: target("\(rule.target) -> ACCEPT", .accept)
            case .return: target("RETURN -> ACCEPT", .accept)
            case .jump(let to), .goto(let to):
                for other in table.chains where !other.isBase && other.name != to {
                    if case .jump = rule.target { target("jump \(to) -> \(other.name)", .jump(other.name)) } else { target("goto \(to) -> \(other.name)", .goto(other.name)) }
                }
                if case .jump = rule.target { target("jump \(to) -> goto", .goto(to)) }
            case .dnat(let to):
                if let ports = to.ports {
                    target("DNAT port \(ports) -> \(ports.first &+ 1)", .dnat(NATDestination(address: to.address, ports: PortRange(ports.first &+ 1))))
                }
                target("DNAT address \(to.address) -> next", .dnat(NATDestination(address: IPAddress(family: to.address.family, bits: to.address.bits + 1), ports: to.ports)))
            case .snat(let to):
                target("SNAT address \(to.address) -> next", .snat(NATDestination(address: IPAddress(family: to.address.family, bits: to.address.bits + 1), ports: to.ports)))
            case .masquerade:
                let address = host.interfaces.first { $0.name != "lo" }?.addresses.first { $0.family == place.family }?.address
                if let address { target("MASQUERADE -> SNAT \(address)", .snat(NATDestination(address: address))) }
            case .log, .checksumFill:
                target("\(rule.target) -> DROP", .drop)
            }
        }
        // Chain policies.
        for table in ruleset.tables {
            for chain in table.chains {
                guard case .base(let hook, let priority, let policy) = chain.kind else { continue }
                let flipped: ChainPolicy = policy == .drop ? .accept : .drop
                let edited = VerifierSupport.editing(ruleset, table.family, table.name, chain.name) { $0.kind = .base(hook: hook, priority: priority, policy: flipped) }
                out.append(Mutant(description: "\(table.family.rawValue) \(table.name) \(chain.name): policy \(policy.rawValue) -> \(flipped.rawValue)",
                                  ruleset: edited, focus: []))
            }
        }
        return out
    }

    // MARK: (a) and (b)

    struct Tally {
        var mutants = 0, different = 0, equivalent = 0
        var verifierSeconds = 0.0
    }

    /// Checks one mutant: a confirmed counterexample, or the same outcome on sampled packets.
    static func check(_ subject: Subject, _ mutant: Mutant, _ r: inout Random, tally: inout Tally) {
        if verbose { FileHandle.standardError.write(Data("    checking \(subject.name) \(mutant.description)\n".utf8)) }
        let answer = VerifierSupport.check(subject.ruleset, mutant.ruleset, host: subject.host, "\(subject.name), mutant \(mutant.description)")
        if verbose { FileHandle.standardError.write(Data(String(format: "      %.3f s, %d classes\n", answer.seconds, answer.classes).utf8)) }
        tally.mutants += 1
        tally.verifierSeconds += answer.seconds
        let left = Simulator(ruleset: subject.ruleset, host: subject.host), right = Simulator(ruleset: mutant.ruleset, host: subject.host)
        // On every possible host: a counterexample holds on the host found with it, and
        // equivalence there implies equivalence on the subject's host (one of them).
        let everywhere = VerifierSupport.check(subject.ruleset, mutant.ruleset, host: nil, "\(subject.name), mutant \(mutant.description), every host")
        tally.verifierSeconds += everywhere.seconds
        if let c = everywhere.counterexample {
            if let host = c.host {
                if let problem = VerifierSupport.refutation(of: c, left: subject.ruleset, right: mutant.ruleset, host: host) {
                    Issue.record("\(subject.name), mutant \(mutant.description) on every host (\(VerifierSupport.seedLine)): \(problem)")
                }
            } else {
                Issue.record("\(subject.name), mutant \(mutant.description): a counterexample on every host without its host")
            }
        } else if let c = answer.counterexample {
            Issue.record("\(subject.name), mutant \(mutant.description) (\(VerifierSupport.seedLine)): equivalent on every host but not on its own: \(c)")
        }
        if let c = answer.counterexample {
            tally.different += 1
            if let problem = VerifierSupport.refutation(of: c, left: left, right: right) {
                Issue.record("\(subject.name), mutant \(mutant.description) (\(VerifierSupport.seedLine)): \(problem)")
            }
            return
        }
        tally.equivalent += 1
        if verbose { print("    equivalent: \(subject.name) \(mutant.description)") }
        let sampler = PacketSampler(rulesets: [subject.ruleset, mutant.ruleset], host: subject.host)
        for n in 0..<samples {
            let (packet, origin): (Packet, Origin)
            if n % 2 == 1, !mutant.focus.isEmpty {
                let (family, hook, rule) = r.pick(mutant.focus)
                (packet, origin) = sampler.next(toward: rule, family: family, hook: hook, &r)
            } else {
                (packet, origin) = sampler.next(&r)
            }
            let a = VerifierSupport.observable(left, packet, origin), b = VerifierSupport.observable(right, packet, origin)
            if a != b {
                Issue.record("""
                    \(subject.name), mutant \(mutant.description) (\(VerifierSupport.seedLine)): the verifier says equivalent, \
                    but \(Counterexample(packet: packet, origin: origin, left: a, right: b))
                    """)
                return
            }
        }
    }

    @Test("sampled mutants of the reference rulesets and every policy: counterexamples confirmed, equivalences hold on samples")
    func sampledMutants() throws {
        let subjects = try Self.subjects()
        var tally = Tally()
        let start = ContinuousClock.now
        print("VerifierMutationTests: \(VerifierSupport.seedLine); \(Self.perRuleset) mutants per ruleset, \(subjects.count) rulesets")
        let only = ProcessInfo.processInfo.environment["WEIR_VERIFY_ONLY"]
        for (index, subject) in subjects.enumerated() where only == nil || subject.name == only {
            var r = Random.stream(VerifierSupport.seed, 0xA1, index)
            var all = Self.mutants(of: subject.ruleset, host: subject.host)
            all.shuffle(using: &r)
            var own = Tally()
            for mutant in all.prefix(Self.perRuleset) { Self.check(subject, mutant, &r, tally: &own) }
            print("  \(subject.name): \(VerifierSupport.ruleCount(subject.ruleset)) rules, \(all.count) mutants, checked \(own.mutants): "
                  + "\(own.different) different, \(own.equivalent) equivalent")
            tally.mutants += own.mutants
            tally.different += own.different
            tally.equivalent += own.equivalent
            tally.verifierSeconds += own.verifierSeconds
        }
        let wall = VerifierBruteForceTests.seconds(ContinuousClock.now - start)
        print(String(format: "VerifierMutationTests: %d mutants, %d different, %d equivalent; verifier %.2f s, wall %.2f s",
                     tally.mutants, tally.different, tally.equivalent, tally.verifierSeconds, wall))
        // Most single-step mutants of a real ruleset change it; some must be told apart.
        #expect(tally.different > tally.mutants / 3, "only \(tally.different) of \(tally.mutants) mutants are different")
    }

    // MARK: (c) and (d): hand-picked mutants of the seed ruleset

    /// The seed ruleset (`docker-classic-default.rules`) with lines replaced: each `(old, new)`
    /// replaces the one line `old` by the lines `new` (none: deletes it).
    static func seed(_ edits: [(String, [String])]) throws -> Ruleset {
        var lines = try Repository.sharedFile("reference/docker-classic-default.rules").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (old, new) in edits {
            let at = try #require(lines.firstIndex(of: old), "no line '\(old)' in the seed ruleset")
            lines.replaceSubrange(at...at, with: new)
        }
        return try VerifierSupport.importIptables(text: lines.joined(separator: "\n"), path: "docker-classic-default.rules (edited)")
    }

    static let dnat = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.2:80"

    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var edits: [(String, [String])]
        var description: String { name }
    }

    /// Mutants that MUST be different, each with the packet that shows it.
    static let differentCases: [Case] = [
        // 10.0.3.122 → 10.0.3.121:10080 from enp0s8 is DNATed to 172.17.0.2:81, and FORWARD's
        // DOCKER chain accepts only --dport 80 to the container: the original forwards it to
        // 172.17.0.2:80, the mutant drops it at the FORWARD policy.
        Case(name: "DNAT port 80 -> 81", edits: [(dnat, [dnat.replacingOccurrences(of: ":80", with: ":81")])]),
        // Without the jump to DOCKER the published flow 10.0.3.122 → 172.17.0.2:80 (after DNAT)
        // from enp0s8 is accepted by no FORWARD rule: dropped by the policy instead of forwarded.
        Case(name: "delete -A FORWARD -o docker0 -j DOCKER", edits: [("-A FORWARD -o docker0 -j DOCKER", [])]),
        // A NEW packet from enp0s8 to container 172.17.0.3 port 22 (published nowhere) matches no
        // FORWARD rule: the DROP policy drops it, ACCEPT forwards it out docker0.
        Case(name: "FORWARD policy DROP -> ACCEPT", edits: [(":FORWARD DROP [0:0]", [":FORWARD ACCEPT [0:0]"])]),
        // `-i docker0` can never reach the DNAT rule (the rule before returns every packet from
        // docker0), so the external 10.0.3.122 → 10.0.3.121:10080 is no longer DNATed: it is
        // delivered locally to port 10080 instead of forwarded to 172.17.0.2:80.
        Case(name: "negate ! -i docker0 in the DNAT rule", edits: [(dnat, [dnat.replacingOccurrences(of: "! -i docker0", with: "-i docker0")])]),
        // The same external packet to port 10080 is not DNATed and is delivered locally.
        Case(name: "DNAT --dport 10080 -> 10081", edits: [(dnat, [dnat.replacingOccurrences(of: "10080", with: "10081")])]),
        // Container 172.17.1.5 → 8.8.8.8 leaves by enp0s8: masqueraded to 10.0.3.121 by the
        // original, not at all by the mutant (172.17.1.5 is outside 172.17.0.0/24).
        Case(name: "MASQUERADE source /16 -> /24", edits: [("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
                                                              ["-A POSTROUTING -s 172.17.0.0/24 ! -o docker0 -j MASQUERADE"])]),
        // A reply (ESTABLISHED) from 8.8.8.8 to container 172.17.0.3 from enp0s8 is accepted by
        // the conntrack rule; without it, DOCKER does not accept it and the policy drops it.
        Case(name: "delete the FORWARD RELATED,ESTABLISHED rule",
             edits: [("-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", [])]),
        // A DNAT of the same port (the same exact protocol and port, so not told apart by
        // them) placed first takes 10.0.3.122 → 10.0.3.121:10080 from enp0s8 to 172.17.0.3,
        // which DOCKER's FORWARD rules do not accept: dropped instead of forwarded to .2.
        Case(name: "a DNAT of the same port, from enp0s8 to another container, before the DNAT",
             edits: [(dnat, ["-A DOCKER -i enp0s8 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.3:80", dnat])]),
        // Container → container (docker0 to docker0) is accepted only by this rule.
        Case(name: "FORWARD -i docker0 -o docker0 ACCEPT -> DROP",
             edits: [("-A FORWARD -i docker0 -o docker0 -j ACCEPT", ["-A FORWARD -i docker0 -o docker0 -j DROP"])]),
    ]

    /// Mutants that MUST be equivalent.
    static let equivalentCases: [Case] = [
        // Rules 4 and 5 of FORWARD match `-o docker0` and `! -o docker0`: no packet matches both,
        // so their order cannot matter.
        Case(name: "swap the disjoint FORWARD rules -o docker0 -j DOCKER and -i docker0 ! -o docker0 -j ACCEPT",
             edits: [("-A FORWARD -o docker0 -j DOCKER", []),
                     ("-A FORWARD -i docker0 ! -o docker0 -j ACCEPT", ["-A FORWARD -i docker0 ! -o docker0 -j ACCEPT", "-A FORWARD -o docker0 -j DOCKER"])]),
        // nat DOCKER's two rules match `-i docker0` and `! -i docker0`: disjoint.
        Case(name: "swap the disjoint nat DOCKER rules",
             edits: [("-A DOCKER -i docker0 -j RETURN", []), (dnat, [dnat, "-A DOCKER -i docker0 -j RETURN"])]),
        // A DNAT of the same port placed after the DNAT never acts: every packet it matches
        // was DNATed by the rule before it. The DNAT's `! -i docker0` is dropped too, which
        // changes nothing (DOCKER's RETURN before it takes every packet from docker0), so that
        // the DNATs start a run of their own, found by their exact protocol and port: the two
        // fix them to the same values and must not be counted as disjoint.
        Case(name: "a DNAT of the same port, from enp0s8 to another container, after the DNAT",
             edits: [(dnat, [dnat.replacingOccurrences(of: "! -i docker0 ", with: ""),
                             "-A DOCKER -i enp0s8 -p tcp -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.3:80"])]),
        // A rule after DOCKER-USER's unconditional RETURN is never reached.
        Case(name: "a rule after an unconditional RETURN",
             edits: [("-A DOCKER-USER -j RETURN", ["-A DOCKER-USER -j RETURN", "-A DOCKER-USER -s 10.0.3.122/32 -j DROP"])]),
        // A rule after FORWARD's `-i docker0 -o docker0 -j ACCEPT` that matches a subset of it is
        // shadowed.
        Case(name: "a shadowed rule",
             edits: [("-A FORWARD -i docker0 -o docker0 -j ACCEPT",
                      ["-A FORWARD -i docker0 -o docker0 -j ACCEPT", "-A FORWARD -s 172.17.0.2/32 -i docker0 -o docker0 -j DROP"])]),
        // DOCKER-ISOLATION-STAGE-2 is only entered from stage 1's `-i docker0 ! -o docker0`, so its
        // `-o docker0 -j DROP` can never match: deleting it changes nothing.
        Case(name: "delete the unreachable -o docker0 DROP of DOCKER-ISOLATION-STAGE-2",
             edits: [("-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP", [])]),
        // DOCKER-USER only returns: the jump to it does nothing.
        Case(name: "inline DOCKER-USER (-j RETURN only): drop the jump and the chain's RETURN",
             edits: [("-A FORWARD -j DOCKER-USER", []), ("-A DOCKER-USER -j RETURN", [])]),
        // DOCKER-ISOLATION-STAGE-1 jumps to stage 2 for `-i docker0 ! -o docker0` and then
        // returns; jumping to stage 2 straight from FORWARD with the same matches is the same.
        Case(name: "inline DOCKER-ISOLATION-STAGE-1 into FORWARD",
             edits: [("-A FORWARD -j DOCKER-ISOLATION-STAGE-1", ["-A FORWARD -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2"])]),
        // nat PREROUTING's jump to DOCKER: DOCKER returns for `-i docker0` and DNATs `! -i docker0
        // tcp 10080`, so one DNAT rule with the jump's and the DNAT's matches is the same.
        Case(name: "inline nat DOCKER into PREROUTING",
             edits: [("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
                      ["-A PREROUTING ! -i docker0 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 10080 -j DNAT --to-destination 172.17.0.2:80"])]),
        // `-i docker0 ! -o docker0` and `-i docker0 -o docker0`, both ACCEPT, cover exactly
        // `-i docker0`.
        Case(name: "merge -i docker0 ! -o docker0 and -i docker0 -o docker0 into -i docker0",
             edits: [("-A FORWARD -i docker0 ! -o docker0 -j ACCEPT", ["-A FORWARD -i docker0 -j ACCEPT"]),
                     ("-A FORWARD -i docker0 -o docker0 -j ACCEPT", [])]),
        // The hairpin MASQUERADE and the subnet MASQUERADE do the same thing: their order cannot
        // matter.
        Case(name: "swap the two MASQUERADE rules",
             edits: [("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE", []),
                     ("-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
                      ["-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
                       "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"])]),
        // A FORWARD policy of DROP is a final unconditional DROP rule under an ACCEPT policy:
        // FORWARD has no RETURN and no goto, so nothing reaches the policy without passing it.
        Case(name: "FORWARD policy DROP as a final DROP rule",
             edits: [(":FORWARD DROP [0:0]", [":FORWARD ACCEPT [0:0]"]),
                     ("-A FORWARD -i docker0 -o docker0 -j ACCEPT", ["-A FORWARD -i docker0 -o docker0 -j ACCEPT", "-A FORWARD -j DROP"])]),
    ]

    @Test("hand-picked mutants of the seed ruleset are different", arguments: differentCases)
    func mustDiffer(_ c: Case) throws {
        let original = try Self.seed([])
        let mutant = try Self.seed(c.edits)
        let host = try VerifierSupport.host(ofPolicy: "docker-default.weir")
        let answer = VerifierSupport.check(original, mutant, host: host, c.name)
        let counterexample = try #require(answer.counterexample, "\(c.name): the verifier calls it equivalent")
        if let problem = VerifierSupport.refutation(of: counterexample, left: original, right: mutant, host: host) {
            Issue.record("\(c.name): \(problem)")
        }
        print("  different: \(c.name): \(counterexample)")
    }

    @Test("hand-picked mutants of the seed ruleset are equivalent", arguments: equivalentCases)
    func mustBeEquivalent(_ c: Case) throws {
        let original = try Self.seed([])
        let mutant = try Self.seed(c.edits)
        #expect(original != mutant, "\(c.name): the edit changed nothing")
        let host = try VerifierSupport.host(ofPolicy: "docker-default.weir")
        let answer = VerifierSupport.check(original, mutant, host: host, c.name)
        if let counterexample = answer.counterexample {
            let problem = VerifierSupport.refutation(of: counterexample, left: original, right: mutant, host: host)
            Issue.record("\(c.name): the verifier calls it different: \(counterexample)\(problem.map { " — and " + $0 } ?? " (the simulator agrees: the case is wrong)")")
        }
    }

    /// A locally sent IPv6 packet to one of the host's own addresses leaves by loopback, where
    /// MASQUERADE takes the destination itself as the new source (see
    /// `Simulator.masqueradeSource`): fd00:db8:1::5 → fd00:db8:1::1 is delivered with source
    /// fd00:db8:1::1 on the left and keeps fd00:db8:1::5 on the right. So the verifier must
    /// compare a final source that is the arriving destination with one that is the arriving
    /// source — the comparison that mutants of `classic-s8-ipv6.weir`'s IPv6 MASQUERADE reach.
    @Test("IPv6 MASQUERADE out loopback (source := destination) is told apart from no NAT")
    func ipv6LoopbackMasquerade() throws {
        let host = try VerifierSupport.host(ofPolicy: "classic-s8-ipv6.weir")
        func nat(_ rules: [Rule]) -> Ruleset {
            var table = XtablesLayout.emptyTable("nat", family: .ipv6)!
            table.modifyChain("POSTROUTING") { $0.rules = rules }
            return Ruleset(tables: [table])
        }
        let left = nat([Rule([.outInterface(InterfaceName("lo"))], .masquerade(ports: nil))]), right = nat([])
        let answer = VerifierSupport.check(left, right, host: host, "ip6 nat POSTROUTING -o lo -j MASQUERADE vs nothing")
        let counterexample = try #require(answer.counterexample, "the verifier calls them equivalent")
        if let problem = VerifierSupport.refutation(of: counterexample, left: left, right: right, host: host) { Issue.record("\(problem)") }
    }

    /// Pairs that differ only on some hosts: on every possible host each must be called
    /// different, with a counterexample the simulator confirms on the host found with it.
    static let onSomeHostsOnly: [(name: String, left: Ruleset, right: Ruleset)] = {
        func table(_ name: String, _ edits: [String: [Rule]], family: Family = .ipv4) -> Table {
            var t = XtablesLayout.emptyTable(name, family: family)!
            for (chain, rules) in edits { t.modifyChain(chain) { $0.rules = rules } }
            return t
        }
        func dnat(to address: String) -> Rule {
            Rule([.address(.destination, Prefix("192.0.2.1/32")!, negated: false), .protocol(.tcp, negated: false),
                  .port(.destination, PortRange(80), negated: false)], .dnat(NATDestination(address: IPAddress(address)!)))
        }
        var dropping = table("filter", [:])
        dropping.modifyChain("INPUT") { $0.kind = .base(hook: .input, priority: 0, policy: .drop) }
        dropping.modifyChain("FORWARD") { $0.kind = .base(hook: .forward, priority: 0, policy: .drop) }
        let broadcastDrop = Rule([.address(.destination, Prefix("10.0.0.0/8")!, negated: false), .addressType(.destination, .broadcast, negated: false)], .drop)
        let masquerade = table("nat", ["POSTROUTING": [Rule([], .masquerade(ports: nil))]])
        let late = Table(family: .ipv4, name: "late", chains: [Chain(name: "POSTROUTING", kind: .base(hook: .postrouting, priority: 200, policy: .accept),
                                                                     rules: [Rule([.conntrackState([.new], negated: false), .address(.source, Prefix("10.0.0.0/8")!, negated: false)], .drop)])])
        return [
            // Both DNAT 192.0.2.1:80 and drop whatever they receive, but to different
            // addresses: where 10.0.0.1 is local and 10.0.0.2 has no route, the left drops the
            // packet in INPUT and the right finds no route. Each written address routes as
            // chosen for it, not one choice for both.
            ("DNAT to two addresses, INPUT and FORWARD dropping",
             Ruleset(tables: [table("nat", ["PREROUTING": [dnat(to: "10.0.0.1")]]), dropping]),
             Ruleset(tables: [table("nat", ["PREROUTING": [dnat(to: "10.0.0.2")]]), dropping])),
            // A broadcast address of 10/8 dropped in FORWARD or in mangle PREROUTING: the same
            // where the host forwards; where it does not, the left's is unroutable, the right's
            // dropped.
            ("broadcast dropped in FORWARD or in PREROUTING",
             Ruleset(tables: [table("filter", ["FORWARD": [broadcastDrop]])]),
             Ruleset(tables: [table("mangle", ["PREROUTING": [broadcastDrop]])])),
            // MASQUERADE, then a later POSTROUTING chain dropping new packets from 10/8: the left
            // drops what leaves by an interface whose address is in 10/8, the right does not.
            ("MASQUERADE, then a drop of the host's own 10/8 source",
             Ruleset(tables: [masquerade, late]), Ruleset(tables: [masquerade])),
        ]
    }()

    @Test("on every host: pairs that differ on some hosts only are told apart, on a host that shows it", arguments: 0..<3)
    func differentOnSomeHosts(_ index: Int) throws {
        let pair = Self.onSomeHostsOnly[index]
        let answer = VerifierSupport.check(pair.left, pair.right, host: nil, pair.name)
        let counterexample = try #require(answer.counterexample, "\(pair.name): called equivalent on every host")
        let host = try #require(counterexample.host, "\(pair.name): no host with the counterexample")
        if let problem = VerifierSupport.refutation(of: counterexample, left: pair.left, right: pair.right, host: host) {
            Issue.record("\(pair.name): \(problem)")
        }
    }

    @Test("the seed policy's model is equivalent to the reference dump")
    func seedPolicyEqualsReference() throws {
        let result = Compiler.compile(path: Repository.policy("docker-default.weir"))
        let model = try #require(result.ruleset)
        let answer = VerifierSupport.check(model, try Self.seed([]), host: try VerifierSupport.host(ofPolicy: "docker-default.weir"), "docker-default.weir vs the reference dump")
        #expect(answer.equivalent, "\(answer.counterexample.map(String.init(describing:)) ?? "")")
    }
}

