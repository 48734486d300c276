import WeirModel

/// Netfilter packet traversal over a model ruleset on a host.
///
/// The flow is the kernel's: a received packet passes PREROUTING (raw, conntrack, mangle, nat),
/// the routing decision on its possibly rewritten destination, then INPUT or FORWARD, then
/// POSTROUTING; a locally sent packet is routed, passes OUTPUT and POSTROUTING, and comes back
/// in through loopback when it is for the host. On each hook every base chain runs in priority
/// order; `accept` ends only its own base chain, `drop` and `reject` are final. nat chains see
/// only the first packet of a connection (state NEW); later packets of a known flow get its
/// translation applied in reverse where the kernel does it (the destination at nat's priority
/// -100 in PREROUTING/OUTPUT, the source at the end of POSTROUTING, or of INPUT for a reply
/// delivered locally). A packet that arrives on a
/// bridge for an address behind that same bridge is bridged, not routed: it passes PREROUTING,
/// FORWARD (`-i br -o br`) and POSTROUTING only with `HostModel.bridgeNetfilter`.
///
/// `init` compiles the ruleset once (see `SimulatorProgram`): interfaces become small integers,
/// prefixes integer masks, rules flat arrays, and chains of many rules get an index of the rules
/// that need one exact key (protocol and destination port, destination address, interface,
/// source or destination prefix), so a packet only ever looks at the rules that can match it,
/// in rule order. With `trace: false` a traversal builds no string and allocates nothing on its
/// way; its result shares the precompiled names.
public struct Simulator: Sendable {
    public let ruleset: Ruleset
    public let host: HostModel
    let program: SimulatorProgram

    public init(ruleset: Ruleset, host: HostModel) {
        self.ruleset = ruleset
        self.host = host
        self.program = SimulatorProgram(ruleset: ruleset, host: host)
    }

    // MARK: Traversal

    /// Simulates one packet. `flow` is the translation of the connection an established or
    /// related packet belongs to (its reply direction is un-NATed); nil for a new connection.
    public func simulate(_ packet: Packet, from origin: Origin, flow: Translation? = nil, trace: Bool = true) -> Traversal {
        var walk = Walk(packet: packet, trace: trace)
        let (outcome, exit) = traverse(packet, origin, flow, &walk)
        let q = walk.packet
        let translated = q.source != packet.source || q.destination != packet.destination
            || q.sourcePort != packet.sourcePort || q.destinationPort != packet.destinationPort
        return Traversal(steps: walk.steps, outcome: outcome, packet: q, exitInterface: exit, origin: origin,
                         translation: translated ? Translation(original: packet, translated: q) : nil)
    }

