import WeirModel
import WeirSimulator

/// A concrete host that makes one packet's host choices (`PacketSpace.HostChoices`), so that a
/// counterexample found on every possible host can be replayed by the simulator and printed
/// with its traces.
///
/// It has loopback and one interface per interface class (the class's representative name),
/// each with an address of its own first (what MASQUERADE takes); the packet's addresses and the
/// addresses NAT wrote are made local (on `lo`), routed out of the chosen interface (a /32 or
/// /128 route), or left without a route, as chosen; a broadcast choice becomes a connected
/// subnet whose last address it is; it forwards as chosen.
enum ChosenHost {
    /// The host for a packet whose choices are `assignment`'s, whose destination and source
    /// NAT rewrote to `destinations` and `sources` (by either side), and whose masqueraded
    /// source, where the difference depends on it, is `masquerade`.
    static func make(space: PacketSpace, packet: Packet, assignment: [Int: Bool],
                     destinations: [IPAddress], sources: [IPAddress], masquerade: IPAddress?) -> HostModel {
        let family = space.family
        let choices = space.hostChoices
        let loopbackClass = space.interfaceClass("lo")
        func bit(_ v: Int) -> Bool { assignment[v] == true }
        func value(_ f: PacketSpace.Field) -> Int { Int(f.value(in: assignment)) }
        let hostBits = family.bitWidth
        func single(_ address: IPAddress) -> Prefix { Prefix(address: address, length: hostBits) }
        let loopbackNet = Prefix("127.0.0.0/8")!
        func alwaysLocal(_ address: IPAddress) -> Bool { family == .ipv4 && loopbackNet.contains(address) }

        var local: [Prefix] = family == .ipv4 ? [Prefix("127.0.0.1/8")!] : []
        var addresses: [Int: [Prefix]] = [:]
        var routes: [HostModel.Route] = []
        var used = Set([packet.source, packet.destination] + destinations + sources + (masquerade.map { [$0] } ?? []))

        func route(_ address: IPAddress, _ c: Int, broadcast: Bool) {
            guard !alwaysLocal(address), c != 0 else { return }
            if c == loopbackClass {
                local.append(single(address))
                return
            }
            routes.append(HostModel.Route(destination: single(address), interface: space.representative(ofClass: c)))
            if broadcast && family == .ipv4 { addresses[c, default: []].append(subnet(lastAddress: address)) }
        }
        // A subnet whose last address is `address` (two or more host bits, all ones), with the
        // interface's address just before it.
        func subnet(lastAddress address: IPAddress) -> Prefix {
            var length = hostBits
            while length > 0 && (address.bits >> UInt128(hostBits - length)) & 1 == 1 { length -= 1 }
            return Prefix(address: IPAddress(family: family, bits: address.bits - 1), length: min(length, hostBits - 2))
        }

        route(packet.destination, value(choices.routeOfDestination), broadcast: bit(choices.destinationIsBroadcast))
        for written in choices.written where destinations.contains(written.address) || sources.contains(written.address) {
            route(written.address, value(written.route), broadcast: bit(written.isBroadcast))
        }
        if bit(choices.sourceIsLocal) && !alwaysLocal(packet.source) { local.append(single(packet.source)) }
        if bit(choices.sourceIsBroadcast) && family == .ipv4 {
            addresses[space.interfaces.count - 1, default: []].append(subnet(lastAddress: packet.source))
        }

        // Every other interface gets an address first, the one MASQUERADE takes (out of lo,
        // IPv4 takes the first interface's): the masqueraded source the difference needs, or a
        // fresh one.
        var next: UInt128 = 1
        func fresh() -> IPAddress {
            if let masquerade { return masquerade }
            let base = family == .ipv4 ? IPAddress("198.51.100.0")!.bits : IPAddress("2001:db8:ffff::")!.bits
            while used.contains(IPAddress(family: family, bits: base + next)) { next += 1 }
            let address = IPAddress(family: family, bits: base + next)
            used.insert(address)
            return address
        }
        var interfaces = [HostModel.Interface(name: "lo", addresses: local)]
        for c in 1..<space.interfaces.count where c != loopbackClass {
            interfaces.append(HostModel.Interface(name: space.representative(ofClass: c), addresses: [single(fresh())] + (addresses[c] ?? [])))
        }
        return HostModel(interfaces: interfaces, extraRoutes: routes, ipForward: bit(choices.forwards), bridgeNetfilter: true)
    }
}
