import Foundation
import Testing
import WeirModel
import WeirSimulator

/// Every traversal rule of the simulator, each on a small hand-made ruleset (or the seed policy)
/// with the exact steps (`table:chain:kind:N IN=… OUT=…`) and the final outcome.
@Suite struct SimulatorTraversalTests {
    typealias F = SimulatorFixtures

    /// eth0 → docker0: 10.0.0.2 → 172.17.0.2:80.
    static let forwarded = F.packet("10.0.0.2", "172.17.0.2")

    func simulate(_ tables: [Table], _ packet: Packet = forwarded, from origin: Origin = .interface("eth0"),
                  host: HostModel = F.host) -> Traversal {
        let traversal = Simulator(ruleset: Ruleset(tables: tables), host: host).simulate(packet, from: origin)
        // The reference evaluator agrees on every hand-made case, and tracing changes nothing else.
        let reference = ReferenceSimulator(ruleset: Ruleset(tables: tables), host: host).simulate(packet, from: origin)
        #expect(ReferenceSimulator.shape(traversal) == reference)
        let quiet = Simulator(ruleset: Ruleset(tables: tables), host: host).simulate(packet, from: origin, trace: false)
        #expect(quiet.steps.isEmpty && quiet.outcome == traversal.outcome && quiet.packet == traversal.packet)
        return traversal
    }

    /// Only the filter table, with FORWARD (policy `policy`) and user chains.
    func forward(policy: ChainPolicy = .accept, _ rules: [Rule], _ chains: [Chain] = []) -> Traversal {
        simulate([F.table("filter", .ipv4, [F.base(.forward, in: "filter", policy: policy, rules)] + chains)])
    }

    static let allTables = [F.table("nat"), F.table("filter"), F.table("raw"), F.table("mangle")]

    // MARK: Hooks and base chains

