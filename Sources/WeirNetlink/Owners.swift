import CNftnl
import WeirNftables

// Owners of libnftnl objects: each frees its object exactly once, in deinit. They are created
// and dropped within one call (building one message, parsing one reply), never shared.

/// Owns a `struct nftnl_table *` (`nftnl_table_alloc` / `nftnl_table_free`).
final class NftnlTable {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.tableAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.tableFree(raw) }

    func set(_ attr: UInt16, _ value: String) { _ = C.tableSetStr(raw, attr, value) }
    func set(_ attr: UInt16, _ value: UInt32) { C.tableSetU32(raw, attr, value) }
    func string(_ attr: UInt16) -> String? {
        guard C.tableIsSet(raw, attr), let p = C.tableGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func u32(_ attr: UInt16) -> UInt32? { C.tableIsSet(raw, attr) ? C.tableGetU32(raw, attr) : nil }
}

/// Owns a `struct nftnl_chain *` (`nftnl_chain_alloc` / `nftnl_chain_free`).
final class NftnlChain {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.chainAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.chainFree(raw) }

    func set(_ attr: UInt16, _ value: String) { _ = C.chainSetStr(raw, attr, value) }
    func set(_ attr: UInt16, _ value: UInt32) { C.chainSetU32(raw, attr, value) }
    func set(_ attr: UInt16, signed value: Int32) { C.chainSetS32(raw, attr, value) }
    func string(_ attr: UInt16) -> String? {
        guard C.chainIsSet(raw, attr), let p = C.chainGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func u32(_ attr: UInt16) -> UInt32? { C.chainIsSet(raw, attr) ? C.chainGetU32(raw, attr) : nil }
    func s32(_ attr: UInt16) -> Int32? { C.chainIsSet(raw, attr) ? C.chainGetS32(raw, attr) : nil }
}

/// Owns a `struct nftnl_rule *` (`nftnl_rule_alloc` / `nftnl_rule_free`, which also frees the
/// expressions the rule holds after `nftnl_rule_nlmsg_parse`).
final class NftnlRule {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.ruleAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.ruleFree(raw) }

    func set(_ attr: UInt16, _ value: String) { _ = C.ruleSetStr(raw, attr, value) }
    func set(_ attr: UInt16, _ value: UInt32) { C.ruleSetU32(raw, attr, value) }
    func string(_ attr: UInt16) -> String? {
        guard C.ruleIsSet(raw, attr), let p = C.ruleGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func u64(_ attr: UInt16) -> UInt64? { C.ruleIsSet(raw, attr) ? C.ruleGetU64(raw, attr) : nil }
    func data(_ attr: UInt16) -> [UInt8]? {
        guard C.ruleIsSet(raw, attr) else { return nil }
        var length: UInt32 = 0
        guard let p = C.ruleGetData(raw, attr, &length) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(length)))
    }

    /// The rule's expressions, borrowed (the rule keeps owning them).
    func expressions() -> [NftnlExprRef] {
        guard let iterator = C.exprIterCreate(raw) else { return [] }
        defer { C.exprIterDestroy(iterator) }
        var out: [NftnlExprRef] = []
        while let e = C.exprIterNext(iterator) { out.append(NftnlExprRef(raw: e)) }
        return out
    }
}

/// Owns a `struct nftnl_set *` (`nftnl_set_alloc` / `nftnl_set_free`, which also frees the
/// elements the set holds after `nftnl_set_elems_nlmsg_parse`).
final class NftnlSet {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.setAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.setFree(raw) }

    func set(_ attr: UInt16, _ value: String) { _ = C.setSetStr(raw, attr, value) }
    func set(_ attr: UInt16, _ value: UInt32) { C.setSetU32(raw, attr, value) }
    func set(_ attr: UInt16, _ bytes: [UInt8]) -> Bool { C.setSetData(raw, attr, bytes) >= 0 }
    func string(_ attr: UInt16) -> String? {
        guard C.setIsSet(raw, attr), let p = C.setGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func u32(_ attr: UInt16) -> UInt32? { C.setIsSet(raw, attr) ? C.setGetU32(raw, attr) : nil }
    func data(_ attr: UInt16) -> [UInt8]? {
        guard C.setIsSet(raw, attr) else { return nil }
        var length: UInt32 = 0
        guard let p = C.setGetData(raw, attr, &length) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(length)))
    }

    /// The set's elements, borrowed (the set keeps owning them).
    func elements() -> [NftnlSetElementRef] {
        guard let iterator = C.setElementsIterCreate(raw) else { return [] }
        defer { C.setElementsIterDestroy(iterator) }
        var out: [NftnlSetElementRef] = []
        while let e = C.setElementsIterNext(iterator) { out.append(NftnlSetElementRef(raw: e)) }
        return out
    }

    /// libnftnl's debug text of the set (without its elements), as `nft --debug=netlink`
    /// prints it: `__map0 weir-nat b size 2` (name, table, flags in hex, size).
    var debugText: String {
        snprintText { C.setSnprintf($0, $1, raw) }.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
    }
}

/// Owns a `struct nftnl_set_elem *` (`nftnl_set_elem_alloc` / `nftnl_set_elem_free`) that
/// WeirNetlink writes into a message itself, so it is never handed to a set.
final class NftnlSetElement {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.setElementAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.setElementFree(raw) }

    func set(_ attr: UInt16, _ bytes: [UInt8]) -> Bool { C.setElementSet(raw, attr, bytes) >= 0 }
    func set(_ attr: UInt16, _ value: UInt32) { C.setElementSetU32(raw, attr, value) }
    func set(_ attr: UInt16, _ value: String) -> Bool { C.setElementSetStr(raw, attr, value) >= 0 }
}