    /// The hooks and routing decisions of one packet: its outcome and the interface it left by.
    private func traverse(_ packet: Packet, _ origin: Origin, _ flow: Translation?, _ walk: inout Walk) -> (Outcome, String?) {
        let p = program
        switch origin {
        case .interface(let name):
            let input = p.interfaceID(name)
            walk.input = input
            if input == SimulatorProgram.unknownInterface { walk.unknownInput = name }
            // A frame for another port of the bridge it arrived on is bridged, not routed: decided
            // on the destination it arrived with (a DNAT back out of the same bridge is routed).
            let bridged = input >= 0 && p.isBridge[Int(input)] && p.route(packet.destination) == input
            if bridged && !p.bridgeNetfilter { return (.forwarded(name), name) }
            runHook(.prerouting, &walk, deNAT: flow)
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            let out = p.route(walk.packet.destination)
            guard out >= 0 else { return (.unroutable, nil) }
            if out == p.loopback {
                runHook(.input, &walk)
                // Differential-test fix: a reply delivered locally is un-DNATed as well (nat INPUT
                // does the source manipulation), e.g. the answer to host → 10.0.3.121:10080.
                if let flow { walk.unNATSource(flow) }
                if let at = walk.dropped { return (.dropped(at: at), nil) }
                return (.deliveredLocally, "lo")
            }
            guard p.ipForward || (bridged && out == input) else { return (.unroutable, nil) }
            walk.output = out
            runHook(.forward, &walk)
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            walk.input = SimulatorProgram.noInterface
            walk.unknownInput = nil
            runHook(.postrouting, &walk)
            if let flow { walk.unNATSource(flow) }
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            return (.forwarded(p.names[Int(out)]), p.names[Int(out)])
        case .local:
            let first = p.route(walk.packet.destination)
            guard first >= 0 else { return (.unroutable, nil) }
            walk.output = first
            runHook(.output, &walk, deNAT: flow)
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            // A destination rewritten in OUTPUT is routed again before POSTROUTING.
            let out = p.route(walk.packet.destination)
            guard out >= 0 else { return (.unroutable, nil) }
            walk.output = out
            runHook(.postrouting, &walk)
            if let flow { walk.unNATSource(flow) }
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            guard out == p.loopback else { return (.sent(p.names[Int(out)]), p.names[Int(out)]) }
            // Back in through loopback; its NAT is already set up, so nat chains are skipped.
            walk.input = p.loopback
            walk.output = SimulatorProgram.noInterface
            runHook(.prerouting, &walk, natDone: true)
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            runHook(.input, &walk, natDone: true)
            if let at = walk.dropped { return (.dropped(at: at), nil) }
            return (.deliveredLocally, "lo")
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

    /// The mutable state of one traversal.
    struct Walk {
        var packet: Packet {
            didSet { fields.load(packet) }
        }
        /// The packet's header fields and interfaces as the matches compare them.
        var fields: Fields
        /// Interface ids (`SimulatorProgram.noInterface` when none).
        var input: Int32 {
            get { fields.input }
            set { fields.input = newValue }
        }
        var output: Int32 {
            get { fields.output }
            set { fields.output = newValue }
        }
        /// The name of an input interface the host does not have (its id is `unknownInterface`).
        var unknownInput: String? = nil
        let trace: Bool
        var steps: [TraceStep] = []
        var dropped: String? = nil
        var gotos = 0

        init(packet: Packet, trace: Bool) {
            self.packet = packet
            var fields = Fields()
            fields.load(packet)
            self.fields = fields
            self.trace = trace
        }

        /// Plain data only, so matching never copies anything that is reference counted.
        struct Fields {
            var source: UInt128 = 0
            var destination: UInt128 = 0
            var isIPv6 = false
            var transport: UInt8 = 0
            var hasPorts = false
            var sourcePort: UInt16 = 0
            var destinationPort: UInt16 = 0
            var state: UInt8 = 0
            var input = SimulatorProgram.noInterface
            var output = SimulatorProgram.noInterface

            mutating func load(_ p: Packet) {
                source = p.source.bits
                destination = p.destination.bits
                isIPv6 = p.family == .ipv6
                transport = p.transport.number
                hasPorts = p.transport.hasPorts
                sourcePort = p.sourcePort
                destinationPort = p.destinationPort
                state = SimulatorProgram.stateBit(p.state)
            }
        }

        /// Reverse NAT for a reply, destination side (a SNATed source): at nat's priority in
        /// PREROUTING and OUTPUT.
        mutating func unNATDestination(_ flow: Translation) {
            if packet.destination == flow.translated.source, packet.destinationPort == flow.translated.sourcePort {
                packet.destination = flow.original.source
                packet.destinationPort = flow.original.sourcePort
            }
        }

        /// Reverse NAT for a reply, source side (a DNATed destination): after POSTROUTING, or
        /// after INPUT for a reply delivered locally.
        mutating func unNATSource(_ flow: Translation) {
            if packet.source == flow.translated.destination, packet.sourcePort == flow.translated.destinationPort {
                packet.source = flow.original.destination
                packet.sourcePort = flow.original.destinationPort
            }
        }
    }

    /// The priority of nat's destination hooks (`NF_IP_PRI_NAT_DST`), where replies are un-NATed.
    static let natDestinationPriority = -100

    private func runHook(_ hook: Hook, _ walk: inout Walk, natDone: Bool = false, deNAT: Translation? = nil) {
        let p = program
        let range = p.hookRange(walk.packet.family, hook)
        var pending = deNAT
        for i in range {
            let base = p.bases[i]
            if let flow = pending, base.priority > Self.natDestinationPriority {
                walk.unNATDestination(flow)
                pending = nil
            }
            if base.isNAT && (walk.fields.state != SimulatorProgram.newBit || natDone) { continue }
            _ = run(base.chain, base: base.chain, depth: 0, &walk)
            if walk.dropped != nil { return }
        }
        if let flow = pending { walk.unNATDestination(flow) }
    }

    /// Runs `start` (entered at jump depth `depth` of the base chain `base`): rules in order,
    /// jumps by recursion, gotos in place. Returns true when the base chain is finished (a
    /// verdict, a NAT, a drop, or its policy), false when control returns to the caller.
    private func run(_ start: Int32, base: Int32, depth: Int, _ walk: inout Walk) -> Bool {
        let p = program
        var chain = start
        var candidates = Candidates()
        candidates.reset(p, chain, walk.fields)
        while true {
            let r = candidates.next(p.lists)
            if r < 0 {
                // Fell off the end of the chain.
                if chain == base && depth == 0 { return policy(base, &walk) }
                record(&walk, chain, .return, p.chains[Int(chain)].ruleCount + 1)
                if depth == 0 { return policy(base, &walk) }  // off a chain the base chain went to by goto
                return false
            }
            let rule = p.rules[Int(r)]
            guard p.matches(rule, walk.fields, walk.unknownInput) else { continue }
            let kind: TraceStep.Kind = rule.unconditional ? (chain == base ? .policy : .return) : .rule
            if walk.trace { record(&walk, chain, kind, Int(r - p.chains[Int(chain)].ruleStart) + 1) }
            switch rule.target {
            case .accept:
                return true
            case .drop:
                walk.dropped = p.location(ofRule: r, chain: chain, kind: kind)
                return true
            case .return:
                return depth == 0 ? policy(base, &walk) : false
            case .jump(let target):
                // The kernel's jump stack holds one entry per chain of the table (a loop, which
                // it refuses to load, would overflow it): a drop.
                guard depth < p.chains[Int(chain)].tableChainCount else {
                    walk.dropped = p.location(ofRule: r, chain: chain, kind: kind)
                    return true
                }
                if run(target, base: base, depth: depth + 1, &walk) { return true }
            case .goto(let target):
                // A loop of gotos never overflows the stack: stop after 65,536 of them.
                walk.gotos += 1
                guard walk.gotos <= 1 << 16 else {
                    walk.dropped = p.location(ofRule: r, chain: chain, kind: kind)
                    return true
                }
                chain = target
                candidates.reset(p, chain, walk.fields)
            case .continue:
                continue
            case .dnat(let address, let port):
                walk.packet.destination = address
                if port >= 0 { walk.packet.destinationPort = UInt16(port) }
                return true
            case .snat(let address, let port):
                walk.packet.source = address
                if port >= 0 { walk.packet.sourcePort = UInt16(port) }
                return true
            case .masquerade(let port):
                guard walk.output >= 0, let address = masqueradeSource(walk.output, walk.packet) else {
                    walk.dropped = p.location(ofRule: r, chain: chain, kind: kind)
                    return true
                }
                walk.packet.source = address
                if port >= 0 { walk.packet.sourcePort = UInt16(port) }
                return true
            }
        }
    }

    /// The base chain's policy: a `policy:N+1` step, and a drop when it is DROP.
    private func policy(_ base: Int32, _ walk: inout Walk) -> Bool {
        let chain = program.chains[Int(base)]
        record(&walk, base, .policy, chain.ruleCount + 1)
        if chain.policyDrops { walk.dropped = program.policyLocations[Int(base)] }
        return true
    }

    private func record(_ walk: inout Walk, _ chain: Int32, _ kind: TraceStep.Kind, _ number: Int) {
        guard walk.trace else { return }
        let p = program
        walk.steps.append(TraceStep(table: p.tableNames[Int(chain)], chain: p.chainNames[Int(chain)], kind: kind, number: number,
                                    input: p.name(walk.input, unknown: walk.unknownInput), output: p.name(walk.output, unknown: nil),
                                    packet: walk.packet))
    }

    // MARK: Candidate rules

    /// The rules of a chain a packet can match, in rule order: the whole chain, or for an
    /// indexed chain the merge of the index buckets for the packet's keys and the unkeyed rules.
    struct Candidates {
        var linear: Int32 = 0
        var linearEnd: Int32 = 0
        var heads = InlineArray<8, Int32>(repeating: 0)
        var ends = InlineArray<8, Int32>(repeating: 0)
        var count = 0

        /// Set up in place (not returned by value: that copy stalls on the scalar stores).
        mutating func reset(_ p: SimulatorProgram, _ chain: Int32, _ f: Walk.Fields) {
            let c = p.chains[Int(chain)]
            count = 0
            guard c.index >= 0 else {
                linear = c.ruleStart
                linearEnd = c.ruleStart + Int32(c.ruleCount)
                return
            }
            linear = 0
            linearEnd = 0
            let index = p.indexes[Int(c.index)]
            add(index.unkeyed)
            if f.hasPorts {
                let port = UInt32(f.transport) << 16 | UInt32(f.destinationPort)
                if !index.byPortAndDestination.isEmpty {
                    add(index.byPortAndDestination[SimulatorProgram.PortAddressKey(port: port, address: f.destination)])
                }
                if !index.byPort.isEmpty { add(index.byPort[port]) }
            }
            if !index.byDestination.isEmpty { add(index.byDestination[f.destination]) }
            if !index.byInput.isEmpty, f.input >= 0 { add(index.byInput[Int(f.input)]) }
            if !index.byOutput.isEmpty, f.output >= 0 { add(index.byOutput[Int(f.output)]) }
            if let prefixes = index.bySourcePrefix { add(prefixes.buckets[f.source & prefixes.mask]) }
            if let prefixes = index.byDestinationPrefix { add(prefixes.buckets[f.destination & prefixes.mask]) }
        }

        private mutating func add(_ bucket: SimulatorProgram.Bucket?) {
            guard let bucket, bucket.start < bucket.end else { return }
            heads[count] = bucket.start
            ends[count] = bucket.end
            count += 1
        }

        /// The next candidate's global rule index, or -1.
        mutating func next(_ lists: UnsafeMutableBufferPointer<Int32>) -> Int32 {
            if count == 0 {
                guard linear < linearEnd else { return -1 }
                defer { linear += 1 }
                return linear
            }
            var best = Int32.max
            var bestList = -1
            for i in 0..<count where heads[i] < ends[i] {
                let rule = lists[Int(heads[i])]
                if rule < best { best = rule; bestList = i }
            }
            guard bestList >= 0 else { return -1 }
            heads[bestList] += 1
            return best
        }
    }
}

// MARK: Differential-test fixes (kept apart from the traversal; see Tests/WeirKernelTests/DifferentialTests.swift)

extension Simulator {
    /// The source address MASQUERADE writes for a packet leaving by interface `out`, as the kernel
    /// picks it. Only a packet that leaves by loopback (one for the host's own address, such as
    /// host 172.17.0.1 → 172.17.0.1, which Docker's `-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`
    /// matches) differs from `out`'s first address: IPv4's `inet_select_addr(lo, daddr,
    /// RT_SCOPE_UNIVERSE)` skips loopback's host-scope 127.0.0.1 and takes the first address of
    /// another interface, in interface order (10.0.3.121); IPv6's `ipv6_dev_get_saddr` prefers the
    /// destination itself (RFC 6724 rule 1), which is the host's.
    func masqueradeSource(_ out: Int32, _ packet: Packet) -> IPAddress? {
        guard out == program.loopback else { return program.primaryAddress(out, packet.family) }
        if packet.family == .ipv6 { return packet.destination }
        let loopback = Prefix("127.0.0.0/8")!
        for interface in host.interfaces {
            if let prefix = interface.addresses.first(where: { $0.family == .ipv4 && !loopback.contains($0.address) }) {
                return prefix.address
            }
        }
        return nil
    }
}
