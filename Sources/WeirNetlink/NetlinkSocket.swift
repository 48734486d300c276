import CNftnl
import WeirModel

/// A `NETLINK_NETFILTER` socket, bound with an automatic port id, with extended acks
/// (`NETLINK_EXT_ACK`: the kernel names the offending attribute's offset) and capped acks
/// (`NETLINK_CAP_ACK`: errors do not echo the whole request). Closed when the value goes away.
///
/// Opened in a named network namespace (`/run/netns/NAME`, as `ip netns add` makes them), the
/// socket belongs to that namespace for its whole life; the calling thread enters it only for
/// the `socket()` call and returns at once (`setns` is per thread; this is synchronous, with no
/// suspension point in between). Not for concurrent use from several threads.
public final class NetlinkSocket {
    /// The namespace name, or nil for the caller's own namespace.
    public let namespace: String?
    let socket: OpaquePointer
    let fd: Int32
    /// The port id the kernel assigned.
    public let portID: UInt32
    /// Sequence numbers for this socket's own requests (GETGEN, dumps); batches carry theirs.
    private var nextSeq: UInt32 = 0x4000_0000
    /// One receive buffer, reused.
    private var receiveBuffer: UnsafeMutableRawBufferPointer

    /// Opens the socket in network namespace `namespace` (a name under `/run/netns`) or, when
    /// nil, in the calling thread's namespace.
    public init(namespace: String? = nil) throws(NetlinkError) {
        self.namespace = namespace
        let opened: OpaquePointer
        if let namespace {
            opened = try Self.openInNamespace(namespace)
        } else {
            let (s, code) = C.socketOpen(Netlink.netfilterProtocol)
            guard let s else { throw NetlinkError(.socket, errno: code, "cannot open a NETLINK_NETFILTER socket") }
            opened = s
        }
        let (bound, bindErrno) = C.socketBind(opened, 0, Netlink.autoPortID)
        guard bound >= 0 else {
            C.socketClose(opened)
            throw NetlinkError(.socket, errno: bindErrno, "cannot bind the netlink socket")
        }
        for (option, name) in [(Netlink.extendedAckOption, "NETLINK_EXT_ACK"), (Netlink.capAckOption, "NETLINK_CAP_ACK")] {
            let (result, code) = C.socketSetOption(opened, option, 1)
            guard result >= 0 else {
                C.socketClose(opened)
                throw NetlinkError(.socket, errno: code, "cannot set \(name) on the netlink socket")
            }
        }
        socket = opened
        fd = C.socketFD(opened)
        portID = C.socketPortID(opened)
        receiveBuffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit {
        receiveBuffer.deallocate()
        C.socketClose(socket)
    }

    /// setns into `/run/netns/NAME`, open the socket, setns back to `/proc/thread-self/ns/net`.
    private static func openInNamespace(_ name: String) throws(NetlinkError) -> OpaquePointer {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw NetlinkError(.namespace, "'\(name)' is not a network namespace name (expected a file name under /run/netns)")
        }
        let path = "/run/netns/\(name)"
        let (old, oldErrno) = C.openReadOnly("/proc/thread-self/ns/net")
        guard old >= 0 else { throw NetlinkError(.namespace, errno: oldErrno, "cannot open /proc/thread-self/ns/net") }
        defer { C.close(old) }
        let (target, targetErrno) = C.openReadOnly(path)
        guard target >= 0 else { throw NetlinkError(.namespace, errno: targetErrno, "cannot open network namespace \(path)") }
        defer { C.close(target) }
        let (entered, enterErrno) = C.setNetworkNamespace(target)
        guard entered == 0 else { throw NetlinkError(.namespace, errno: enterErrno, "cannot enter network namespace \(path)") }
        let (s, openErrno) = C.socketOpen(Netlink.netfilterProtocol)
        let (back, backErrno) = C.setNetworkNamespace(old)
        guard back == 0 else {
            if let s { C.socketClose(s) }
            throw NetlinkError(.namespace, errno: backErrno,
                               "cannot return the calling thread from \(path) to its own network namespace (the thread stays in \(path))")
        }
        guard let s else { throw NetlinkError(.socket, errno: openErrno, "cannot open a NETLINK_NETFILTER socket in \(path)") }
        return s
    }

    // MARK: plumbing for transactions and dumps

    func makeSeq() -> UInt32 {
        nextSeq &+= 1
        return nextSeq
    }

    /// Raises the kernel's send and receive buffer limits (`SO_SNDBUFFORCE`/`SO_RCVBUFFORCE`,
    /// root only) so one batch fits one datagram and its replies are not dropped.
    func sizeBuffers(send: Int, receive: Int) throws(NetlinkError) {
        for (option, value, name) in [(SO_SNDBUFFORCE, send, "SO_SNDBUFFORCE"), (SO_RCVBUFFORCE, receive, "SO_RCVBUFFORCE")] {
            let clamped = Int32(clamping: value)
            let (result, code) = C.setSocketOption(fd, SOL_SOCKET, option, clamped)
            guard result == 0 else { throw NetlinkError(.socket, errno: code, "cannot set \(name) to \(clamped) bytes") }
        }
    }

    /// Sends `bytes` as one datagram.
    func send(_ bytes: UnsafeRawBufferPointer) throws(NetlinkError) {
        let (sent, code) = C.socketSend(socket, bytes)
        guard sent >= 0 else { throw NetlinkError(.send, errno: code, "sendmsg of \(bytes.count) bytes failed") }
        guard sent == bytes.count else { throw NetlinkError(.send, "sendmsg sent \(sent) of \(bytes.count) bytes") }
    }

