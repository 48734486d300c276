import CNftnl
import WeirModel
import WeirNftables

/// How a batch writes a set and its elements, and what it accepts: shared by the builder
/// (which refuses a program, `.unencodable`) and the decoder (which rejects a file, `.content`),
/// so that whatever one writes the other reads back unchanged.
///
/// What is written (checked against Linux 6.18 by the kernel tests):
///
/// * plain sets, concatenated keys (each field padded to 4 bytes; `fieldLengths`, which the
///   kernel takes only together with the `concatenated` flag, goes into
///   `NFTA_SET_DESC_CONCAT`; nft gives them for interval sets only), data maps (`data` of `dataLength` bytes) and verdict
///   maps (data type `NFT_DATA_VERDICT`, a `verdict` per element; jump/goto name a chain of
///   the same table);
/// * interval sets, each element a range `key`…`keyEnd` (inclusive; a single key is the range
///   `k`…`k`), as `normalized()` gives them: a set with `concatenated` (pipapo) carries the
///   range in one element with `NFTA_SET_ELEM_KEY_END`; any other interval set (rbtree) as
///   the kernel's pair of a start element and an `NFT_SET_ELEM_INTERVAL_END` element at
///   `keyEnd + 1` (none when the range reaches the top of the key space). Both elements of a
///   pair always travel in the same message.
///
/// What is refused: set flags other than anonymous, constant, interval, map and concatenated
/// (timeouts, dynamic sets, object maps, element expressions), element flags (interval ends
/// given by hand, catch-all elements), and anything that does not fit the set's definition.
enum SetEncoding {
    /// At most this many kernel elements per `NEWSETELEM` message (as nft sends them)…
    static let maxElementsPerMessage = 1000
    /// …and at most this many bytes of elements: the elements travel in one attribute
    /// (`NFTA_SET_ELEM_LIST_ELEMENTS`), whose length field holds at most 65535.
    static let maxElementBytesPerMessage = 48 * 1024

    static let supportedFlags: NftSet.Flags = [.anonymous, .constant, .interval, .map, .concatenated]

    /// Whether the kernel holds the set's ranges as start/end pairs (rbtree).
    static func usesPairs(_ set: NftSet) -> Bool { set.flags.contains(.interval) && !set.flags.contains(.concatenated) }

    static func isVerdictMap(_ set: NftSet) -> Bool { set.dataType == NF.dataVerdict }

    /// Why the set itself cannot be written, or nil.
    static func problem(of set: NftSet) -> String? {
        let unsupported = set.flags.subtracting(supportedFlags)
        if !unsupported.isEmpty {
            return "set flags 0x\(String(unsupported.rawValue, radix: 16)) (\(flagNames(unsupported))) are not supported; "
                + "batches write anonymous, constant, interval, map and concatenated sets"
        }
        guard (1...NF.dataValueMaxLength).contains(Int(set.keyLength)) else {
            return "key length \(set.keyLength) is outside 1…\(NF.dataValueMaxLength) (NFT_DATA_VALUE_MAXLEN)"
        }
        if !set.fieldLengths.isEmpty {
            guard set.fieldLengths.count >= 2, set.fieldLengths.count < NF.reg32Count else {
                return "a concatenated key has 2 to \(NF.reg32Count - 1) fields, not \(set.fieldLengths.count)"
            }
            guard set.fieldLengths.allSatisfy({ (1...UInt32(NF.dataValueMaxLength)).contains($0) }) else {
                return "field lengths \(set.fieldLengths.map(String.init).joined(separator: ", ")) must each be 1…\(NF.dataValueMaxLength) bytes"
            }
            let padded = set.fieldLengths.reduce(0) { $0 + align4(Int($1)) }
            guard padded == Int(set.keyLength) else {
                return "field lengths \(set.fieldLengths.map(String.init).joined(separator: ", ")) take \(padded) bytes padded to 4 each, "
                    + "but the key length is \(set.keyLength)"
            }
        }
        // The kernel takes field lengths (NFTA_SET_DESC_CONCAT) exactly with NFT_SET_CONCAT
        // (EINVAL otherwise).
        if set.flags.contains(.concatenated) && set.fieldLengths.isEmpty {
            return "the concatenated flag (NFT_SET_CONCAT) needs the field lengths of the key's fields"
        } else if !set.flags.contains(.concatenated) && !set.fieldLengths.isEmpty {
            return "field lengths need the concatenated flag (NFT_SET_CONCAT)"
        }
        switch (set.flags.contains(.map), set.dataType) {
        case (false, nil):
            if set.dataLength != nil { return "a data length without a data type (the set is not a map)" }
        case (false, .some):
            return "a data type without the map flag"
        case (true, nil):
            return "the map flag without a data type"
        case (true, .some(let type)):
            if type != NF.dataVerdict {
                guard let length = set.dataLength, (1...NF.dataValueMaxLength).contains(Int(length)) else {
                    return "a map's data length must be 1…\(NF.dataValueMaxLength) bytes, not \(set.dataLength.map(String.init) ?? "missing")"
                }
            }
        }
        return nil
    }

