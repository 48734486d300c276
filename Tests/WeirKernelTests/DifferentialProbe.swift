import Foundation
import WeirLab
import WeirModel

// The kernel's side of the differential tests: a client that binds the flow's own source port
// (so every flow has a 5-tuple of its own and the nft trace can pick it out), the lab's servers
// listening on every port in every namespace, and what a flow is seen to do.

// MARK: Client

/// What the client saw.
struct DiffClientResult: Sendable, CustomStringConvertible {
    enum Outcome: String, Sendable { case connected, refused, unreachable, timedOut, failed }
    var outcome: Outcome
    var errorNumber: Int32? = nil
    /// The server's answer line (`<label> <peer it saw>`).
    var reply: String? = nil
    /// The client socket's address and port (once connect has picked the source).
    var local: SocketEndpoint? = nil
    var detail: String? = nil

    var description: String {
        var text = outcome.rawValue
        if let errorNumber { text += " (\(String(cString: strerror(errorNumber))))" }
        if let local { text += " from \(local)" }
        if let reply { text += ", answer \"\(reply)\"" }
        if let detail { text += " [\(detail)]" }
        return text
    }
}

/// A TCP connect or a UDP datagram with an answer awaited, from a socket bound to `port` inside
/// a namespace (the kernel picks the source address).
enum DifferentialClient {
    static func probe(from namespace: String, bind port: UInt16, to destination: SocketEndpoint, transport: TransportProtocol,
                      timeout: Duration, payload: String) -> DiffClientResult {
        do {
            return try NamespaceThread.run(in: namespace) {
                transport == .udp
                    ? udp(port, destination, timeout: timeout, payload: payload)
                    : tcp(port, destination, timeout: timeout)
            }
        } catch {
            return DiffClientResult(outcome: .failed, detail: "\(error)")
        }
    }

    static func classify(_ code: Int32) -> DiffClientResult.Outcome {
        switch code {
        case ECONNREFUSED: .refused
        case EHOSTUNREACH, ENETUNREACH: .unreachable
        case ETIMEDOUT: .timedOut
        default: .failed
        }
    }

