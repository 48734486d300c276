import CNftnl
import WeirDiagnostics
import WeirModel
import WeirNftables

/// What a successful `apply` did.
public struct ApplyReport: Sendable, Equatable {
    /// The generation id the batch was guarded with (`NFNL_BATCH_GENID`).
    public var generation: UInt32
    /// The generation id read right after; a commit moves it on, a check leaves it.
    public var generationAfter: UInt32
    /// False for a check (`checkOnly`): the kernel validated the batch and aborted it.
    public var committed: Bool
    /// Messages and bytes sent in the one datagram.
    public var messageCount: Int
    public var byteCount: Int
    /// Seconds from the `sendmsg` call until every reply was read.
    public var kernelSeconds: Double
}

/// One error the kernel reported for a message of a batch, mapped back to what the message does.
public struct NftKernelError: Sendable, Equatable, CustomStringConvertible {
    /// The errno (positive).
    public var errno: Int32
    /// `ENOENT`
    public var errnoName: String
    /// `No such file or directory`
    public var errnoText: String
    /// The sequence number the error answers.
    public var seq: UInt32
    /// The message it answers, when the sequence number is one of the batch's.
    public var message: NftBatch.Message?
    /// `NLMSGERR_ATTR_OFFS`: the offending attribute's offset inside that message.
    public var attributeOffset: UInt32?
    /// For a rule: the expression that offset falls in (0-based), and its kind.
    public var expressionIndex: Int?
    public var expressionName: String?
    /// For set elements (`NEWSETELEM`): the element of the set (its position in the set's
    /// `elements`) that offset falls in.
    public var elementIndex: Int?
    /// `NLMSGERR_ATTR_MSG`, if the kernel sent one (nf_tables usually does not).
    public var kernelMessage: String?
    /// Where the rule or set came from (`NftBatch.provenance(for:)`: for a built batch whose
    /// program carries provenance).
    public var provenance: SourceRange?

    /// `NEWRULE ip weir FORWARD rule #3, expression #5 (immediate): No such file or directory (ENOENT)`,
    /// `NEWSETELEM ip weir-nat __map0 elements 0…999, element #7: Invalid argument (EINVAL)`
    public var description: String {
        var text = message.map { "\($0)" } ?? "message with seq \(seq) (not in the batch)"
        if let expressionIndex { text += ", expression #\(expressionIndex)" + (expressionName.map { " (\($0))" } ?? "") }
        if let elementIndex { text += ", element #\(elementIndex)" }
        text += ": \(errnoText) (\(errnoName))"
        if let kernelMessage { text += " — \(kernelMessage)" }
        if let provenance { text += " [from \(provenance)]" }
        return text
    }
}

/// Why `apply` did not commit. In every case the kernel committed nothing.
public enum NftTransactionError: Error, Equatable, CustomStringConvertible {
    /// The socket failed (including lost replies); see the error.
    case transport(NetlinkError)
    /// The kernel rejected the batch; each error names the message it answers.
    case rejected([NftKernelError])
    /// ERESTART on `BATCH_BEGIN`: the ruleset's generation moved past `expected` between reading
    /// it and the commit (another program changed the ruleset).
    case rulesetChanged(expected: UInt32, error: NftKernelError)

    public var description: String {
        switch self {
        case .transport(let error):
            return "netlink: \(error)"
        case .rejected(let errors):
            let lines = errors.map { "  \($0)" }.joined(separator: "\n")
            return "the kernel rejected the batch (\(errors.count) error\(errors.count == 1 ? "" : "s")); nothing applied:\n\(lines)"
        case .rulesetChanged(let expected, _):
            return "ruleset changed by another program between read and commit (generation \(expected) is stale); nothing applied"
        }
    }
}

extension NftBatch {
    /// The bytes to send, with `BATCH_BEGIN` carrying `NFNL_BATCH_GENID = generation`: the
    /// kernel then refuses the whole batch (ERESTART) unless the ruleset is still at that
    /// generation. Patched into a copy; a batch file without the attribute gets a new
    /// `BATCH_BEGIN`. Generation 0 means no check.
    public func bytes(guardedBy generation: UInt32) -> [UInt8] {
        var out = bytes
        if let generationOffset {
            out.setU32BigEndian(generation, at: generationOffset)
            return out
        }
        let begin = messages[0]
        let buffer = MessageBuffer(capacity: 256)
        let nlh = C.batchBegin(buffer.base, begin.seq)
        C.attrPutU32(nlh, NF.batchGenerationAttribute, generation.bigEndian)
        let header = [UInt8](UnsafeRawBufferPointer(start: buffer.base, count: Int(nlh.pointee.nlmsg_len)))
        return header + out[(begin.offset + align4(begin.length))...]
    }
}

/// Sends batches: one datagram, guarded by the ruleset generation, errors mapped back to messages.
public enum NftTransaction {
    /// Applies `batch` on `socket`'s namespace in one transaction.
    ///
    /// Reads the generation id (`GETGEN`) — or takes `generation` when given, which tests use
    /// to simulate a change between read and commit — writes it into a copy of the batch as
    /// `NFNL_BATCH_GENID`, and sends the batch with one `sendmsg`. No message asks for an ack:
    /// the kernel handles the whole batch synchronously inside `sendmsg`, so once it returns
    /// every error is already queued on the socket, and a non-blocking drain reads them all
    /// (none means success).
    ///
    /// With `checkOnly`, the batch is sent without `BATCH_END`: the kernel runs every message,
    /// reports errors exactly as for a commit, and then aborts; nothing changes and the
    /// generation stays. Only what the kernel checks at commit time is missed: a jump loop
    /// passes a check (as with `nft -c`) and fails the apply with EMLINK.
    public static func apply(_ batch: NftBatch, on socket: NetlinkSocket, checkOnly: Bool = false,
                             generation: UInt32? = nil) throws(NftTransactionError) -> ApplyReport {
        do {
            return try run(batch, socket, checkOnly, generation)
        } catch let error as NftTransactionError {
            throw error
        } catch let error as NetlinkError {
            throw .transport(error)
        } catch {
            throw .transport(NetlinkError(.send, "\(error)"))
        }
    }

