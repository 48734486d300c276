/// A failure talking to the kernel over netlink, or reading what it sent. Carries the errno
/// and its text where there is one.
public struct NetlinkError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The network namespace could not be opened or entered (or left again).
        case namespace
        /// Opening, binding or configuring the socket failed.
        case socket
        /// `sendmsg` failed or sent less than the whole batch.
        case send
        /// `recv` failed (ENOBUFS: replies were lost).
        case receive
        /// A reply that does not fit the receive buffer, or is not what was asked for.
        case protocolViolation
        /// The kernel answered a request with an error.
        case kernel
        /// A reply libnftnl or WeirNetlink cannot read.
        case decoding
        /// The ruleset kept changing during a dump.
        case unstable
    }

    public var kind: Kind
    /// The errno, when the failure has one.
    public var errno: Int32?
    public var message: String

    init(_ kind: Kind, errno: Int32? = nil, _ message: String) {
        self.kind = kind
        self.errno = errno
        self.message = message
    }

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(C.errorText(errno)) (\(errnoName(errno)))"
    }
}