    /// Sends a request built by `build` into a scratch buffer.
    func sendRequest(_ build: (UnsafeMutableRawPointer) -> UnsafeMutablePointer<nlmsghdr>) throws(NetlinkError) {
        let scratch = MessageBuffer(capacity: 4096)
        let nlh = build(scratch.base)
        try send(UnsafeRawBufferPointer(start: scratch.base, count: Int(nlh.pointee.nlmsg_len)))
    }

    /// Receives one datagram and returns its messages (copied out). nil when `nonBlocking` and
    /// nothing is queued.
    func receive(nonBlocking: Bool) throws(NetlinkError) -> [ReceivedMessage]? {
        var (n, code) = C.receive(fd, receiveBuffer, nonBlocking: nonBlocking)
        while n < 0 && code == EINTR { (n, code) = C.receive(fd, receiveBuffer, nonBlocking: nonBlocking) }
        if n < 0 {
            if nonBlocking && (code == EAGAIN || code == EWOULDBLOCK) { return nil }
            throw NetlinkError(.receive, errno: code, code == ENOBUFS ? "kernel replies were lost (receive buffer overrun)" : "recv failed")
        }
        guard n <= receiveBuffer.count else {
            throw NetlinkError(.protocolViolation, "a \(n)-byte reply does not fit the \(receiveBuffer.count)-byte receive buffer")
        }
        let bytes = [UInt8](UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<n]))
        var out: [ReceivedMessage] = []
        var at = 0
        while n - at >= Netlink.headerSize {
            let header = NetlinkHeader(bytes, at: at)
            guard header.length >= Netlink.headerSize, header.length <= n - at else {
                throw NetlinkError(.protocolViolation, "malformed reply: message length \(header.length) at byte \(at) of \(n)")
            }
            out.append(ReceivedMessage(header: header, bytes: Array(bytes[at..<(at + header.length)])))
            at += align4(header.length)
        }
        return out
    }

    /// Reads the ruleset generation id (`NFT_MSG_GETGEN`). Asked with `NLM_F_ACK`, so the reply
    /// ends with an ack (without it the reply has no terminator to wait for).
    public func generation() throws(NetlinkError) -> UInt32 {
        let seq = makeSeq()
        try sendRequest { C.nlmsgBuildHeader($0, NF.Message.getGeneration, NF.familyUnspecified, Netlink.Flag.ack, seq) }
        var genid: UInt32?
        while true {
            guard let messages = try receive(nonBlocking: false) else { continue }
            for message in messages where message.header.seq == seq {
                if message.header.type == Netlink.error {
                    let code = message.errorCode
                    guard code == 0 else { throw NetlinkError(.kernel, errno: -code, "GETGEN failed") }
                    guard let genid else { throw NetlinkError(.protocolViolation, "GETGEN was acknowledged without a generation") }
                    return genid
                }
                if message.header.type == NF.type(NF.Message.newGeneration) {
                    genid = message.withHeader { ObjectParser.generation($0) }
                    if genid == nil { throw NetlinkError(.decoding, "libnftnl cannot parse the GETGEN reply") }
                }
            }
        }
    }
}

/// One netlink message received from the kernel, copied out of the receive buffer.
struct ReceivedMessage {
    var header: NetlinkHeader
    /// The message, from its header on (`header.offset` refers to the datagram; here it starts at 0).
    var bytes: [UInt8]

    /// For `NLMSG_ERROR`: `nlmsgerr.error` (0 is an ack, otherwise -errno).
    var errorCode: Int32 {
        guard bytes.count >= 20 else { return -EPROTO }
        return Int32(bitPattern: bytes.u32(at: 16))
    }

    /// For `NLMSG_ERROR`: the sequence number of the request it answers (`nlmsgerr.msg.nlmsg_seq`).
    var erroredSeq: UInt32 {
        bytes.count >= 36 ? bytes.u32(at: 28) : header.seq
    }

    /// For `NLMSG_ERROR` with `NLM_F_ACK_TLVS`: the extended-ack attributes (offset of the
    /// offending attribute in the request, message text).
    var extendedAck: (offset: UInt32?, text: String?) {
        guard header.type == Netlink.error, header.flags & Netlink.Flag.ackTLVs != 0 else { return (nil, nil) }
        // nlmsghdr (16) + error (4) + the request's header (16), plus the request itself unless capped.
        var start = 36
        if header.flags & Netlink.Flag.capped == 0, bytes.count >= 36 {
            start += align4(Int(bytes.u32(at: 20)) - Netlink.headerSize)
        }
        guard start <= bytes.count, let attributes = try? NetlinkAttributes.parse(bytes, start..<bytes.count) else { return (nil, nil) }
        var offset: UInt32?
        var text: String?
        for attribute in attributes {
            if attribute.type == Netlink.errorAttributeOffset, attribute.payload.count == 4 { offset = bytes.u32(at: attribute.payload.lowerBound) }
            if attribute.type == Netlink.errorAttributeMessage { text = attribute.string(in: bytes) }
        }
        return (offset, text)
    }

    func withHeader<T>(_ body: (UnsafePointer<nlmsghdr>) -> T) -> T {
        bytes.withUnsafeBytes { body(ObjectParser.header($0, 0)) }
    }
}