    private static func run(_ batch: NftBatch, _ socket: NetlinkSocket, _ checkOnly: Bool, _ injected: UInt32?) throws -> ApplyReport {
        let genid = try injected ?? socket.generation()
        var bytes = batch.bytes(guardedBy: genid)
        if checkOnly, let end = batch.messages.last, end.kind == .batchEnd {
            // BATCH_END is the last message (a batch has nothing after it): cut it off.
            bytes.removeLast(align4(end.length))
        }
        let sentMessages = checkOnly ? batch.messages.count - 1 : batch.messages.count
        try socket.sizeBuffers(send: bytes.count + 65536, receive: sentMessages * 1024 + 65536)
        // Drop anything stale before the batch, so every reply read below answers it.
        while try socket.receive(nonBlocking: true) != nil {}

        let start = Clock.now()
        try bytes.withUnsafeBytes { raw in try socket.send(raw) }
        let errors = try drain(socket, batch)
        let seconds = Clock.now() - start

        if let begin = batch.messages.first,
           let stale = errors.first(where: { $0.seq == begin.seq && $0.errno == ERESTART }) {
            throw NftTransactionError.rulesetChanged(expected: genid, error: stale)
        }
        guard errors.isEmpty else { throw NftTransactionError.rejected(errors) }
        return ApplyReport(generation: genid, generationAfter: try socket.generation(), committed: !checkOnly,
                           messageCount: sentMessages, byteCount: bytes.count, kernelSeconds: seconds)
    }

    /// Reads every reply queued for the batch (they are all there once `sendmsg` returned).
    static func drain(_ socket: NetlinkSocket, _ batch: NftBatch) throws(NetlinkError) -> [NftKernelError] {
        var errors: [NftKernelError] = []
        while true {
            let replies: [ReceivedMessage]?
            do {
                replies = try socket.receive(nonBlocking: true)
            } catch {
                guard error.errno == ENOBUFS else { throw error }
                // Only errors are ever sent back, so lost replies mean the batch failed.
                throw NetlinkError(.receive, errno: ENOBUFS, "the kernel rejected the batch (nothing applied), but its error "
                                   + "replies overflowed the receive buffer after \(errors.count) were read")
            }
            guard let replies else { return errors }
            for reply in replies where reply.header.type == Netlink.error && reply.errorCode != 0 {
                errors.append(kernelError(reply, batch))
            }
        }
    }

    /// Maps an `NLMSG_ERROR` to the batch message it answers, and its attribute offset to the
    /// rule expression or set element it falls in.
    static func kernelError(_ reply: ReceivedMessage, _ batch: NftBatch) -> NftKernelError {
        let code = -reply.errorCode
        let seq = reply.erroredSeq
        let ack = reply.extendedAck
        let message = batch.message(seq: seq)
        var expressionIndex: Int?
        var expressionName: String?
        var elementIndex: Int?
        let provenance = message.flatMap { batch.provenance(for: $0) }
        if let message, message.kind == .newSetElement, let offset = ack.offset {
            elementIndex = element(at: message.offset + Int(offset), of: message, batch)
        }
        if let message, message.kind == .newRule {
            if let offset = ack.offset,
               let expressions = try? NetlinkAttributes.ruleExpressions(batch.bytes, message: NetlinkHeader(batch.bytes, at: message.offset)) {
                let absolute = message.offset + Int(offset)
                if let index = expressions.lastIndex(where: { $0.offset <= absolute }) {
                    expressionIndex = index
                    expressionName = expressions[index].name
                }
            }
        }
        return NftKernelError(errno: code, errnoName: errnoName(code), errnoText: C.errorText(code), seq: seq, message: message,
                              attributeOffset: ack.offset, expressionIndex: expressionIndex, expressionName: expressionName,
                              elementIndex: elementIndex, kernelMessage: ack.text, provenance: provenance)
    }

    /// The set element (its position in the set) whose kernel element holds byte `absolute`
    /// of a `NEWSETELEM` message; nil when the byte is outside the element list.
    static func element(at absolute: Int, of message: NftBatch.Message, _ batch: NftBatch) -> Int? {
        guard let set = batch.set(for: message), let range = message.elements, range.upperBound <= set.elements.count,
              let offsets = try? NetlinkAttributes.setElementOffsets(batch.bytes, message: NetlinkHeader(batch.bytes, at: message.offset)),
              let wireIndex = offsets.lastIndex(where: { $0 <= absolute }) else { return nil }
        // Kernel elements map back to set elements (an rbtree range is two of them).
        var seen = 0
        for index in range {
            seen += SetEncoding.wireCount(set.elements[index], in: set)
            if wireIndex < seen { return index }
        }
        return nil
    }
}

/// Monotonic seconds.
enum Clock {
    static func now() -> Double { C.monotonicSeconds() }
}