    private static func open(_ type: Int32, _ port: UInt16, _ destination: SocketEndpoint) -> (Int32, DiffClientResult?) {
        let domain = destination.address.family == .ipv6 ? AF_INET6 : AF_INET
        let fd = socket(domain, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (fd, DiffClientResult(outcome: .failed, errorNumber: errno, detail: "socket")) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if domain == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) }
        let any = SocketEndpoint(SocketEndpoint.any(destination.address.family), port)
        guard withSockaddr(any, { bind(fd, $0, $1) }) == 0 else {
            return (fd, DiffClientResult(outcome: .failed, errorNumber: errno, detail: "bind \(any)"))
        }
        return (fd, nil)
    }

    private static func tcp(_ port: UInt16, _ destination: SocketEndpoint, timeout: Duration) -> DiffClientResult {
        let (fd, failure) = open(Int32(SOCK_STREAM.rawValue), port, destination)
        guard fd >= 0 else { return failure! }
        defer { close(fd) }
        if let failure { return failure }
        let deadline = ContinuousClock.now + timeout
        if withSockaddr(destination, { connect(fd, $0, $1) }) != 0 {
            let code = errno
            guard code == EINPROGRESS else { return DiffClientResult(outcome: classify(code), errorNumber: code, local: localEndpoint(fd)) }
            guard wait(fd, Int16(POLLOUT), until: deadline) != 0 else {
                return DiffClientResult(outcome: .timedOut, local: localEndpoint(fd))
            }
            var code2: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code2, &length)
            if code2 != 0 { return DiffClientResult(outcome: classify(code2), errorNumber: code2, local: localEndpoint(fd)) }
        }
        var result = DiffClientResult(outcome: .connected, local: localEndpoint(fd))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while received.count < 4096, !received.contains(UInt8(ascii: "\n")) {
            guard wait(fd, Int16(POLLIN), until: deadline) != 0 else { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 { received += buffer[0..<count]; continue }
            if count < 0, errno == EAGAIN || errno == EINTR { continue }
            break
        }
        if !received.isEmpty {
            result.reply = String(decoding: received, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
        }
        return result
    }

    private static func udp(_ port: UInt16, _ destination: SocketEndpoint, timeout: Duration, payload: String) -> DiffClientResult {
        let (fd, failure) = open(Int32(SOCK_DGRAM.rawValue), port, destination)
        guard fd >= 0 else { return failure! }
        defer { close(fd) }
        if let failure { return failure }
        guard withSockaddr(destination, { connect(fd, $0, $1) }) == 0 else {
            let code = errno
            return DiffClientResult(outcome: classify(code), errorNumber: code)
        }
        let local = localEndpoint(fd)
        let bytes = Array(payload.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) >= 0 else {
            let code = errno
            return DiffClientResult(outcome: classify(code), errorNumber: code, local: local)
        }
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            guard wait(fd, Int16(POLLIN), until: deadline) != 0 else { return DiffClientResult(outcome: .timedOut, local: local) }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 {
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                return DiffClientResult(outcome: .connected, reply: text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init),
                                        local: local)
            }
            let code = errno
            if code == EAGAIN || code == EINTR { continue }
            return DiffClientResult(outcome: classify(code), errorNumber: code, local: local)
        }
    }

    /// Waits for `events` until `deadline`; the returned events, or 0 on timeout.
    private static func wait(_ fd: Int32, _ events: Int16, until deadline: ContinuousClock.Instant) -> Int16 {
        while true {
            let left = deadline - ContinuousClock.now
            let (seconds, attoseconds) = left.components
            let milliseconds = left > .zero ? Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1) : 0
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return entry.revents }
            if ready == 0 { if milliseconds == 0 { return 0 } else { continue } }
            if errno != EINTR { return Int16(POLLERR) }
        }
    }

    static func localEndpoint(_ fd: Int32) -> SocketEndpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            let raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return SocketEndpoint(.v4(UInt32(bigEndian: raw.sin_addr.s_addr)), UInt16(bigEndian: raw.sin_port))
        case AF_INET6:
            let raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let bits = withUnsafeBytes(of: raw.sin6_addr) { bytes in bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
            return SocketEndpoint(.v6(bits), UInt16(bigEndian: raw.sin6_port))
        default:
            return nil
        }
    }

    static func withSockaddr<R>(_ endpoint: SocketEndpoint, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch endpoint.address {
        case .v4(let bits):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = endpoint.port.bigEndian
            raw.sin_addr = in_addr(s_addr: bits.bigEndian)
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bits):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { bytes in
                for i in 0..<16 { bytes[i] = UInt8(truncatingIfNeeded: bits >> UInt128(8 * (15 - i))) }
            }
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}

// MARK: Servers

/// The lab's servers: in every node's namespace, on every port of the run, TCP on the wildcard
/// address of each family the node has and UDP on each of its addresses (so the address a
/// datagram reached is the server's own), each answering `<node label> <peer it saw>`.
final class DiffServers: @unchecked Sendable {
    struct Entry {
        var node: Int
        var label: String
        var server: TrafficServer
    }

    let entries: [Entry]

    private init(entries: [Entry]) { self.entries = entries }

    static func start(_ lab: Lab, nodes: [DiffNode], namespaces: [String], ports: [UInt16]) throws -> DiffServers {
        var entries: [Entry] = []
        do {
            for (index, node) in nodes.enumerated() {
                let namespace = namespaces[index]
                let label = String(namespace.dropFirst(lab.id.namespacePrefix.count))
                for port in ports {
                    for family in node.families.sorted() {
                        let server = try lab.serve(in: namespace, transport: .tcp, port: port, address: SocketEndpoint.any(family), reply: label)
                        entries.append(Entry(node: index, label: label, server: server))
                    }
                    for address in node.addresses {
                        let server = try lab.serve(in: namespace, transport: .udp, port: port, address: address, reply: label)
                        entries.append(Entry(node: index, label: label, server: server))
                    }
                }
            }
        } catch {
            DiffServers(entries: entries).stopAll()
            throw error
        }
        return DiffServers(entries: entries)
    }

    /// Stops every server at once (one at a time costs a poll tick each).
    func stopAll() {
        _ = DifferentialThreads.map(entries.map(\.server), limit: max(1, entries.count)) { $0.stop() }
    }

    func label(ofNode node: Int) -> String? { entries.first { $0.node == node }?.label }

    /// The UDP server that received the datagram with this payload.
    func datagram(_ payload: String) -> (Entry, TrafficServer.Connection)? {
        for entry in entries where entry.server.transport == .udp {
            if let connection = entry.server.connections.first(where: { $0.received == payload }) { return (entry, connection) }
        }
        return nil
    }

