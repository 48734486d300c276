import Foundation
import Testing
import WeirDiagnostics
import WeirDriver
import WeirTestFixtures
import WeirIptables
import WeirModel
import WeirSimulator
import WeirVerifier

/// What the verifier's mutation and brute-force suites share: the seed, a generator, the check
/// that a counterexample is real, ruleset edits, and a random packet sampler.
enum VerifierSupport {
    // MARK: Seed

    static let defaultSeed: UInt64 = 0x5645_5249_4659_0005
    /// `WEIR_VERIFY_SEED` (decimal or 0x-hex) replays a run; every suite prints the seed it used.
    static let seed = EnvironmentSeed.read("WEIR_VERIFY_SEED", fallback: defaultSeed)

    static var seedLine: String { "seed \(seed) (0x\(String(seed, radix: 16))); replay with WEIR_VERIFY_SEED=\(seed)" }

    /// SplitMix64 (the mutation fuzzer's): the same sequence on every platform, so a printed
    /// seed replays a run.
    typealias Random = MutationRobustnessTests.SplitMix64
}

extension MutationRobustnessTests.SplitMix64 {
    /// An independent stream for item `index`, so skipping items never shifts the others.
    static func stream(_ seed: UInt64, _ salt: UInt64, _ index: Int) -> Self {
        var r = Self(seed: seed ^ (salt &* 0xD1B5_4A32_D192_ED03) ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
        _ = r.next()
        return r
    }
}

extension VerifierSupport {
    // MARK: Running the verifier

    /// Seconds one `Verifier.check` may take (`WEIR_VERIFY_TIMEOUT`, default 60; the checks of
    /// these suites take well under a second in debug builds).
    static let timeout: Double = ProcessInfo.processInfo.environment["WEIR_VERIFY_TIMEOUT"].flatMap { Double($0) } ?? 60

    final class Watch: @unchecked Sendable {
        let lock = NSLock()
        var done = false
    }

    /// `Verifier.check` under a watchdog (`watched`).
    static func check(_ left: Ruleset, _ right: Ruleset, host: HostModel?, _ what: String) -> EquivalenceResult {
        watched("Verifier.check on \(what) (\(seedLine))") { Verifier.check(left, right, host: host) }
    }

    /// `body` under a watchdog: verifier work still running after `timeout` seconds cannot be
    /// stopped (and may be eating memory), so the watchdog names it on standard error and ends
    /// the test process — a failure that says what ran, instead of a hang.
    static func watched<T>(_ what: String, _ body: () -> T) -> T {
        let watch = Watch()
        let limit = timeout
        DispatchQueue.global().asyncAfter(deadline: .now() + limit) {
            watch.lock.lock()
            defer { watch.lock.unlock() }
            guard !watch.done else { return }
            let message = "\(what) ran for more than \(limit) s (WEIR_VERIFY_TIMEOUT)\n"
            FileHandle.standardError.write(Data(message.utf8))
            fatalError(message)
        }
        let result = body()
        watch.lock.lock()
        watch.done = true
        watch.lock.unlock()
        return result
    }

    // MARK: Confirming an answer

    /// What the simulator says an observer sees of `packet` arriving at `origin`.
    static func observable(_ simulator: Simulator, _ packet: Packet, _ origin: Origin) -> ObservableOutcome {
        ObservableOutcome(simulator.simulate(packet, from: origin, trace: false))
    }

    /// Nil when the concrete simulator confirms the counterexample — it gives `c.left` on the
    /// left ruleset, `c.right` on the right one, and they differ — else what is wrong with it.
    static func refutation(of c: Counterexample, left: Simulator, right: Simulator) -> String? {
        let l = observable(left, c.packet, c.origin)
        let r = observable(right, c.packet, c.origin)
        var problems: [String] = []
        if l != c.left { problems.append("the simulator gives \(l) on the left, the verifier claims \(c.left)") }
        if r != c.right { problems.append("the simulator gives \(r) on the right, the verifier claims \(c.right)") }
        if c.left == c.right { problems.append("the claimed outcomes are equal") }
        if l == r { problems.append("the simulator treats the packet the same on both sides (\(l))") }
        return problems.isEmpty ? nil : "counterexample \(c) is not confirmed: " + problems.joined(separator: "; ")
    }

    static func refutation(of c: Counterexample, left: Ruleset, right: Ruleset, host: HostModel) -> String? {
        refutation(of: c, left: Simulator(ruleset: left, host: host), right: Simulator(ruleset: right, host: host))
    }

    // MARK: Loading

    /// An `iptables-save` file read as `RulesetSource` reads one (IPv4 unless it names IPv6
    /// addresses); records a failure when it does not import cleanly.
    static func importIptables(text: String, path: String) throws -> Ruleset {
        let family: Family = text.split(separator: "\n").contains { $0.hasPrefix("-A ") && $0.contains(":") && $0.contains("/128") || $0.contains("::") } ? .ipv6 : .ipv4
        let (ruleset, diagnostics) = IptablesImporter.parse(SourceFile(path: path, bytes: Array(text.utf8)), family: family)
        let errors = diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty {
            Issue.record("\(path) does not import: \(errors)")
            throw CancellationError()
        }
        return ruleset
    }

