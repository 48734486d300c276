import WeirModel

/// Netfilter packet traversal over a model ruleset on a host.
///
/// The flow is the kernel's: a received packet passes PREROUTING (raw, conntrack, mangle, nat),
/// the routing decision on its possibly rewritten destination, then INPUT or FORWARD, then
/// POSTROUTING; a locally sent packet is routed, passes OUTPUT and POSTROUTING, and comes back
/// in through loopback when it is for the host. On each hook every base chain runs in priority
/// order; `accept` ends only its own base chain, `drop` and `reject` are final. nat chains see
/// only the first packet of a connection (state NEW); later packets of a known flow get its
/// translation applied in reverse where the kernel does it.
public struct Simulator: Sendable {
    public let ruleset: Ruleset
    public let host: HostModel

    /// A base chain to run: its table and chain indices in `ruleset`.
    struct BaseChain: Sendable {
        var table: Int
        var chain: Int
        var priority: Int
        var isNAT: Bool
    }

    /// Base chains per family and hook, in priority order.
    private let hooks: [Family: [Hook: [BaseChain]]]
    /// Chain indices by name, per table.
    private let chainIndex: [[String: Int]]

    public init(ruleset: Ruleset, host: HostModel) {
        self.ruleset = ruleset
        self.host = host
        var hooks: [Family: [Hook: [BaseChain]]] = [:]
        var chainIndex: [[String: Int]] = []
        for (t, table) in ruleset.tables.enumerated() {
            var names: [String: Int] = [:]
            for (c, chain) in table.chains.enumerated() {
                names[chain.name] = c
                if case .base(let hook, let priority, _) = chain.kind {
                    hooks[table.family, default: [:]][hook, default: []]
                        .append(BaseChain(table: t, chain: c, priority: priority, isNAT: table.name == "nat"))
                }
            }
            chainIndex.append(names)
        }
        for (family, byHook) in hooks {
            for (hook, chains) in byHook {
                hooks[family]![hook] = chains.enumerated().sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element)
            }
        }
        self.hooks = hooks
        self.chainIndex = chainIndex
    }

    // MARK: Traversal

    /// The mutable state of one traversal.
    struct Walk {
        var packet: Packet
        var input: String?
        var output: String?
        var steps: [TraceStep] = []
        var recordSteps: Bool
        var dropped: String? = nil
        var translatedSource = false
        var translatedDestination = false
    }

    /// Simulates one packet. `flow` is the translation of the connection an established or
    /// related packet belongs to (its reply direction is un-NATed); nil for a new connection.
    public func simulate(_ packet: Packet, from origin: Origin, flow: Translation? = nil, trace: Bool = true) -> Traversal {
        var walk = Walk(packet: packet, recordSteps: trace)
        let original = packet
        switch origin {
        case .interface(let name):
            walk.input = name
            runHook(.prerouting, &walk)
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            if let flow { unNAT(&walk, flow, destinationSide: true) }
            guard let out = host.route(walk.packet.destination) else { return finish(walk, .unroutable, origin, original, exit: nil) }
            if out == "lo" {
                runHook(.input, &walk)
                if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
                return finish(walk, .deliveredLocally, origin, original, exit: "lo")
            }
            guard host.ipForward else { return finish(walk, .unroutable, origin, original, exit: nil) }
            if !host.bridgeNetfilter && out == name && isBridge(name) {
                return finish(walk, .forwarded(out), origin, original, exit: out)
            }
            walk.output = out
            runHook(.forward, &walk)
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            walk.input = nil
            runHook(.postrouting, &walk)
            if let flow { unNAT(&walk, flow, destinationSide: false) }
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            return finish(walk, .forwarded(out), origin, original, exit: out)
        case .local:
            guard let firstRoute = host.route(walk.packet.destination) else { return finish(walk, .unroutable, origin, original, exit: nil) }
            walk.output = firstRoute
            runHook(.output, &walk)
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            if let flow { unNAT(&walk, flow, destinationSide: true) }
            // A destination rewritten in OUTPUT is routed again before POSTROUTING.
            guard let out = host.route(walk.packet.destination) else { return finish(walk, .unroutable, origin, original, exit: nil) }
            walk.output = out
            runHook(.postrouting, &walk)
            if let flow { unNAT(&walk, flow, destinationSide: false) }
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            guard out == "lo" else { return finish(walk, .sent(out), origin, original, exit: out) }
            // Back in through loopback; its NAT is already set up, so nat chains are skipped.
            walk.input = "lo"
            walk.output = nil
            runHook(.prerouting, &walk, natDone: true)
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            runHook(.input, &walk, natDone: true)
            if let location = walk.dropped { return finish(walk, .dropped(at: location), origin, original, exit: nil) }
            return finish(walk, .deliveredLocally, origin, original, exit: "lo")
        }
    }

    /// The reply to a packet that got through: addresses and ports swapped, state ESTABLISHED,
    /// entering where the original left (or from the local process it was delivered to).
    public func reply(to traversal: Traversal, trace: Bool = true) -> Traversal? {
        let delivered = traversal.packet
        let reply = Packet(source: delivered.destination, destination: delivered.source, transport: delivered.transport,
                           sourcePort: delivered.destinationPort, destinationPort: delivered.sourcePort, state: .established)
        let origin: Origin
        switch traversal.outcome {
        case .deliveredLocally: origin = .local
        case .forwarded(let out), .sent(let out): origin = .interface(out)
        default: return nil
        }
        let flow = traversal.translation ?? Translation(original: traversal.packet, translated: traversal.packet)
        return simulate(reply, from: origin, flow: flow, trace: trace)
    }

    /// Reverse NAT for a reply: the destination side (a SNATed source) before routing, the
    /// source side (a DNATed destination) in POSTROUTING.
    private func unNAT(_ walk: inout Walk, _ flow: Translation, destinationSide: Bool) {
        if destinationSide {
            if walk.packet.destination == flow.translated.source, walk.packet.destinationPort == flow.translated.sourcePort {
                walk.packet.destination = flow.original.source
                walk.packet.destinationPort = flow.original.sourcePort
            }
        } else {
            if walk.packet.source == flow.translated.destination, walk.packet.sourcePort == flow.translated.destinationPort {
                walk.packet.source = flow.original.destination
                walk.packet.sourcePort = flow.original.destinationPort
            }
        }
    }

    private func isBridge(_ name: String) -> Bool {
        host.interfaces.contains { $0.name == name } && name != "lo"
    }

    private func finish(_ walk: Walk, _ outcome: Outcome, _ origin: Origin, _ original: Packet, exit: String?) -> Traversal {
        let translated = walk.packet.source != original.source || walk.packet.destination != original.destination
            || walk.packet.sourcePort != original.sourcePort || walk.packet.destinationPort != original.destinationPort
        return Traversal(steps: walk.steps, outcome: outcome, packet: walk.packet, exitInterface: exit, origin: origin,
                         translation: translated ? Translation(original: original, translated: walk.packet) : nil)
    }

    private func runHook(_ hook: Hook, _ walk: inout Walk, natDone: Bool = false) {
        guard let chains = hooks[walk.packet.family]?[hook] else { return }
        for base in chains {
            if base.isNAT && (walk.packet.state != .new || natDone) { continue }
            runBaseChain(base, hook, &walk)
            if walk.dropped != nil { return }
        }
    }

    /// Runs one base chain: rules in order, jumps, gotos and returns, then the policy.
    private func runBaseChain(_ base: BaseChain, _ hook: Hook, _ walk: inout Walk) {
        let table = ruleset.tables[base.table]
        var stack: [(chain: Int, rule: Int)] = []
        var chainIndex = base.chain
        var ruleIndex = 0
        while true {
            let chain = table.chains[chainIndex]
            let rules = chain.rules
            var jumped = false
            while ruleIndex < rules.count {
                let rule = rules[ruleIndex]
                guard matches(rule, walk) else { ruleIndex += 1; continue }
                let unconditional = rule.matches.isEmpty && isStandard(rule.target)
                let kind: TraceStep.Kind = unconditional ? (chainIndex == base.chain ? .policy : .return) : .rule
                record(&walk, table, chain, kind, ruleIndex + 1)
                switch rule.target {
                case .accept:
                    return
                case .drop, .reject:
                    walk.dropped = "\(table.name):\(chain.name):\(kind.rawValue):\(ruleIndex + 1)"
                    return
                case .return:
                    guard let frame = stack.popLast() else {
                        policy(table, base, &walk)
                        return
                    }
                    chainIndex = frame.chain
                    ruleIndex = frame.rule + 1
                    jumped = true
                case .jump(let name), .goto(let name):
                    guard let target = self.chainIndex[base.table][name] else { ruleIndex += 1; continue }
                    if case .jump = rule.target { stack.append((chainIndex, ruleIndex)) }
                    chainIndex = target
                    ruleIndex = 0
                    jumped = true
                case .dnat(let to):
                    guard base.isNAT else { ruleIndex += 1; continue }
                    walk.packet.destination = to.address
                    if let ports = to.ports { walk.packet.destinationPort = ports.first }
                    return
                case .snat(let to):
                    guard base.isNAT else { ruleIndex += 1; continue }
                    walk.packet.source = to.address
                    if let ports = to.ports { walk.packet.sourcePort = ports.first }
                    return
                case .masquerade(let ports):
                    guard base.isNAT, let out = walk.output, let address = host.primaryAddress(of: out, family: walk.packet.family) else {
                        walk.dropped = "\(table.name):\(chain.name):\(kind.rawValue):\(ruleIndex + 1)"
                        return
                    }
                    walk.packet.source = address
                    if let ports { walk.packet.sourcePort = ports.first }
                    return
                case .log, .checksumFill:
                    ruleIndex += 1
                }
                if jumped { break }
            }
            if jumped { continue }
            // Fell off the end of the chain.
            if chainIndex == base.chain && stack.isEmpty {
                policy(table, base, &walk)
                return
            }
            record(&walk, table, chain, .return, rules.count + 1)
            guard let frame = stack.popLast() else {
                // Fell off a chain entered by goto from the base chain: the base chain's policy.
                policy(table, base, &walk)
                return
            }
            chainIndex = frame.chain
            ruleIndex = frame.rule + 1
        }
    }

    private func policy(_ table: Table, _ base: BaseChain, _ walk: inout Walk) {
        let chain = table.chains[base.chain]
        record(&walk, table, chain, .policy, chain.rules.count + 1)
        if chain.policy == .drop {
            walk.dropped = "\(table.name):\(chain.name):policy:\(chain.rules.count + 1)"
        }
    }

    private func isStandard(_ target: Target) -> Bool {
        switch target {
        case .accept, .drop, .return: true
        default: false
        }
    }

    private func record(_ walk: inout Walk, _ table: Table, _ chain: Chain, _ kind: TraceStep.Kind, _ number: Int) {
        guard walk.recordSteps else { return }
        walk.steps.append(TraceStep(table: table.name, chain: chain.name, kind: kind, number: number,
                                    input: walk.input, output: walk.output, packet: walk.packet))
    }

    // MARK: Matching

    func matches(_ rule: Rule, _ walk: Walk) -> Bool {
        let packet = walk.packet
        for match in rule.matches {
            let holds: Bool
            let negated: Bool
            switch match {
            case let .inInterface(name, n):
                holds = walk.input.map(name.matchesInterface) ?? false
                negated = n
            case let .outInterface(name, n):
                holds = walk.output.map(name.matchesInterface) ?? false
                negated = n
            case let .address(direction, prefix, n):
                holds = prefix.contains(direction == .source ? packet.source : packet.destination)
                negated = n
            case let .protocol(transport, n):
                holds = packet.transport == transport
                negated = n
            case let .port(direction, range, n):
                guard packet.transport.hasPorts else { return false }
                holds = range.contains(direction == .source ? packet.sourcePort : packet.destinationPort)
                negated = n
            case let .conntrackState(states, n):
                holds = states.contains(packet.state)
                negated = n
            case let .addressType(direction, type, n):
                holds = host.addressType(of: direction == .source ? packet.source : packet.destination) == type
                negated = n
            case .comment:
                continue
            }
            if holds == negated { return false }
        }
        return true
    }
}

extension InterfaceName {
    /// Whether the interface `name` matches this pattern (`eth+` matches every `eth…`).
    func matchesInterface(_ name: String) -> Bool {
        isWildcard ? name.hasPrefix(self.name) : name == self.name
    }
}