    /// The TCP connection a node's server accepted from `peer`.
    func connection(label: String, peer: SocketEndpoint) -> (Entry, TrafficServer.Connection)? {
        for entry in entries where entry.server.transport == .tcp && entry.label == label {
            if let connection = entry.server.connections.first(where: { $0.peer == peer }) { return (entry, connection) }
        }
        return nil
    }

    /// Any TCP connection from a peer using this port (whatever address it came from).
    func connection(fromPort port: UInt16) -> (Entry, TrafficServer.Connection)? {
        for entry in entries where entry.server.transport == .tcp {
            if let connection = entry.server.connections.first(where: { $0.peer.port == port }) { return (entry, connection) }
        }
        return nil
    }
}

// MARK: Observations

/// What a flow did, as the kernel shows it or as the simulator predicts it.
enum DiffObservation: Equatable, CustomStringConvertible {
    /// A server in `receiver` got the connection (TCP) or datagram (UDP) from `source` on
    /// `destination` (the addresses it saw, after NAT); `answered`: the client got the answer.
    case delivered(receiver: String, source: SocketEndpoint, destination: SocketEndpoint, answered: Bool)
    /// `ECONNREFUSED`: a TCP RST or an ICMP port unreachable came back, and no server got it.
    case refused
    /// `EHOSTUNREACH`/`ENETUNREACH`: an ICMP host/net unreachable or prohibited came back.
    case unreachable
    /// Nothing came back before the timeout and no server got it.
    case silent
    /// Anything else (a connection without an answer, a local error), described.
    case other(String)

    var isDeliveredAndAnswered: Bool {
        if case .delivered(_, _, _, true) = self { return true }
        return false
    }

    /// A short name of the case, for tallies.
    var kind: String {
        switch self {
        case .delivered(_, _, _, true): "delivered"
        case .delivered(_, _, _, false): "delivered-unanswered"
        case .refused: "refused"
        case .unreachable: "unreachable"
        case .silent: "silent"
        case .other: "other"
        }
    }

    var description: String {
        switch self {
        case let .delivered(receiver, source, destination, answered):
            "delivered to \(receiver), which sees \(source) → \(destination); \(answered ? "answer reaches the client" : "answer lost")"
        case .refused: "refused (RST or ICMP port unreachable)"
        case .unreachable: "unreachable (ICMP host/net unreachable or prohibited)"
        case .silent: "silent (nothing delivered, nothing came back)"
        case .other(let text): text
        }
    }
}

extension DiffServers {
    /// The kernel's observation of a flow from the client's result and the servers' records.
    func observe(_ flow: DiffFlow, _ result: DiffClientResult, nodes: [DiffNode]) -> DiffObservation {
        func name(_ entry: Entry) -> String { nodes[entry.node].name }
        if flow.transport == .udp {
            if let (entry, connection) = datagram(flow.payload) {
                let answered = result.outcome == .connected && result.reply?.hasPrefix(entry.label + " ") == true
                return .delivered(receiver: name(entry), source: connection.peer, destination: entry.server.endpoint, answered: answered)
            }
            if result.outcome == .connected { return .other("answered (\(result)) although no server recorded the datagram") }
        } else {
            if result.outcome == .connected {
                guard let reply = result.reply, let space = reply.firstIndex(of: " "),
                      let peer = Self.endpoint(reply[reply.index(after: space)...]) else {
                    return .other("connected without an answer line (\(result))")
                }
                let label = String(reply[..<space])
                guard let (entry, connection) = connection(label: label, peer: peer), let local = connection.local else {
                    return .other("connected, answer \"\(reply)\", but no server of \(label) recorded \(peer)")
                }
                return .delivered(receiver: name(entry), source: connection.peer, destination: local, answered: true)
            }
            if let (entry, connection) = connection(fromPort: flow.sourceEndpoint.port) {
                return .other("\(name(entry)) accepted \(connection) but the client saw \(result)")
            }
        }
        switch result.outcome {
        case .refused: return .refused
        case .unreachable: return .unreachable
        case .timedOut: return .silent
        case .connected, .failed: return .other("client: \(result)")
        }
    }

    /// `10.0.3.122:20007` or `[fd00::1]:80`.
    static func endpoint(_ text: Substring) -> SocketEndpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return IPAddress(host).map { SocketEndpoint($0, port) }
    }
}