    /// Why an element cannot be written into `set` (whose own `problem` is nil), or nil.
    /// `chains` are the names of the table's chains.
    static func problem(of element: NftSetElement, in set: NftSet, chains: Set<String>) -> String? {
        if !element.flags.isEmpty {
            if element.flags.contains(.intervalEnd) {
                return "element flags 0x\(String(element.flags.rawValue, radix: 16)) (interval end): give each range as key…keyEnd; the batch writes the kernel's pairs itself"
            }
            return "element flags 0x\(String(element.flags.rawValue, radix: 16)) are not supported (catch-all elements are not written)"
        }
        guard element.key.count == Int(set.keyLength) else {
            return "the key has \(element.key.count) bytes; the set's key length is \(set.keyLength)"
        }
        if set.flags.contains(.interval) {
            guard let end = element.keyEnd else {
                return "an element of an interval set needs keyEnd (a single key k is the range k…k)"
            }
            guard end.count == element.key.count else {
                return "keyEnd has \(end.count) bytes; the set's key length is \(set.keyLength)"
            }
            guard !end.lexicographicallyPrecedes(element.key) else {
                return "keyEnd \(end.hexBytes) is below the key \(element.key.hexBytes)"
            }
        } else if element.keyEnd != nil {
            return "keyEnd (a range) in a set without the interval flag"
        }
        if isVerdictMap(set) {
            guard element.data == nil else { return "data in a verdict map (its elements carry verdicts)" }
            guard let verdict = element.verdict else { return "no verdict; every element of a verdict map carries one" }
            if let chain = verdict.chain {
                guard !chain.isEmpty, !chain.utf8.contains(0), chain.utf8.count < NF.nameMaxLength else {
                    return "the chain name '\(chain)' must be 1 to \(NF.nameMaxLength - 1) bytes without NUL"
                }
                guard chains.contains(chain) else {
                    let kind = if case .goto = verdict { "goto" } else { "jump" }
                    return "its verdict is \(kind) \(chain), a chain the table does not have"
                }
            }
        } else if let length = set.dataLength, set.dataType != nil {
            guard element.verdict == nil else { return "a verdict in a data map (its elements carry \(length) bytes of data)" }
            guard let data = element.data else { return "no data; every element of the map carries \(length) bytes" }
            guard data.count == Int(length) else { return "the data has \(data.count) bytes; the map's data length is \(length)" }
        } else if element.data != nil || element.verdict != nil {
            return "data or a verdict in a set that is not a map"
        }
        return nil
    }

    /// The elements the kernel is sent for one (valid) program element: itself, or for an
    /// rbtree interval set the start and, unless the range reaches the top, the end element.
    static func wire(_ element: NftSetElement, in set: NftSet) -> [NftSetElement] {
        guard usesPairs(set), let end = element.keyEnd else { return [element] }
        var start = element
        start.keyEnd = nil
        guard let after = increment(end) else { return [start] }
        return [start, NftSetElement(key: after, flags: .intervalEnd)]
    }

    /// How many kernel elements `wire` makes of an element.
    static func wireCount(_ element: NftSetElement, in set: NftSet) -> Int {
        guard usesPairs(set), let end = element.keyEnd else { return 1 }
        return end.allSatisfy { $0 == 0xff } ? 1 : 2
    }

    /// The bytes one kernel element takes in a message: its `NFTA_LIST_ELEM` nest with flags,
    /// key, key end, data or verdict (each a nest holding an `NFTA_DATA_*` attribute).
    static func wireSize(_ element: NftSetElement) -> Int {
        var size = 4
        if !element.flags.isEmpty { size += 8 }
        size += 8 + align4(element.key.count)
        if let end = element.keyEnd { size += 8 + align4(end.count) }
        if let data = element.data { size += 8 + align4(data.count) }
        if let verdict = element.verdict {
            size += 16
            if let chain = verdict.chain { size += 4 + align4(chain.utf8.count + 1) }
        }
        return size
    }