    @Test("a forwarded packet: every table's base chains in priority order (raw -300, mangle -150, nat -100, filter 0, nat 100)")
    func hookOrderForward() {
        let t = simulate(Self.allTables)
        #expect(t.lines == [
            "raw:PREROUTING:policy:1 IN=eth0 OUT=",
            "mangle:PREROUTING:policy:1 IN=eth0 OUT=",
            "nat:PREROUTING:policy:1 IN=eth0 OUT=",
            "mangle:FORWARD:policy:1 IN=eth0 OUT=docker0",
            "filter:FORWARD:policy:1 IN=eth0 OUT=docker0",
            "mangle:POSTROUTING:policy:1 IN= OUT=docker0",
            "nat:POSTROUTING:policy:1 IN= OUT=docker0",
        ])
        #expect(t.outcome == .forwarded("docker0"))
        #expect(t.exitInterface == "docker0")
        #expect(t.translation == nil)
    }

    @Test("a packet for the host: INPUT runs mangle (-150), filter (0), then nat (100)")
    func hookOrderInput() {
        let t = simulate(Self.allTables, F.packet("10.0.0.2", "10.0.0.1", dport: 22))
        #expect(t.locations == [
            "raw:PREROUTING:policy:1", "mangle:PREROUTING:policy:1", "nat:PREROUTING:policy:1",
            "mangle:INPUT:policy:1", "filter:INPUT:policy:1", "nat:INPUT:policy:1",
        ])
        #expect(t.outcome == .deliveredLocally)
        #expect(t.exitInterface == "lo")
    }

    @Test("a locally sent packet: OUTPUT runs raw, mangle, nat (-100) before filter (0), then POSTROUTING")
    func hookOrderOutput() {
        let t = simulate(Self.allTables, F.packet("10.0.0.1", "10.0.0.2"), from: .local)
        #expect(t.lines == [
            "raw:OUTPUT:policy:1 IN= OUT=eth0", "mangle:OUTPUT:policy:1 IN= OUT=eth0", "nat:OUTPUT:policy:1 IN= OUT=eth0",
            "filter:OUTPUT:policy:1 IN= OUT=eth0", "mangle:POSTROUTING:policy:1 IN= OUT=eth0", "nat:POSTROUTING:policy:1 IN= OUT=eth0",
        ])
        #expect(t.outcome == .sent("eth0"))
    }

    @Test("a drop in a later base chain of the hook still drops after an accept in an earlier one")
    func dropAfterAccept() {
        let t = simulate([
            F.table("mangle", .ipv4, [F.base(.forward, in: "mangle", [F.rule(F.tcp, target: .accept)])]),
            F.table("filter", .ipv4, [F.base(.forward, in: "filter", [F.rule(F.tcp, target: .drop)])]),
        ])
        #expect(t.locations == ["mangle:PREROUTING:policy:1", "mangle:FORWARD:rule:1", "filter:FORWARD:rule:1"])
        #expect(t.outcome == .dropped(at: "filter:FORWARD:rule:1"))
        #expect(t.exitInterface == nil)
    }

    @Test("an accept ends only its own base chain (also from a user chain); the next base chain runs")
    func acceptEndsOwnChain() {
        let t = simulate([
            F.table("mangle", .ipv4, [F.base(.forward, in: "mangle", [F.rule(target: .jump("MARKS")), F.rule(target: .log(prefix: nil, level: nil))]),
                                      F.user("MARKS", [F.rule(F.tcp, target: .accept)])]),
            F.table("filter", .ipv4, [F.base(.forward, in: "filter", [F.rule(F.tcp, target: .log(prefix: "x", level: 4))])]),
        ])
        #expect(t.locations == [
            "mangle:PREROUTING:policy:1", "mangle:FORWARD:rule:1", "mangle:MARKS:rule:1",
            "filter:FORWARD:rule:1", "filter:FORWARD:policy:2", "mangle:POSTROUTING:policy:1",
        ])
        #expect(t.outcome == .forwarded("docker0"))
    }

    @Test("IPv6 packets run the ip6 tables only, IPv4 packets the ip tables only")
    func families() {
        let tables = [F.table("filter", .ipv4, [F.base(.forward, in: "filter", [F.rule(target: .drop)])]),
                      F.table("filter", .ipv6, [F.base(.forward, in: "filter", [F.rule(F.tcp, target: .log(prefix: nil, level: nil))])])]
        let v6 = simulate(tables, F.packet("fd00::2", "fd00:17::2"))
        #expect(v6.lines == ["filter:FORWARD:rule:1 IN=eth0 OUT=docker0", "filter:FORWARD:policy:2 IN=eth0 OUT=docker0"])
        #expect(v6.outcome == .forwarded("docker0"))
        #expect(simulate(tables).outcome == .dropped(at: "filter:FORWARD:policy:1"))
    }

    // MARK: nat

    static let dnatTables = [
        F.table("nat", .ipv4, [F.base(.prerouting, in: "nat", [F.rule(F.tcp, F.dport(80), target: .dnat(F.to("172.17.0.2", 8080)))])]),
        F.table("filter"),
    ]

    @Test("nat chains see only a connection's first packet: NEW is DNATed and routed to FORWARD")
    func natNew() {
        let t = simulate(Self.dnatTables, F.packet("10.0.0.2", "10.0.0.1"))
        #expect(t.lines == [
            "nat:PREROUTING:rule:1 IN=eth0 OUT=", "filter:FORWARD:policy:1 IN=eth0 OUT=docker0", "nat:POSTROUTING:policy:1 IN= OUT=docker0",
        ])
        #expect(t.steps[1].packet.destination == IPAddress("172.17.0.2") && t.steps[1].packet.destinationPort == 8080)
        #expect(t.outcome == .forwarded("docker0"))
        #expect(t.translation?.original == F.packet("10.0.0.2", "10.0.0.1"))
        #expect(t.translation?.translated == F.packet("10.0.0.2", "172.17.0.2", dport: 8080))
    }

    @Test("ESTABLISHED (and RELATED, INVALID) packets skip the nat chains: not DNATed, delivered locally")
    func natSkippedWhenNotNew() {
        for state in [ConntrackState.established, .related, .invalid] {
            let t = simulate(Self.dnatTables, F.packet("10.0.0.2", "10.0.0.1", state: state))
            #expect(t.locations == ["filter:INPUT:policy:1"], "\(state)")
            #expect(t.outcome == .deliveredLocally)
            #expect(t.translation == nil)
        }
    }

    @Test("the routing decision follows DNAT: to a local address → INPUT, to a container → FORWARD")
    func routingAfterDNAT() {
        let toLocal = [F.table("nat", .ipv4, [F.base(.prerouting, in: "nat", [F.rule(F.dst("203.0.113.5/32"), target: .dnat(F.to("10.0.0.1")))])]),
                       F.table("filter")]
        let local = simulate(toLocal, F.packet("10.0.0.2", "203.0.113.5"))
        #expect(local.lines == ["nat:PREROUTING:rule:1 IN=eth0 OUT=", "filter:INPUT:policy:1 IN=eth0 OUT=", "nat:INPUT:policy:1 IN=eth0 OUT="])
        #expect(local.outcome == .deliveredLocally)
        #expect(local.packet == F.packet("10.0.0.2", "10.0.0.1"), "no port given: the port is kept")
        let undnatted = simulate(toLocal, F.packet("10.0.0.2", "203.0.113.6"))
        #expect(undnatted.lines == ["nat:PREROUTING:policy:2 IN=eth0 OUT=", "filter:FORWARD:policy:1 IN=eth0 OUT=eth0", "nat:POSTROUTING:policy:1 IN= OUT=eth0"])
        #expect(undnatted.outcome == .forwarded("eth0"))
    }

    @Test("SNAT rewrites the source and port; MASQUERADE takes the out interface's address (and --to-ports)")
    func snatAndMasquerade() {
        let snat = simulate([F.table("nat", .ipv4, [F.base(.postrouting, in: "nat", [
            F.rule(F.oif("docker0"), F.udp, target: .snat(F.to("172.17.0.9", 5000))),
            F.rule(F.oif("docker0"), target: .masquerade(ports: PortRange(6000, 6010))),
        ])])])
        #expect(snat.locations == ["nat:PREROUTING:policy:1", "nat:POSTROUTING:rule:2"])
        #expect(snat.packet == F.packet("172.17.0.1", "172.17.0.2", sport: 6000))
        let udp = simulate([F.table("nat", .ipv4, [F.base(.postrouting, in: "nat", [
            F.rule(F.oif("docker0"), F.udp, target: .snat(F.to("172.17.0.9", 5000))),
        ])])], F.packet("10.0.0.2", "172.17.0.2", .udp, dport: 53))
        #expect(udp.packet == F.packet("172.17.0.9", "172.17.0.2", .udp, sport: 5000, dport: 53))
        #expect(udp.outcome == .forwarded("docker0"))
    }

    @Test("MASQUERADE out an interface without an address drops the packet")
    func masqueradeWithoutAddress() {
        var host = F.host
        host.interfaces.append(.init(name: "wg0", addresses: []))
        host.extraRoutes.insert(.init(destination: Prefix("192.168.99.0/24")!, interface: "wg0"), at: 0)
        let t = simulate([F.table("nat", .ipv4, [F.base(.postrouting, in: "nat", [F.rule(F.oif("wg+"), target: .masquerade(ports: nil))])])],
                         F.packet("172.17.0.2", "192.168.99.5"), from: .interface("docker0"), host: host)
        #expect(t.lines == ["nat:PREROUTING:policy:1 IN=docker0 OUT=", "nat:POSTROUTING:rule:1 IN= OUT=wg0"])
        #expect(t.outcome == .dropped(at: "nat:POSTROUTING:rule:1"))
    }

    @Test("the seed policy: a container's connection out is masqueraded to enp0s8's address")
    func seedMasquerade() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let packet = F.packet("172.17.0.3", "8.8.8.8", .udp, dport: 53)
        let t = Simulator(ruleset: ruleset, host: host).simulate(packet, from: .interface("docker0"))
        #expect(t.lines == [
            "nat:PREROUTING:policy:2 IN=docker0 OUT=",
            "filter:FORWARD:rule:1 IN=docker0 OUT=enp0s8", "filter:DOCKER-USER:return:1 IN=docker0 OUT=enp0s8",
            "filter:FORWARD:rule:2 IN=docker0 OUT=enp0s8", "filter:DOCKER-ISOLATION-STAGE-1:rule:1 IN=docker0 OUT=enp0s8",
            "filter:DOCKER-ISOLATION-STAGE-2:return:2 IN=docker0 OUT=enp0s8", "filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=docker0 OUT=enp0s8",
            "filter:FORWARD:rule:5 IN=docker0 OUT=enp0s8", "nat:POSTROUTING:rule:1 IN= OUT=enp0s8",
        ])
        #expect(t.outcome == .forwarded("enp0s8"))
        #expect(t.packet == F.packet("10.0.3.121", "8.8.8.8", .udp, dport: 53))
        #expect(t.steps.last?.packet.source == IPAddress("172.17.0.3"), "a step shows the packet as the rule saw it")
    }

    // MARK: addrtype

    @Test("addrtype LOCAL is every address of the host (and all of 127.0.0.0/8); BROADCAST, MULTICAST, UNSPEC")
    func addressTypes() throws {
        let (_, host) = try F.policy("docker-default.weir")
        for address in ["10.0.3.121", "172.17.0.1", "127.0.0.1", "127.1.2.3"] { #expect(host.addressType(of: IPAddress(address)!) == .local, "\(address)") }
        #expect(host.addressType(of: IPAddress("172.17.0.2")!) == .unicast)
        #expect(host.addressType(of: IPAddress("10.0.3.255")!) == .broadcast)
        #expect(host.addressType(of: IPAddress("255.255.255.255")!) == .broadcast)
        #expect(host.addressType(of: IPAddress("224.0.0.1")!) == .multicast)
        #expect(host.addressType(of: IPAddress("0.0.0.0")!) == .unspec)
    }

    @Test("nat PREROUTING's --dst-type LOCAL catches a published port on any host address, not a routed one")
    func addrtypePrerouting() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let gateway = simulator.simulate(F.packet("10.0.3.122", "172.17.0.1", dport: 10080), from: .interface("enp0s8"))
        #expect(Array(gateway.locations.prefix(2)) == ["nat:PREROUTING:rule:1", "nat:DOCKER:rule:2"])
        #expect(gateway.outcome == .forwarded("docker0"))
        #expect(gateway.packet.destination == IPAddress("172.17.0.2") && gateway.packet.destinationPort == 80)
        let routed = simulator.simulate(F.packet("10.0.3.122", "192.0.2.1", dport: 10080), from: .interface("enp0s8"))
        #expect(routed.locations.first == "nat:PREROUTING:policy:2")
        #expect(routed.translation == nil)
    }

    @Test("nat OUTPUT's `! -d 127.0.0.0/8 --dst-type LOCAL`: 127.0.0.1 is left to the proxy, a host address is DNATed")
    func addrtypeOutput() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let loopback = simulator.simulate(F.packet("127.0.0.1", "127.0.0.1", dport: 10080), from: .local)
        #expect(loopback.lines == [
            "nat:OUTPUT:policy:2 IN= OUT=lo", "filter:OUTPUT:policy:1 IN= OUT=lo", "nat:POSTROUTING:policy:3 IN= OUT=lo",
            "filter:INPUT:policy:1 IN=lo OUT=",
        ])
        #expect(loopback.outcome == .deliveredLocally)
        let hostAddress = simulator.simulate(F.packet("10.0.3.121", "10.0.3.121", dport: 10080), from: .local)
        #expect(hostAddress.lines == [
            "nat:OUTPUT:rule:1 IN= OUT=lo", "nat:DOCKER:rule:2 IN= OUT=lo", "filter:OUTPUT:policy:1 IN= OUT=lo",
            "nat:POSTROUTING:policy:3 IN= OUT=docker0",
        ])
        #expect(hostAddress.outcome == .sent("docker0"))
        #expect(hostAddress.packet == F.packet("10.0.3.121", "172.17.0.2", dport: 80))
    }

    // MARK: Chains: jump, goto, return, policies

    @Test("jump, and falling off a user chain: `return:N+1`, then the caller's next rule")
    func jumpFallThrough() {
        let t = forward([F.rule(target: .jump("A")), F.rule(F.tcp, target: .log(prefix: nil, level: nil))],
                        [F.user("A", [F.rule(F.udp, target: .drop)])])
        #expect(t.lines == ["filter:FORWARD:rule:1 IN=eth0 OUT=docker0", "filter:A:return:2 IN=eth0 OUT=docker0",
                            "filter:FORWARD:rule:2 IN=eth0 OUT=docker0", "filter:FORWARD:policy:3 IN=eth0 OUT=docker0"])
        #expect(t.outcome == .forwarded("docker0"))
    }

    @Test("a conditional RETURN is a `rule` step and continues after the jump")
    func conditionalReturn() {
        let t = forward([F.rule(target: .jump("A")), F.rule(F.tcp, target: .log(prefix: nil, level: nil))],
                        [F.user("A", [F.rule(F.tcp, target: .return), F.rule(target: .drop)])])
        #expect(t.locations == ["filter:FORWARD:rule:1", "filter:A:rule:1", "filter:FORWARD:rule:2", "filter:FORWARD:policy:3"])
    }

    @Test("unconditional ACCEPT/DROP/RETURN rules print as `return` in user chains (the kernel's tail test)")
    func unconditionalInUserChain() {
        let ret = forward([F.rule(target: .jump("A"))], [F.user("A", [F.rule(F.tcp, target: .log(prefix: nil, level: nil)), F.rule(target: .return)])])
        #expect(ret.locations == ["filter:FORWARD:rule:1", "filter:A:rule:1", "filter:A:return:2", "filter:FORWARD:policy:2"])
        let accept = forward(policy: .drop, [F.rule(target: .jump("A"))], [F.user("A", [F.rule(target: .accept)])])
        #expect(accept.locations == ["filter:FORWARD:rule:1", "filter:A:return:1"])
        #expect(accept.outcome == .forwarded("docker0"))
        let drop = forward([F.rule(target: .jump("A"))], [F.user("A", [F.rule(target: .drop)])])
        #expect(drop.locations == ["filter:FORWARD:rule:1", "filter:A:return:1"])
        #expect(drop.outcome == .dropped(at: "filter:A:return:1"))
    }

    @Test("unconditional ACCEPT/DROP rules print as `policy` in base chains; a comment makes a rule conditional")
    func unconditionalInBaseChain() {
        let drop = forward([F.rule(F.tcp, target: .log(prefix: nil, level: nil)), F.rule(target: .drop)])
        #expect(drop.locations == ["filter:FORWARD:rule:1", "filter:FORWARD:policy:2"])
        #expect(drop.outcome == .dropped(at: "filter:FORWARD:policy:2"))
        let accept = forward(policy: .drop, [F.rule(target: .accept)])
        #expect(accept.locations == ["filter:FORWARD:policy:1"])
        #expect(accept.outcome == .forwarded("docker0"))
        let commented = forward([F.rule(.comment("deny"), target: .drop)])
        #expect(commented.locations == ["filter:FORWARD:rule:1"])
        #expect(commented.outcome == .dropped(at: "filter:FORWARD:rule:1"))
        let nonStandard = forward([F.rule(target: .reject(with: nil))])
        #expect(nonStandard.outcome == .dropped(at: "filter:FORWARD:rule:1"), "REJECT is a target of its own, not a standard verdict")
    }

    @Test("RETURN in a base chain applies its policy (one more `policy` line)")
    func returnInBaseChain() {
        let conditional = forward(policy: .drop, [F.rule(F.tcp, target: .return), F.rule(target: .accept)])
        #expect(conditional.locations == ["filter:FORWARD:rule:1", "filter:FORWARD:policy:3"])
        #expect(conditional.outcome == .dropped(at: "filter:FORWARD:policy:3"))
        let unconditional = forward([F.rule(target: .return), F.rule(target: .drop)])
        #expect(unconditional.locations == ["filter:FORWARD:policy:1", "filter:FORWARD:policy:3"])
        #expect(unconditional.outcome == .forwarded("docker0"))
    }

    @Test("goto: falling off the target returns from the chain that did the goto (from a base chain: its policy)")
    func gotoFallOff() {
        let fromBase = forward(policy: .drop, [F.rule(F.tcp, target: .goto("A")), F.rule(target: .accept)],
                               [F.user("A", [F.rule(F.udp, target: .accept)])])
        #expect(fromBase.locations == ["filter:FORWARD:rule:1", "filter:A:return:2", "filter:FORWARD:policy:3"])
        #expect(fromBase.outcome == .dropped(at: "filter:FORWARD:policy:3"))

        let fromUser = forward([F.rule(target: .jump("A")), F.rule(F.tcp, target: .log(prefix: nil, level: nil))],
                               [F.user("A", [F.rule(target: .goto("B")), F.rule(target: .drop)]), F.user("B", [F.rule(F.udp, target: .drop)])])
        #expect(fromUser.locations == ["filter:FORWARD:rule:1", "filter:A:rule:1", "filter:B:return:2",
                                       "filter:FORWARD:rule:2", "filter:FORWARD:policy:3"])
        #expect(fromUser.outcome == .forwarded("docker0"))

        let returnAfterGoto = forward(policy: .drop, [F.rule(target: .goto("A")), F.rule(target: .accept)],
                                      [F.user("A", [F.rule(F.tcp, target: .return)])])
        #expect(returnAfterGoto.locations == ["filter:FORWARD:rule:1", "filter:A:rule:1", "filter:FORWARD:policy:3"])
        #expect(returnAfterGoto.outcome == .dropped(at: "filter:FORWARD:policy:3"))
    }

    @Test("nested jumps resume each caller after its jump")
    func nestedJumps() {
        let t = forward(policy: .drop, [F.rule(target: .jump("A")), F.rule(target: .drop)],
                        [F.user("A", [F.rule(target: .jump("B")), F.rule(F.tcp, target: .accept)]), F.user("B", [F.rule(target: .jump("C"))]),
                         F.user("C")])
        #expect(t.locations == ["filter:FORWARD:rule:1", "filter:A:rule:1", "filter:B:rule:1", "filter:C:return:1",
                                "filter:B:return:2", "filter:A:rule:2"])
        #expect(t.outcome == .forwarded("docker0"))
    }

    @Test("LOG is not terminal; DROP and REJECT end the traversal at their step")
    func logDropReject() {
        let logged = forward([F.rule(F.tcp, target: .log(prefix: "a: ", level: 4)), F.rule(F.tcp, target: .log(prefix: "b: ", level: 4))])
        #expect(logged.locations == ["filter:FORWARD:rule:1", "filter:FORWARD:rule:2", "filter:FORWARD:policy:3"])
        #expect(logged.outcome == .forwarded("docker0"))
        let rejected = forward([F.rule(F.tcp, target: .log(prefix: nil, level: nil)), F.rule(F.tcp, target: .reject(with: "tcp-reset")),
                                F.rule(target: .accept)])
        #expect(rejected.locations == ["filter:FORWARD:rule:1", "filter:FORWARD:rule:2"])
        #expect(rejected.outcome == .dropped(at: "filter:FORWARD:rule:2"))
        #expect(rejected.exitInterface == nil)
        #expect(Simulator(ruleset: Ruleset(tables: [F.table("filter", .ipv4, [F.base(.forward, in: "filter", [F.rule(F.tcp, target: .reject(with: nil))])])]),
                          host: F.host).reply(to: rejected) == nil, "a dropped packet has no reply")
    }

    @Test("a jump or goto loop (the kernel refuses to load one) ends in a drop instead of hanging")
    func loops() {
        let jumps = forward([F.rule(target: .jump("A"))], [F.user("A", [F.rule(target: .jump("A"))])])
        #expect(jumps.outcome == .dropped(at: "filter:A:rule:1"))
        let gotos = forward([F.rule(target: .goto("A"))], [F.user("A", [F.rule(target: .goto("B"))]), F.user("B", [F.rule(target: .goto("A"))])])
        guard case .dropped = gotos.outcome else { Issue.record("\(gotos.outcome)"); return }
    }

    // MARK: Local processes

    @Test("local → local: OUTPUT and POSTROUTING out lo, then back in through lo (PREROUTING, INPUT) without nat")
    func localToLocal() {
        let t = simulate(Self.allTables, F.packet("127.0.0.1", "127.0.0.1", dport: 631), from: .local)
        #expect(t.lines == [
            "raw:OUTPUT:policy:1 IN= OUT=lo", "mangle:OUTPUT:policy:1 IN= OUT=lo", "nat:OUTPUT:policy:1 IN= OUT=lo",
            "filter:OUTPUT:policy:1 IN= OUT=lo", "mangle:POSTROUTING:policy:1 IN= OUT=lo", "nat:POSTROUTING:policy:1 IN= OUT=lo",
            "raw:PREROUTING:policy:1 IN=lo OUT=", "mangle:PREROUTING:policy:1 IN=lo OUT=",
            "mangle:INPUT:policy:1 IN=lo OUT=", "filter:INPUT:policy:1 IN=lo OUT=",
        ])
        #expect(t.outcome == .deliveredLocally)
    }

    @Test("local → container: OUTPUT and POSTROUTING out docker0, sent")
    func localToContainer() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let t = Simulator(ruleset: ruleset, host: host).simulate(F.packet("172.17.0.1", "172.17.0.2"), from: .local)
        #expect(t.lines == ["nat:OUTPUT:policy:2 IN= OUT=docker0", "filter:OUTPUT:policy:1 IN= OUT=docker0", "nat:POSTROUTING:policy:3 IN= OUT=docker0"])
        #expect(t.outcome == .sent("docker0"))
        #expect(t.exitInterface == "docker0")
    }

    @Test("a DNAT in nat OUTPUT: the rest of OUTPUT keeps the first route's OUT=lo, POSTROUTING sees the new route")
    func localRerouted() {
        let t = simulate([F.table("nat", .ipv4, [F.base(.output, in: "nat", [F.rule(F.dst("127.0.0.0/8"), F.tcp, F.dport(8080), target: .dnat(F.to("172.17.0.2", 80)))])]),
                          F.table("filter")], F.packet("127.0.0.1", "127.0.0.1", dport: 8080), from: .local)
        #expect(t.lines == ["nat:OUTPUT:rule:1 IN= OUT=lo", "filter:OUTPUT:policy:1 IN= OUT=lo", "nat:POSTROUTING:policy:1 IN= OUT=docker0"])
        #expect(t.outcome == .sent("docker0"))
    }

    @Test("no route: unroutable after PREROUTING; from a local process before any chain")
    func noRoute() {
        let host = HostModel(interfaces: [.init(name: "eth0", addresses: [Prefix("10.0.0.1/24")!])])
        let routed = simulate(Self.allTables, F.packet("10.0.0.2", "192.0.2.1"), host: host)
        #expect(routed.locations == ["raw:PREROUTING:policy:1", "mangle:PREROUTING:policy:1", "nat:PREROUTING:policy:1"])
        #expect(routed.outcome == .unroutable)
        let local = simulate(Self.allTables, F.packet("10.0.0.1", "192.0.2.1"), from: .local, host: host)
        #expect(local.steps.isEmpty && local.outcome == .unroutable)
    }

    @Test("ip_forward off: routed packets are unroutable after PREROUTING, packets for the host still arrive")
    func ipForwardOff() {
        var host = F.host
        host.ipForward = false
        let routed = simulate(Self.dnatTables, F.packet("10.0.0.2", "10.0.0.1"), host: host)
        #expect(routed.locations == ["nat:PREROUTING:rule:1"])
        #expect(routed.outcome == .unroutable)
        let local = simulate(Self.dnatTables, F.packet("10.0.0.2", "10.0.0.1", dport: 22), host: host)
        #expect(local.outcome == .deliveredLocally)
    }

    // MARK: Bridged traffic

    static let bridgedSteps = [
        "nat:PREROUTING:policy:2 IN=docker0 OUT=",
        "filter:FORWARD:rule:1 IN=docker0 OUT=docker0", "filter:DOCKER-USER:return:1 IN=docker0 OUT=docker0",
        "filter:FORWARD:rule:2 IN=docker0 OUT=docker0", "filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=docker0 OUT=docker0",
        "filter:FORWARD:rule:4 IN=docker0 OUT=docker0", "filter:DOCKER:return:2 IN=docker0 OUT=docker0",
        "filter:FORWARD:rule:6 IN=docker0 OUT=docker0", "nat:POSTROUTING:policy:3 IN= OUT=docker0",
    ]

    @Test("br_netfilter on: container → container on docker0 passes FORWARD as -i docker0 -o docker0, whatever ip_forward says")
    func bridgedWithBridgeNetfilter() throws {
        let (ruleset, seedHost) = try F.policy("docker-default.weir")
        for forwarding in [true, false] {
            var host = seedHost
            host.ipForward = forwarding
            let t = Simulator(ruleset: ruleset, host: host).simulate(F.packet("172.17.0.3", "172.17.0.2"), from: .interface("docker0"))
            #expect(t.lines == Self.bridgedSteps, "ip_forward \(forwarding)")
            #expect(t.outcome == .forwarded("docker0"))
        }
    }

    @Test("br_netfilter off: bridged frames pass no chain at all")
    func bridgedWithoutBridgeNetfilter() throws {
        var (ruleset, host) = try F.policy("docker-default.weir")
        host.bridgeNetfilter = false
        let t = Simulator(ruleset: ruleset, host: host).simulate(F.packet("172.17.0.3", "172.17.0.2"), from: .interface("docker0"))
        #expect(t.steps.isEmpty)
        #expect(t.outcome == .forwarded("docker0"))
        #expect(t.translation == nil)
        _ = ruleset
    }

    @Test("hairpin NAT (userland-proxy off) is routed, not bridged: FORWARD runs even with br_netfilter off")
    func hairpin() throws {
        var (ruleset, host) = try F.policy("classic-s7-no-userland-proxy.weir")
        let expected = [
            "nat:PREROUTING:rule:1 IN=docker0 OUT=", "nat:DOCKER:rule:1 IN=docker0 OUT=",
            "filter:FORWARD:rule:1 IN=docker0 OUT=docker0", "filter:DOCKER-USER:return:1 IN=docker0 OUT=docker0",
            "filter:FORWARD:rule:2 IN=docker0 OUT=docker0", "filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=docker0 OUT=docker0",
            "filter:FORWARD:rule:4 IN=docker0 OUT=docker0", "filter:DOCKER:return:2 IN=docker0 OUT=docker0",
            "filter:FORWARD:rule:6 IN=docker0 OUT=docker0", "nat:POSTROUTING:rule:3 IN= OUT=docker0",
        ]
        for bridgeNetfilter in [true, false] {
            host.bridgeNetfilter = bridgeNetfilter
            let simulator = Simulator(ruleset: ruleset, host: host)
            let t = simulator.simulate(F.packet("172.17.0.2", "10.0.3.121", dport: 10080), from: .interface("docker0"))
            #expect(t.lines == expected, "br_netfilter \(bridgeNetfilter)")
            #expect(t.outcome == .forwarded("docker0"))
            #expect(t.packet == F.packet("172.17.0.1", "172.17.0.2", dport: 80))
            // The reply comes back un-NATed both ways: from the published address to the client.
            let reply = try #require(simulator.reply(to: t))
            #expect(reply.lines.last == "filter:FORWARD:rule:3 IN=docker0 OUT=docker0")
            #expect(reply.outcome == .forwarded("docker0"))
            #expect(reply.packet == F.packet("10.0.3.121", "172.17.0.2", sport: 10080, dport: 40000, state: .established))
        }
    }

    // MARK: Replies

    @Test("the reply of a DNATed connection leaves with the public address and port as its source")
    func replyOfDNAT() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let request = simulator.simulate(F.packet("10.0.3.122", "10.0.3.121", dport: 10080), from: .interface("enp0s8"))
        let reply = try #require(simulator.reply(to: request))
        #expect(reply.origin == .interface("docker0"))
        #expect(reply.lines == [
            "filter:FORWARD:rule:1 IN=docker0 OUT=enp0s8", "filter:DOCKER-USER:return:1 IN=docker0 OUT=enp0s8",
            "filter:FORWARD:rule:2 IN=docker0 OUT=enp0s8", "filter:DOCKER-ISOLATION-STAGE-1:rule:1 IN=docker0 OUT=enp0s8",
            "filter:DOCKER-ISOLATION-STAGE-2:return:2 IN=docker0 OUT=enp0s8", "filter:DOCKER-ISOLATION-STAGE-1:return:2 IN=docker0 OUT=enp0s8",
            "filter:FORWARD:rule:5 IN=docker0 OUT=enp0s8",
        ], "ESTABLISHED: no nat chain")
        #expect(reply.steps.first?.packet == F.packet("172.17.0.2", "10.0.3.122", sport: 80, dport: 40000, state: .established))
        #expect(reply.outcome == .forwarded("enp0s8"))
        #expect(reply.packet == F.packet("10.0.3.121", "10.0.3.122", sport: 10080, dport: 40000, state: .established))
        let trace = try #require(simulator.reply(to: request, trace: false))
        #expect(trace.steps.isEmpty && trace.packet == reply.packet)
    }

    @Test("the reply of a masqueraded connection is delivered to the original source")
    func replyOfMasquerade() throws {
        let (ruleset, host) = try F.policy("docker-default.weir")
        let simulator = Simulator(ruleset: ruleset, host: host)
        let request = simulator.simulate(F.packet("172.17.0.3", "8.8.8.8", .udp, sport: 5353, dport: 53), from: .interface("docker0"))
        #expect(request.packet.source == IPAddress("10.0.3.121"))
        let reply = try #require(simulator.reply(to: request))
        #expect(reply.origin == .interface("enp0s8"))
        #expect(reply.steps.first?.packet == F.packet("8.8.8.8", "172.17.0.3", .udp, sport: 53, dport: 5353, state: .established),
                "un-NATed before routing: FORWARD already sees the container")
        #expect(reply.locations.last == "filter:FORWARD:rule:3", "-o docker0 --ctstate RELATED,ESTABLISHED")
        #expect(reply.outcome == .forwarded("docker0"))
        #expect(reply.packet == F.packet("8.8.8.8", "172.17.0.3", .udp, sport: 53, dport: 5353, state: .established))
    }

    @Test("a local reply is un-NATed at nat OUTPUT's priority: filter OUTPUT already sees the original client")
    func localReplyUnNATedBeforeFilterOutput() throws {
        // nat INPUT rewrites the client's source; the reply to it is un-NATed in OUTPUT (-100),
        // before filter OUTPUT (0), so a rule there that names the rewritten address never sees it.
        let tables = [
            F.table("nat", .ipv4, [F.base(.input, in: "nat", [F.rule(F.src("10.0.0.2/32"), target: .snat(F.to("10.9.9.9")))])]),
            F.table("filter", .ipv4, [F.base(.output, in: "filter", [F.rule(F.dst("10.9.9.9/32"), target: .drop)])]),
        ]
        let simulator = Simulator(ruleset: Ruleset(tables: tables), host: F.host)
        let request = simulator.simulate(F.packet("10.0.0.2", "10.0.0.1", dport: 22), from: .interface("eth0"))
        #expect(request.outcome == .deliveredLocally)
        #expect(request.packet.source == IPAddress("10.9.9.9"))
        let reply = try #require(simulator.reply(to: request))
        #expect(reply.lines == ["filter:OUTPUT:policy:2 IN= OUT=eth0"], "ESTABLISHED: no nat chain")
        #expect(reply.steps.first?.packet.destination == IPAddress("10.0.0.2"))
        #expect(reply.outcome == .sent("eth0"))
        let oracle = ReferenceSimulator(ruleset: Ruleset(tables: tables), host: F.host)
        #expect(oracle.reply(to: ReferenceSimulator.shape(request)) == ReferenceSimulator.shape(reply))
    }
}