/// Up to 4095 bytes of text a libnftnl `*_snprintf` writes.
func snprintText(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    guard n > 0 else { return "" }
    return String(decoding: buffer.prefix(min(Int(n), buffer.count - 1)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A borrowed `struct nftnl_set_elem *`; getters return nil for attributes that are not set.
struct NftnlSetElementRef {
    let raw: OpaquePointer

    func isSet(_ attr: UInt16) -> Bool { C.setElementIsSet(raw, attr) }
    func u32(_ attr: UInt16) -> UInt32? { isSet(attr) ? C.setElementGetU32(raw, attr) : nil }
    func string(_ attr: UInt16) -> String? {
        guard isSet(attr), let p = C.setElementGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func data(_ attr: UInt16) -> [UInt8]? {
        guard isSet(attr) else { return nil }
        var length: UInt32 = 0
        guard let p = C.setElementGet(raw, attr, &length) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(length)))
    }

    /// libnftnl's debug text, as `nft --debug=netlink` prints an element (libnftnl 1.2.4):
    /// `element 7903000a 00000006 00006027  : 020011ac 00005000 0 [end]` (the key as 32-bit
    /// words in host order, ` - ` and the key end, `: ` and the data or verdict, the flags).
    var debugText: String { snprintText { C.setElementSnprintf($0, $1, raw) } }
}

/// Owns a `struct nftnl_expr *` (`nftnl_expr_alloc` / `nftnl_expr_free`). WeirNetlink writes
/// expressions into messages itself, so an expression is never handed to a rule.
final class NftnlExpr {
    let ref: NftnlExprRef
    init?(_ name: String) {
        guard let raw = C.exprAlloc(name) else { return nil }
        ref = NftnlExprRef(raw: raw)
    }
    deinit { C.exprFree(ref.raw) }
}

/// A borrowed `struct nftnl_expr *` with typed accessors; getters return nil for attributes
/// that are not set (libnftnl's getters would return 0).
struct NftnlExprRef {
    let raw: OpaquePointer

    var name: String {
        guard let p = C.exprGetStr(raw, Attr.expressionName) else { return "" }
        return String(cString: p)
    }
    func isSet(_ attr: UInt16) -> Bool { C.exprIsSet(raw, attr) }
    func u8(_ attr: UInt16) -> UInt8? { isSet(attr) ? C.exprGetU8(raw, attr) : nil }
    func u32(_ attr: UInt16) -> UInt32? { isSet(attr) ? C.exprGetU32(raw, attr) : nil }
    func u64(_ attr: UInt16) -> UInt64? { isSet(attr) ? C.exprGetU64(raw, attr) : nil }
    func string(_ attr: UInt16) -> String? {
        guard isSet(attr), let p = C.exprGetStr(raw, attr) else { return nil }
        return String(cString: p)
    }
    func data(_ attr: UInt16) -> [UInt8]? {
        guard isSet(attr) else { return nil }
        var length: UInt32 = 0
        guard let p = C.exprGet(raw, attr, &length) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(length)))
    }
    func register(_ attr: UInt16) -> NftRegister? { u32(attr).map { NftRegister(kernel: $0) } }

    func set(_ attr: UInt16, u8 value: UInt8) { C.exprSetU8(raw, attr, value) }
    func set(_ attr: UInt16, _ value: UInt32) { C.exprSetU32(raw, attr, value) }
    func set(_ attr: UInt16, u64 value: UInt64) { C.exprSetU64(raw, attr, value) }
    func set(_ attr: UInt16, _ value: String) { _ = C.exprSetStr(raw, attr, value) }
    func set(_ attr: UInt16, _ bytes: [UInt8]) { _ = C.exprSet(raw, attr, bytes) }
    /// For attributes libnftnl takes ownership of (it frees them with the expression).
    func set(_ attr: UInt16, handingOver bytes: [UInt8]) -> Bool { C.exprSetHandingOver(raw, attr, bytes) >= 0 }
    func set(_ attr: UInt16, _ register: NftRegister) { C.exprSetU32(raw, attr, register.kernelValue) }

    /// libnftnl's debug text, as in `nft --debug=netlink`: `[ meta load iifname => reg 1 ]`.
    var debugText: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { C.exprSnprintf($0.baseAddress!, $0.count, raw) }
        let body = n > 0 ? String(decoding: buffer.prefix(min(Int(n), buffer.count - 1)).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return "[ \(name) \(body)]"
    }
}

/// Owns a `struct nftnl_gen *`.
final class NftnlGen {
    let raw: OpaquePointer
    init?() {
        guard let raw = C.genAlloc() else { return nil }
        self.raw = raw
    }
    deinit { C.genFree(raw) }
}

/// Owns a `struct nftnl_udata_buf *`.
final class NftnlUdataBuffer {
    let raw: OpaquePointer
    init?(size: Int) {
        guard let raw = C.udataBufAlloc(UInt32(size)) else { return nil }
        self.raw = raw
    }
    deinit { C.udataBufFree(raw) }
    var bytes: [UInt8] {
        guard let p = C.udataBufData(raw) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(C.udataBufLen(raw))))
    }
}
