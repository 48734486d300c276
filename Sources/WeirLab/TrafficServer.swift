import Foundation
import WeirModel

/// A TCP or UDP server inside a network namespace, on a thread of its own that entered the
/// namespace. It records every connection (TCP) or datagram (UDP) with the peer address and
/// port it sees, and answers one line, `<reply> <peer>\n`, so the client learns what the server
/// saw too. It stops on `stop()`, when the value goes away, after `Limits.lifetime`, or after
/// `Limits.maxConnections`.
public final class TrafficServer: @unchecked Sendable {
    public struct Connection: Sendable, Equatable, CustomStringConvertible {
        /// The source address and port as the server sees them (after any NAT).
        public var peer: SocketEndpoint
        /// The local address and port the connection reached (after any DNAT); nil for UDP on a
        /// wildcard address.
        public var local: SocketEndpoint?
        /// The datagram's text (UDP); empty for TCP.
        public var received: String

        public var description: String { "\(peer) → \(local.map(String.init(describing:)) ?? "*")" }
    }

    public struct Limits: Sendable {
        /// Connections (or datagrams) recorded and answered before the server stops by itself.
        public var maxConnections: Int
        /// How long the server runs at most.
        public var lifetime: Duration

        public init(maxConnections: Int = 1024, lifetime: Duration = .seconds(300)) {
            self.maxConnections = max(1, maxConnections)
            self.lifetime = lifetime
        }
    }

    public let namespace: String
    public let transport: TransportProtocol
    /// The address and port the server is bound to (the port chosen by the kernel for port 0).
    public let endpoint: SocketEndpoint
    /// The first word of every answer.
    public let reply: String
    private let state: State

    /// Starts a server listening on `address:port` inside `namespace`; returns once it listens.
    public static func start(in namespace: String, transport: TransportProtocol = .tcp, port: UInt16,
                             address: IPAddress = .v4(0), reply: String = "weirlab",
                             limits: Limits = Limits()) throws -> TrafficServer {
        guard let type = SocketCall.socketType(transport) else {
            throw LabError.socketFailed(call: "socket(\(transport))", errno: EPROTONOSUPPORT)
        }
        let reply = String(reply.prefix(200).map { $0.isNewline ? " " : $0 })
        let state = State()
        let ready = DispatchSemaphore(value: 0)
        let started = ResultBox<Result<SocketEndpoint, LabError>>()
        let requested = SocketEndpoint(address, port)
        NamespaceThread.start(in: namespace, label: "weirlab-server") { error in
            if let error {
                started.set(.failure(error))
                ready.signal()
                state.finish()
                return
            }
            let fd = socket(requested.domain, type | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                started.set(.failure(.socketFailed(call: "socket", errno: errno)))
                ready.signal()
                state.finish()
                return
            }
            // shutdown() first: a child process being spawned elsewhere in this process may hold
            // a copy of the descriptor until its exec, and would keep the socket listening.
            defer { shutdown(fd, Int32(SHUT_RDWR)); close(fd); state.finish() }
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            if requested.domain == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
            }
            let bound = requested.withSockaddr { bind(fd, $0, $1) }
            guard bound == 0 else {
                started.set(.failure(.socketFailed(call: "bind(\(requested)) in \(namespace)", errno: errno)))
                ready.signal()
                return
            }
            if transport == .tcp, listen(fd, 128) != 0 {
                started.set(.failure(.socketFailed(call: "listen", errno: errno)))
                ready.signal()
                return
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let local = SocketEndpoint.of(fd, peer: false) ?? requested
            started.set(.success(local))
            ready.signal()
            Self.serve(fd, transport: transport, local: local, reply: reply, limits: limits, state: state)
        }
        guard ready.wait(timeout: .now() + 5) == .success, let outcome = started.get() else {
            state.requestStop()
            throw LabError.serverStartTimedOut(namespace: namespace)
        }
        switch outcome {
        case .success(let endpoint):
            return TrafficServer(namespace: namespace, transport: transport, endpoint: endpoint, reply: reply, state: state)
        case .failure(let error):
            _ = state.waitFinished(timeout: 2)
            throw error
        }
    }

    private init(namespace: String, transport: TransportProtocol, endpoint: SocketEndpoint, reply: String, state: State) {
        self.namespace = namespace
        self.transport = transport
        self.endpoint = endpoint
        self.reply = reply
        self.state = state
    }

    deinit { state.requestStop() }

    /// What the server has recorded so far.
    public var connections: [Connection] { state.connections }

    /// Whether the server still accepts.
    public var isRunning: Bool { !state.isFinished }

    /// Waits until at least `count` connections are recorded or `timeout` passes; returns them.
    public func waitForConnections(_ count: Int = 1, timeout: Duration = .seconds(1)) -> [Connection] {
        let deadline = ContinuousClock.now + timeout
        while state.connections.count < count, ContinuousClock.now < deadline, !state.isFinished {
            usleep(5_000)
        }
        return state.connections
    }

    /// Stops the server and waits (at most 2 s) for its thread to close the socket.
    public func stop() {
        state.requestStop()
        _ = state.waitFinished(timeout: 2)
    }

    private static func serve(_ fd: Int32, transport: TransportProtocol, local: SocketEndpoint, reply: String,
                              limits: Limits, state: State) {
        let deadline = ContinuousClock.now + limits.lifetime
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !state.stopRequested, state.connections.count < limits.maxConnections, ContinuousClock.now < deadline {
            let tick = min(deadline, ContinuousClock.now + .milliseconds(20))
            guard SocketCall.wait(fd, for: Int16(POLLIN), until: tick) & Int16(POLLIN) != 0 else { continue }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            if transport == .tcp {
                let client = withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { c_accept4(fd, $0, &length, SocketCall.flags) }
                }
                guard client >= 0 else { continue }
                defer { close(client) }
                guard let peer = SocketEndpoint(storage) else { continue }
                state.record(Connection(peer: peer, local: SocketEndpoint.of(client, peer: false), received: ""))
                let line = Array("\(reply) \(peer)\n".utf8)
                _ = line.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                shutdown(client, Int32(SHUT_WR))
            } else {
                let count = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &storage) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, &length)
                        }
                    }
                }
                guard count >= 0, let peer = SocketEndpoint(storage) else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                state.record(Connection(peer: peer, local: local.address.isUnspecified ? nil : local, received: text))
                let line = Array("\(reply) \(peer)\n".utf8)
                _ = peer.withSockaddr { address, size in
                    line.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), address, size) }
                }
            }
        }
    }

    /// What the server thread and its owners share.
    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var stop = false
        private var finished = false
        private var recorded: [Connection] = []
        private let done = DispatchSemaphore(value: 0)

        var stopRequested: Bool { lock.withLock { stop } }
        var isFinished: Bool { lock.withLock { finished } }
        var connections: [Connection] { lock.withLock { recorded } }

        func requestStop() { lock.withLock { stop = true } }
        func record(_ connection: Connection) { lock.withLock { recorded.append(connection) } }

        func finish() {
            lock.withLock { finished = true }
            done.signal()
        }

        func waitFinished(timeout: Double) -> Bool {
            if isFinished { return true }
            guard done.wait(timeout: .now() + timeout) == .success else { return false }
            done.signal()  // let later waiters through
            return true
        }
    }
}