    /// The program elements of the kernel elements one message carries (the inverse of
    /// `wire`): for an rbtree interval set, each start joined with the end element right after
    /// it (none: the range reaches the top).
    static func join(_ wire: [NftSetElement], in set: NftSet) -> Result<[NftSetElement], ParseFailure> {
        guard usesPairs(set) else { return .success(wire) }
        var out: [NftSetElement] = []
        out.reserveCapacity(wire.count)
        var i = 0
        while i < wire.count {
            var start = wire[i]
            guard !start.flags.contains(.intervalEnd) else {
                return .failure(ParseFailure("kernel element #\(i) ends an interval that no start element before it opens"))
            }
            guard start.keyEnd == nil else {
                return .failure(ParseFailure("kernel element #\(i) has a key end (NFTA_SET_ELEM_KEY_END), which interval sets without the concatenated flag do not take"))
            }
            if i + 1 < wire.count, wire[i + 1].flags.contains(.intervalEnd) {
                let end = wire[i + 1]
                guard end.flags == .intervalEnd, end.keyEnd == nil, end.data == nil, end.verdict == nil else {
                    return .failure(ParseFailure("kernel element #\(i + 1), an interval end, carries more than its key"))
                }
                guard end.key.count == start.key.count, start.key.lexicographicallyPrecedes(end.key), let last = decrement(end.key) else {
                    return .failure(ParseFailure("kernel element #\(i + 1): the interval end \(end.key.hexBytes) does not follow its start \(start.key.hexBytes)"))
                }
                start.keyEnd = last
                i += 2
            } else {
                start.keyEnd = [UInt8](repeating: 0xff, count: start.key.count)
                i += 1
            }
            out.append(start)
        }
        return .success(out)
    }

    /// The key one above, as a big-endian number; nil for all 0xff.
    static func increment(_ key: [UInt8]) -> [UInt8]? {
        var out = key
        for i in out.indices.reversed() {
            if out[i] < 0xff {
                out[i] += 1
                return out
            }
            out[i] = 0
        }
        return nil
    }

    /// The key one below, as a big-endian number; nil for all zeros.
    static func decrement(_ key: [UInt8]) -> [UInt8]? {
        var out = key
        for i in out.indices.reversed() {
            if out[i] > 0 {
                out[i] -= 1
                return out
            }
            out[i] = 0xff
        }
        return nil
    }

    static func flagNames(_ flags: NftSet.Flags) -> String {
        let names: [(NftSet.Flags, String)] = [(.anonymous, "anonymous"), (.constant, "constant"), (.interval, "interval"), (.map, "map"),
                                               (.timeout, "timeout"), (.eval, "dynamic"), (.object, "object"),
                                               (.concatenated, "concatenated"), (.expressions, "expressions")]
        var out = names.filter { flags.contains($0.0) }.map(\.1)
        let known = names.reduce(NftSet.Flags()) { $0.union($1.0) }
        let rest = flags.subtracting(known)
        if !rest.isEmpty { out.append("0x\(String(rest.rawValue, radix: 16))") }
        return out.joined(separator: ", ")
    }

    /// Writes one kernel element as an `NFTA_LIST_ELEM` nest at the message's tail, through a
    /// libnftnl element (`nftnl_set_elem_nlmsg_build`). False when libnftnl could not allocate.
    static func write(_ element: NftSetElement, into nlh: UnsafeMutablePointer<nlmsghdr>) -> Bool {
        guard let e = NftnlSetElement() else { return false }
        if !element.flags.isEmpty { e.set(Attr.setElementFlags, element.flags.rawValue) }
        guard e.set(Attr.setElementKey, element.key) else { return false }
        if let end = element.keyEnd, !e.set(Attr.setElementKeyEnd, end) { return false }
        if let data = element.data, !e.set(Attr.setElementData, data) { return false }
        if let verdict = element.verdict {
            // Sent as the code's 32-bit pattern (NFT_JUMP = -3 …), as for immediates.
            e.set(Attr.setElementVerdict, UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain, !e.set(Attr.setElementChain, chain) { return false }
        }
        C.setElementBuild(nlh, e.raw, NF.listElement)
        return true
    }
}

extension NetlinkAttributes {
    /// Where each element of a `NEWSETELEM` message starts (its `NFTA_LIST_ELEM` nest inside
    /// `NFTA_SET_ELEM_LIST_ELEMENTS`), in order.
    static func setElementOffsets(_ bytes: [UInt8], message: NetlinkHeader) throws(AttributeProblem) -> [Int] {
        let top = try parse(bytes, (message.offset + Netlink.headerSize + Netlink.nfgenmsgSize)..<(message.offset + message.length))
        guard let list = top.first(where: { $0.type == NF.setElementListElements }) else { return [] }
        return try parse(bytes, list.payload).map(\.offset)
    }
}

extension Array where Element == UInt8 {
    /// The bytes in hex, in order: `0x0a000379`.
    var hexBytes: String { "0x" + map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
}
