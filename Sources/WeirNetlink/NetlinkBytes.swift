// Pure-Swift reading of netlink bytes: message headers and attributes, bounds-checked. Used to
// validate batch files before libnftnl sees them, to find where each expression of a rule
// message starts (for error offsets), and to keep raw bytes of expressions WeirNetlink cannot
// represent.

extension Array where Element == UInt8 {
    func u16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }
    func u32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24
    }
    func u32BigEndian(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
    mutating func setU32BigEndian(_ value: UInt32, at offset: Int) {
        self[offset] = UInt8(value >> 24)
        self[offset + 1] = UInt8(value >> 16 & 0xff)
        self[offset + 2] = UInt8(value >> 8 & 0xff)
        self[offset + 3] = UInt8(value & 0xff)
    }
}

@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }

/// A `struct nlmsghdr` read from bytes, with where it sits.
struct NetlinkHeader {
    var offset: Int
    var length: Int
    var type: UInt16
    var flags: UInt16
    var seq: UInt32
    var portID: UInt32

    /// Reads the header at `offset` (the caller checked 16 bytes are there).
    init(_ bytes: [UInt8], at offset: Int) {
        self.offset = offset
        length = Int(bytes.u32(at: offset))
        type = bytes.u16(at: offset + 4)
        flags = bytes.u16(at: offset + 6)
        seq = bytes.u32(at: offset + 8)
        portID = bytes.u32(at: offset + 12)
    }

    /// The `nfgenmsg` fields after the header (the caller checked 20 bytes).
    func nfgen(_ bytes: [UInt8]) -> (family: UInt8, version: UInt8, resID: (UInt8, UInt8)) {
        (bytes[offset + 16], bytes[offset + 17], (bytes[offset + 18], bytes[offset + 19]))
    }
}

/// A netlink attribute (`struct nlattr`) inside a byte array.
struct NetlinkAttribute {
    /// The type without the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits.
    var type: UInt16
    var isNested: Bool
    /// Where the attribute header starts.
    var offset: Int
    /// The payload's bytes.
    var payload: Range<Int>

    func string(in bytes: [UInt8]) -> String {
        let raw = bytes[payload]
        let text = raw.firstIndex(of: 0).map { raw[..<$0] } ?? raw
        return String(decoding: text, as: UTF8.self)
    }
}

/// Why attribute bytes are malformed, and where.
struct AttributeProblem: Error {
    var offset: Int
    var message: String
}

enum NetlinkAttributes {
    /// The attributes that tile `range` exactly (the last may omit its padding).
    static func parse(_ bytes: [UInt8], _ range: Range<Int>) throws(AttributeProblem) -> [NetlinkAttribute] {
        var out: [NetlinkAttribute] = []
        var at = range.lowerBound
        while at < range.upperBound {
            guard range.upperBound - at >= 4 else {
                throw AttributeProblem(offset: at, message: "\(range.upperBound - at) stray byte(s) where an attribute header (4 bytes) should start")
            }
            let length = Int(bytes.u16(at: at))
            let rawType = bytes.u16(at: at + 2)
            guard length >= 4 else {
                throw AttributeProblem(offset: at, message: "attribute length \(length) is shorter than its 4-byte header")
            }
            guard at + length <= range.upperBound else {
                throw AttributeProblem(offset: at, message: "attribute of \(length) bytes runs \(at + length - range.upperBound) byte(s) past the end of its container")
            }
            let attribute = NetlinkAttribute(type: rawType & Netlink.attributeTypeMask, isNested: rawType & Netlink.nestedFlag != 0,
                                             offset: at, payload: (at + 4)..<(at + length))
            out.append(attribute)
            at = min(at + align4(length), range.upperBound)
        }
        return out
    }

    /// Checks that attributes tile `range` (recursing into nested ones) without collecting them.
    static func validate(_ bytes: [UInt8], _ range: Range<Int>) throws(AttributeProblem) {
        var at = range.lowerBound
        while at < range.upperBound {
            guard range.upperBound - at >= 4 else {
                throw AttributeProblem(offset: at, message: "\(range.upperBound - at) stray byte(s) where an attribute header (4 bytes) should start")
            }
            let length = Int(bytes.u16(at: at))
            guard length >= 4 else {
                throw AttributeProblem(offset: at, message: "attribute length \(length) is shorter than its 4-byte header")
            }
            guard at + length <= range.upperBound else {
                throw AttributeProblem(offset: at, message: "attribute of \(length) bytes runs \(at + length - range.upperBound) byte(s) past the end of its container")
            }
            if bytes.u16(at: at + 2) & Netlink.nestedFlag != 0 {
                try validate(bytes, (at + 4)..<(at + length))
            }
            at = min(at + align4(length), range.upperBound)
        }
    }

    /// The expressions of a rule message: for each, where its `NFTA_LIST_ELEM` starts, its
    /// name and the payload of its `NFTA_EXPR_DATA` (empty when absent).
    static func ruleExpressions(_ bytes: [UInt8], message: NetlinkHeader) throws(AttributeProblem) -> [(offset: Int, name: String, data: [UInt8])] {
        let top = try parse(bytes, (message.offset + Netlink.headerSize + Netlink.nfgenmsgSize)..<(message.offset + message.length))
        guard let list = top.first(where: { $0.type == NF.RuleAttribute.expressions }) else { return [] }
        var out: [(offset: Int, name: String, data: [UInt8])] = []
        for element in try parse(bytes, list.payload) where element.type == NF.listElement {
            let parts = try parse(bytes, element.payload)
            let name = parts.first(where: { $0.type == NF.expressionName })?.string(in: bytes) ?? ""
            let data = parts.first(where: { $0.type == NF.expressionData }).map { Array(bytes[$0.payload]) } ?? []
            out.append((element.offset, name, data))
        }
        return out
    }
}
