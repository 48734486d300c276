import Foundation
import WeirModel

// accept4(2) is another _GNU_SOURCE-only declaration of Glibc.
@_silgen_name("accept4")
func c_accept4(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32) -> Int32

/// An IP address and a port: what a socket is bound or connected to.
public struct SocketEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `10.0.3.121:10080` or `[fd00::1]:80`.
    public var description: String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// The wildcard address of a family (`0.0.0.0`, `::`).
    public static func any(_ family: Family) -> IPAddress { IPAddress(family: family, bits: 0) }

    var domain: Int32 { address.family == .ipv6 ? AF_INET6 : AF_INET }

    /// Calls `body` with the endpoint as a `sockaddr`.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch address {
        case .v4(let bits):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port.bigEndian
            raw.sin_addr = in_addr(s_addr: bits.bigEndian)
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bits):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { bytes in
                for i in 0..<16 { bytes[i] = UInt8(truncatingIfNeeded: bits >> UInt128(8 * (15 - i))) }
            }
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// The endpoint a `sockaddr_storage` holds (IPv4 or IPv6), or nil.
    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(.v4(UInt32(bigEndian: raw.sin_addr.s_addr)), UInt16(bigEndian: raw.sin_port))
        case AF_INET6:
            let raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let bits = withUnsafeBytes(of: raw.sin6_addr) { bytes in bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
            self.init(.v6(bits), UInt16(bigEndian: raw.sin6_port))
        default:
            return nil
        }
    }

    /// What `getsockname` or `getpeername` says about a socket.
    static func of(_ fd: Int32, peer: Bool) -> SocketEndpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        return status == 0 ? SocketEndpoint(storage) : nil
    }
}

/// Small socket helpers shared by the server and the client.
enum SocketCall {
    static func socketType(_ transport: TransportProtocol) -> Int32? {
        switch transport {
        case .tcp: Int32(SOCK_STREAM.rawValue)
        case .udp: Int32(SOCK_DGRAM.rawValue)
        default: nil
        }
    }

    static let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)

    /// Milliseconds left until `deadline`, at least 0 (for `poll`).
    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    /// Waits for `events` on `fd` until `deadline`; the returned events, or 0 on timeout.
    static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Int16 {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let timeout = milliseconds(until: deadline)
            let ready = poll(&entry, 1, timeout)
            if ready > 0 { return entry.revents }
            if ready == 0 { if timeout == 0 { return 0 } else { continue } }
            if errno != EINTR { return Int16(POLLERR) }
        }
    }

    static func socketError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }
}