    /// A policy's host, as `weir verify --host` takes it.
    static func host(ofPolicy name: String) throws -> HostModel {
        switch RulesetSource.host(ofPolicy: Repository.policy(name)) {
        case .success(let host): return host
        case .failure(let error):
            Issue.record("\(name) gives no host: \(error.diagnostics)")
            throw CancellationError()
        }
    }

    /// `iptables-save` text of every family of a ruleset, for messages.
    static func text(_ ruleset: Ruleset) -> String {
        ruleset.families.map { IptablesPrinter.render(ruleset, family: $0) }.joined(separator: "\n")
    }

    // MARK: Rulesets

    /// A rule's place: table (by family and name), chain, index.
    struct RulePlace: Hashable, CustomStringConvertible {
        var family: Family
        var table: String
        var chain: String
        var index: Int
        var description: String { "\(family.rawValue) \(table) \(chain) #\(index + 1)" }
    }

    static func places(_ ruleset: Ruleset) -> [RulePlace] {
        ruleset.tables.flatMap { table in
            table.chains.flatMap { chain in
                chain.rules.indices.map { RulePlace(family: table.family, table: table.name, chain: chain.name, index: $0) }
            }
        }
    }

    static func rule(_ ruleset: Ruleset, at place: RulePlace) -> Rule {
        ruleset.table(place.family, place.table)!.chain(named: place.chain)!.rules[place.index]
    }

    /// The ruleset with one chain edited.
    static func editing(_ ruleset: Ruleset, _ family: Family, _ table: String, _ chain: String, _ body: (inout Chain) -> Void) -> Ruleset {
        var copy = ruleset
        copy.modifyTable(family, table) { $0.modifyChain(chain, body) }
        return copy
    }

    /// Whether some chain can reach itself by jumps and gotos (the kernel refuses such a table).
    static func hasLoop(_ ruleset: Ruleset) -> Bool {
        for table in ruleset.tables {
            var edges: [String: Set<String>] = [:]
            for chain in table.chains {
                for rule in chain.rules {
                    switch rule.target {
                    case .jump(let to), .goto(let to): edges[chain.name, default: []].insert(to)
                    default: break
                    }
                }
            }
            // Depth-first search with colours.
            var state: [String: Int] = [:]  // 1 on the stack, 2 done
            func visit(_ node: String) -> Bool {
                if state[node] == 1 { return true }
                if state[node] == 2 { return false }
                state[node] = 1
                for next in edges[node] ?? [] where visit(next) { return true }
                state[node] = 2
                return false
            }
            for chain in table.chains where visit(chain.name) { return true }
        }
        return false
    }

    /// `eth0 10.0.0.1/24, br0 (bridge) 172.18.0.1/16; routes 0.0.0.0/0 via eth0; ip_forward on, br_netfilter on`.
    static func describe(_ host: HostModel) -> String {
        let interfaces = host.interfaces.map { "\($0.name)\($0.isBridge ? " (bridge)" : "") \($0.addresses.map(\.description).joined(separator: " "))" }
        let routes = host.extraRoutes.map { "\($0.destination) via \($0.interface)" }
        return interfaces.joined(separator: ", ") + "; routes " + (routes.isEmpty ? "none" : routes.joined(separator: ", "))
            + "; ip_forward \(host.ipForward ? "on" : "off"), br_netfilter \(host.bridgeNetfilter ? "on" : "off")"
    }

    static func ruleCount(_ ruleset: Ruleset) -> Int {
        ruleset.tables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
    }
}

// MARK: Random packets

/// Random packets for a ruleset pair on a host: origins among the host's interfaces, a local
/// process and an interface the host does not have; addresses from the rules' prefixes (their
/// first, last and a random address inside), the host's addresses and random ones; TCP, UDP and
/// ICMP with ports from the rules and random ones; every conntrack state. Half of the packets
/// can be steered at one rule (its positive matches hold), so a sample reaches an edited rule.
struct PacketSampler {
    let host: HostModel
    let families: [Family]
    var prefixes: [Family: [Prefix]] = [:]
    var ports: [UInt16] = []
    let interfaces: [String]
    static let unknownInterface = "unk~9"

