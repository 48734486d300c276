import Foundation
import WeirModel

/// What one probe found.
public struct ProbeResult: Sendable, CustomStringConvertible {
    public enum Outcome: String, Sendable, Equatable {
        /// TCP: the handshake completed. UDP: an answer came back.
        case connected
        /// TCP RST or ICMP port unreachable (`ECONNREFUSED`).
        case refused
        /// Nothing came back within the timeout (a DROP somewhere).
        case timedOut
        /// ICMP host or network unreachable, or no route (`EHOSTUNREACH`, `ENETUNREACH`).
        case unreachable
        /// Something else; see `errorNumber`.
        case failed
    }

    public var outcome: Outcome
    /// The `errno` behind `refused`, `unreachable` and `failed`.
    public var errorNumber: Int32?
    /// The server's answer line without its newline (nil when none arrived in time).
    public var reply: String?
    /// The client socket's own address and port.
    public var local: SocketEndpoint?
    public var elapsed: Duration

    public var description: String {
        var text = outcome.rawValue
        if let errorNumber { text += " (\(String(cString: strerror(errorNumber))))" }
        if let local { text += " from \(local)" }
        if let reply { text += ", reply \"\(reply)\"" }
        return text + " in \(elapsed)"
    }
}

/// Connects from inside a namespace, on a thread of its own that entered it.
public enum TrafficClient {
    /// The longest timeout a probe accepts.
    public static let maximumTimeout: Duration = .seconds(30)

    /// TCP: a non-blocking connect, polled for at most `timeout`, then up to `timeout` more for
    /// the server's line. UDP: sends `payload` and waits up to `timeout` for an answer.
    public static func probe(from namespace: String, to destination: SocketEndpoint, transport: TransportProtocol = .tcp,
                             timeout: Duration = .seconds(1), payload: String = "weirlab probe\n") -> ProbeResult {
        let box = ResultBox<ProbeResult>()
        let done = DispatchSemaphore(value: 0)
        start(namespace, destination, transport, timeout, payload) { result in
            box.set(result)
            done.signal()
        }
        done.wait()
        return box.take()!
    }

    /// The same without blocking a Swift concurrency thread.
    public static func probe(from namespace: String, to destination: SocketEndpoint, transport: TransportProtocol = .tcp,
                             timeout: Duration = .seconds(1), payload: String = "weirlab probe\n") async -> ProbeResult {
        await withCheckedContinuation { continuation in
            start(namespace, destination, transport, timeout, payload) { continuation.resume(returning: $0) }
        }
    }

    private static func start(_ namespace: String, _ destination: SocketEndpoint, _ transport: TransportProtocol,
                              _ timeout: Duration, _ payload: String, _ finish: @escaping @Sendable (ProbeResult) -> Void) {
        let timeout = min(max(timeout, .milliseconds(1)), maximumTimeout)
        let begin = ContinuousClock.now
        NamespaceThread.start(in: namespace, label: "weirlab-client") { error in
            if let error {
                let code: Int32 = if case .enterFailed(_, let code) = error { code } else { EINVAL }
                finish(ProbeResult(outcome: .failed, errorNumber: code, elapsed: ContinuousClock.now - begin))
                return
            }
            var result = transport == .udp
                ? udp(destination, timeout: timeout, payload: payload)
                : tcp(destination, transport: transport, timeout: timeout)
            result.elapsed = ContinuousClock.now - begin
            finish(result)
        }
    }

    static func classify(_ code: Int32) -> ProbeResult.Outcome {
        switch code {
        case ECONNREFUSED: .refused
        case EHOSTUNREACH, ENETUNREACH: .unreachable
        case ETIMEDOUT: .timedOut
        default: .failed
        }
    }

    private static func failure(_ code: Int32) -> ProbeResult {
        ProbeResult(outcome: classify(code), errorNumber: code == ETIMEDOUT ? nil : code, elapsed: .zero)
    }

    private static func tcp(_ destination: SocketEndpoint, transport: TransportProtocol, timeout: Duration) -> ProbeResult {
        guard let type = SocketCall.socketType(transport) else { return failure(EPROTONOSUPPORT) }
        let fd = socket(destination.domain, type | SocketCall.flags, 0)
        guard fd >= 0 else { return failure(errno) }
        defer { close(fd) }
        let connectDeadline = ContinuousClock.now + timeout
        let status = destination.withSockaddr { connect(fd, $0, $1) }
        if status != 0 {
            guard errno == EINPROGRESS else { return failure(errno) }
            let events = SocketCall.wait(fd, for: Int16(POLLOUT), until: connectDeadline)
            guard events != 0 else { return ProbeResult(outcome: .timedOut, elapsed: .zero) }
            let code = SocketCall.socketError(fd)
            guard code == 0 else { return failure(code) }
        }
        var result = ProbeResult(outcome: .connected, local: SocketEndpoint.of(fd, peer: false), elapsed: .zero)
        // Read the server's line until a newline, end of stream, or the deadline.
        let readDeadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while received.count < 4096, !received.contains(UInt8(ascii: "\n")) {
            guard SocketCall.wait(fd, for: Int16(POLLIN), until: readDeadline) != 0 else { break }
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

    private static func udp(_ destination: SocketEndpoint, timeout: Duration, payload: String) -> ProbeResult {
        let fd = socket(destination.domain, Int32(SOCK_DGRAM.rawValue) | SocketCall.flags, 0)
        guard fd >= 0 else { return failure(errno) }
        defer { close(fd) }
        guard destination.withSockaddr({ connect(fd, $0, $1) }) == 0 else { return failure(errno) }
        let bytes = Array(payload.prefix(1024).utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent >= 0 else { return failure(errno) }
        let local = SocketEndpoint.of(fd, peer: false)
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            guard SocketCall.wait(fd, for: Int16(POLLIN), until: deadline) != 0 else {
                return ProbeResult(outcome: .timedOut, local: local, elapsed: .zero)
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 {
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                return ProbeResult(outcome: .connected, reply: text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init),
                                   local: local, elapsed: .zero)
            }
            if errno == EAGAIN || errno == EINTR { continue }
            var result = failure(errno)
            result.local = local
            return result
        }
    }
}