    init(rulesets: [Ruleset], host: HostModel) {
        self.host = host
        var families = Set<Family>()
        var prefixes: [Family: Set<Prefix>] = [:]
        var ports = Set<UInt16>([0, 1, 22, 53, 80, 443, 1023, 1024, 8080, 40000, 65535])
        var names = Set(host.interfaces.map(\.name))
        for ruleset in rulesets {
            for table in ruleset.tables {
                families.insert(table.family)
                for chain in table.chains {
                    for rule in chain.rules {
                        for match in rule.matches {
                            switch match {
                            case .address(_, let prefix, _): prefixes[prefix.family, default: []].insert(prefix)
                            case .port(_, let range, _):
                                // Both ends and the ports just outside.
                                ports.formUnion([range.first, range.last, range.first &- 1, range.last &+ 1])
                            case .inInterface(let name, _), .outInterface(let name, _):
                                names.insert(name.isWildcard ? name.name + "~7" : name.name)
                            default: break
                            }
                        }
                        switch rule.target {
                        case .dnat(let to), .snat(let to):
                            prefixes[to.address.family, default: []].insert(Prefix(host: to.address))
                            if let range = to.ports { ports.insert(range.first) }
                        default: break
                        }
                    }
                }
            }
        }
        for interface in host.interfaces {
            for prefix in interface.addresses {
                prefixes[prefix.family, default: []].insert(prefix)
                prefixes[prefix.family, default: []].insert(Prefix(host: prefix.address))
            }
        }
        for route in host.extraRoutes { prefixes[route.destination.family, default: []].insert(route.destination) }
        self.families = families.isEmpty ? [.ipv4] : families.sorted()
        self.prefixes = prefixes.mapValues { $0.sorted() }
        self.ports = ports.sorted()
        self.interfaces = names.sorted() + [Self.unknownInterface]
    }

    func address(_ family: Family, _ r: inout VerifierSupport.Random) -> IPAddress {
        let width = family.bitWidth
        let all: UInt128 = width == 128 ? ~0 : (1 << 32) - 1
        let pool = prefixes[family] ?? []
        if pool.isEmpty || r.chance(15) { return IPAddress(family: family, bits: (UInt128(r.next()) << 64 | UInt128(r.next())) & all) }
        return address(in: r.pick(pool), &r)
    }

    /// The first, last or a random address of a prefix.
    func address(in prefix: Prefix, _ r: inout VerifierSupport.Random) -> IPAddress {
        switch r.below(3) {
        case 0: return prefix.network
        case 1: return prefix.last
        default:
            let width = prefix.family.bitWidth
            let host = width - prefix.length
            let all: UInt128 = width == 128 ? ~0 : (1 << 32) - 1
            let random = (UInt128(r.next()) << 64 | UInt128(r.next())) & all
            let mask: UInt128 = host == 0 ? 0 : (host >= 128 ? ~0 : (UInt128(1) << UInt128(host)) - 1)
            return IPAddress(family: prefix.family, bits: (prefix.network.bits & ~mask) | (random & mask))
        }
    }

    func port(_ r: inout VerifierSupport.Random) -> UInt16 { r.chance(20) ? UInt16(truncatingIfNeeded: r.next()) : r.pick(ports) }

    func origin(_ r: inout VerifierSupport.Random) -> Origin {
        r.chance(20) ? .local : .interface(r.pick(interfaces))
    }

    /// A random packet and where it arrives.
    func next(_ r: inout VerifierSupport.Random) -> (Packet, Origin) {
        let family = r.pick(families)
        let transport: TransportProtocol = r.pick([.tcp, .tcp, .udp, family == .ipv4 ? .icmp : .icmpv6])
        let packet = Packet(source: address(family, &r), destination: address(family, &r), transport: transport,
                            sourcePort: transport.hasPorts ? port(&r) : 0, destinationPort: transport.hasPorts ? port(&r) : 0,
                            state: r.pick(ConntrackState.allCases))
        return (packet, origin(&r))
    }

    /// A random packet that satisfies `rule`'s positive matches where it can (their prefixes,
    /// ports, protocol, states, input interface), arriving where `hook` sees it.
    func next(toward rule: Rule, family: Family, hook: Hook?, _ r: inout VerifierSupport.Random) -> (Packet, Origin) {
        var (packet, origin) = next(&r)
        if packet.family != family {
            packet.source = address(family, &r)
            packet.destination = address(family, &r)
            if !packet.transport.hasPorts { packet.transport = family == .ipv4 ? .icmp : .icmpv6 }
        }
        for match in rule.matches {
            switch match {
            case .address(.source, let prefix, false) where prefix.family == family: packet.source = address(in: prefix, &r)
            case .address(.destination, let prefix, false) where prefix.family == family: packet.destination = address(in: prefix, &r)
            case .protocol(let t, false):
                packet.transport = t
            case .port(.source, let range, false): packet.sourcePort = r.chance(50) ? range.first : range.last
            case .port(.destination, let range, false): packet.destinationPort = r.chance(50) ? range.first : range.last
            case .conntrackState(let states, false) where !states.isEmpty: packet.state = r.pick(states.sorted())
            case .inInterface(let name, false): origin = .interface(name.isWildcard ? name.name + "~7" : name.name)
            case .addressType(.destination, .local, false):
                let locals = host.interfaces.flatMap(\.addresses).filter { $0.family == family }.map(\.address)
                if !locals.isEmpty { packet.destination = r.pick(locals) }
            default: break
            }
        }
        if packet.transport.hasPorts, packet.sourcePort == 0, r.chance(80) { packet.sourcePort = port(&r) }
        if packet.transport.hasPorts, packet.destinationPort == 0, r.chance(80) { packet.destinationPort = port(&r) }
        if hook == .output || (hook == .postrouting && r.chance(30)) { origin = .local }
        return (packet, origin)
    }
}
