import CNftnl
import Glibc

/// Every C call WeirNetlink makes goes through one of these thin funnels. Each records the C
/// function's name into the installed `CallRecorder` (if any) and then calls it; nothing else.
/// Keeping them in one file shows the whole C surface of the module at a glance.
enum C {
    @inline(__always)
    static func note(_ name: StaticString) {
        if CallRecorder.installed.load(ordering: .relaxed) != 0, let recorder = CallRecorder.current {
            recorder.append(name)
        }
    }

    // MARK: tables

    static func tableAlloc() -> OpaquePointer? { note("nftnl_table_alloc"); return nftnl_table_alloc() }
    static func tableFree(_ t: OpaquePointer) { note("nftnl_table_free"); nftnl_table_free(t) }
    static func tableSetStr(_ t: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_table_set_str"); return nftnl_table_set_str(t, attr, value)
    }
    static func tableSetU32(_ t: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_table_set_u32"); nftnl_table_set_u32(t, attr, value)
    }
    static func tableIsSet(_ t: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_table_is_set"); return nftnl_table_is_set(t, attr)
    }
    static func tableGetStr(_ t: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_table_get_str"); return nftnl_table_get_str(t, attr)
    }
    static func tableGetU32(_ t: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_table_get_u32"); return nftnl_table_get_u32(t, attr)
    }
    static func tableBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ t: OpaquePointer) {
        note("nftnl_table_nlmsg_build_payload"); nftnl_table_nlmsg_build_payload(nlh, t)
    }
    static func tableParse(_ nlh: UnsafePointer<nlmsghdr>, _ t: OpaquePointer) -> Int32 {
        note("nftnl_table_nlmsg_parse"); return nftnl_table_nlmsg_parse(nlh, t)
    }

    // MARK: chains

    static func chainAlloc() -> OpaquePointer? { note("nftnl_chain_alloc"); return nftnl_chain_alloc() }
    static func chainFree(_ c: OpaquePointer) { note("nftnl_chain_free"); nftnl_chain_free(c) }
    static func chainSetStr(_ c: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_chain_set_str"); return nftnl_chain_set_str(c, attr, value)
    }
    static func chainSetU32(_ c: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_chain_set_u32"); nftnl_chain_set_u32(c, attr, value)
    }
    static func chainSetS32(_ c: OpaquePointer, _ attr: UInt16, _ value: Int32) {
        note("nftnl_chain_set_s32"); nftnl_chain_set_s32(c, attr, value)
    }
    static func chainIsSet(_ c: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_chain_is_set"); return nftnl_chain_is_set(c, attr)
    }
    static func chainGetStr(_ c: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_chain_get_str"); return nftnl_chain_get_str(c, attr)
    }
    static func chainGetU32(_ c: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_chain_get_u32"); return nftnl_chain_get_u32(c, attr)
    }
    static func chainGetS32(_ c: OpaquePointer, _ attr: UInt16) -> Int32 {
        note("nftnl_chain_get_s32"); return nftnl_chain_get_s32(c, attr)
    }
    static func chainBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ c: OpaquePointer) {
        note("nftnl_chain_nlmsg_build_payload"); nftnl_chain_nlmsg_build_payload(nlh, c)
    }
    static func chainParse(_ nlh: UnsafePointer<nlmsghdr>, _ c: OpaquePointer) -> Int32 {
        note("nftnl_chain_nlmsg_parse"); return nftnl_chain_nlmsg_parse(nlh, c)
    }

    // MARK: rules

    static func ruleAlloc() -> OpaquePointer? { note("nftnl_rule_alloc"); return nftnl_rule_alloc() }
    static func ruleFree(_ r: OpaquePointer) { note("nftnl_rule_free"); nftnl_rule_free(r) }
    static func ruleSetStr(_ r: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_rule_set_str"); return nftnl_rule_set_str(r, attr, value)
    }
    static func ruleSetU32(_ r: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_rule_set_u32"); nftnl_rule_set_u32(r, attr, value)
    }
    static func ruleIsSet(_ r: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_rule_is_set"); return nftnl_rule_is_set(r, attr)
    }
    static func ruleGetStr(_ r: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_rule_get_str"); return nftnl_rule_get_str(r, attr)
    }
    static func ruleGetU32(_ r: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_rule_get_u32"); return nftnl_rule_get_u32(r, attr)
    }
    static func ruleGetU64(_ r: OpaquePointer, _ attr: UInt16) -> UInt64 {
        note("nftnl_rule_get_u64"); return nftnl_rule_get_u64(r, attr)
    }
    static func ruleGetData(_ r: OpaquePointer, _ attr: UInt16, _ length: inout UInt32) -> UnsafeRawPointer? {
        note("nftnl_rule_get_data"); return nftnl_rule_get_data(r, attr, &length)
    }
    static func ruleBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ r: OpaquePointer) {
        note("nftnl_rule_nlmsg_build_payload"); nftnl_rule_nlmsg_build_payload(nlh, r)
    }
    static func ruleParse(_ nlh: UnsafePointer<nlmsghdr>, _ r: OpaquePointer) -> Int32 {
        note("nftnl_rule_nlmsg_parse"); return nftnl_rule_nlmsg_parse(nlh, r)
    }
    static func exprIterCreate(_ r: OpaquePointer) -> OpaquePointer? {
        note("nftnl_expr_iter_create"); return nftnl_expr_iter_create(r)
    }
    static func exprIterNext(_ i: OpaquePointer) -> OpaquePointer? {
        note("nftnl_expr_iter_next"); return nftnl_expr_iter_next(i)
    }
    static func exprIterDestroy(_ i: OpaquePointer) { note("nftnl_expr_iter_destroy"); nftnl_expr_iter_destroy(i) }

    // MARK: sets and set elements

    static func setAlloc() -> OpaquePointer? { note("nftnl_set_alloc"); return nftnl_set_alloc() }
    static func setFree(_ s: OpaquePointer) { note("nftnl_set_free"); nftnl_set_free(s) }
    static func setSetStr(_ s: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_set_set_str"); return nftnl_set_set_str(s, attr, value)
    }
    static func setSetU32(_ s: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_set_set_u32"); nftnl_set_set_u32(s, attr, value)
    }
    static func setSetData(_ s: OpaquePointer, _ attr: UInt16, _ bytes: [UInt8]) -> Int32 {
        note("nftnl_set_set_data")
        return bytes.withUnsafeBytes { nftnl_set_set_data(s, attr, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt32($0.count)) }
    }
    static func setIsSet(_ s: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_set_is_set"); return nftnl_set_is_set(s, attr)
    }
    static func setGetStr(_ s: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_set_get_str"); return nftnl_set_get_str(s, attr)
    }
    static func setGetU32(_ s: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_set_get_u32"); return nftnl_set_get_u32(s, attr)
    }
    static func setGetData(_ s: OpaquePointer, _ attr: UInt16, _ length: inout UInt32) -> UnsafeRawPointer? {
        note("nftnl_set_get_data"); return nftnl_set_get_data(s, attr, &length)
    }
    static func setBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ s: OpaquePointer) {
        note("nftnl_set_nlmsg_build_payload"); nftnl_set_nlmsg_build_payload(nlh, s)
    }
    static func setSnprintf(_ buffer: UnsafeMutablePointer<CChar>, _ size: Int, _ s: OpaquePointer) -> Int32 {
        note("nftnl_set_snprintf"); return nftnl_set_snprintf(buffer, size, s, nftnlOutputDefault, 0)
    }
    static func setParse(_ nlh: UnsafePointer<nlmsghdr>, _ s: OpaquePointer) -> Int32 {
        note("nftnl_set_nlmsg_parse"); return nftnl_set_nlmsg_parse(nlh, s)
    }
    static func setElementsParse(_ nlh: UnsafePointer<nlmsghdr>, _ s: OpaquePointer) -> Int32 {
        note("nftnl_set_elems_nlmsg_parse"); return nftnl_set_elems_nlmsg_parse(nlh, s)
    }
    static func setElementsBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ s: OpaquePointer) {
        note("nftnl_set_elems_nlmsg_build_payload"); nftnl_set_elems_nlmsg_build_payload(nlh, s)
    }
    static func setElementsIterCreate(_ s: OpaquePointer) -> OpaquePointer? {
        note("nftnl_set_elems_iter_create"); return nftnl_set_elems_iter_create(s)
    }
    static func setElementsIterNext(_ i: OpaquePointer) -> OpaquePointer? {
        note("nftnl_set_elems_iter_next"); return nftnl_set_elems_iter_next(i)
    }
    static func setElementsIterDestroy(_ i: OpaquePointer) {
        note("nftnl_set_elems_iter_destroy"); nftnl_set_elems_iter_destroy(i)
    }
    static func setElementAlloc() -> OpaquePointer? { note("nftnl_set_elem_alloc"); return nftnl_set_elem_alloc() }
    static func setElementFree(_ e: OpaquePointer) { note("nftnl_set_elem_free"); nftnl_set_elem_free(e) }
    static func setElementSet(_ e: OpaquePointer, _ attr: UInt16, _ bytes: [UInt8]) -> Int32 {
        note("nftnl_set_elem_set")
        return bytes.withUnsafeBytes { nftnl_set_elem_set(e, attr, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt32($0.count)) }
    }
    static func setElementSetU32(_ e: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_set_elem_set_u32"); nftnl_set_elem_set_u32(e, attr, value)
    }
    static func setElementSetStr(_ e: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_set_elem_set_str"); return nftnl_set_elem_set_str(e, attr, value)
    }
    /// `nftnl_set_elem_nlmsg_build(nlh, e, type)`: one element as a nest of attribute `type`
    /// (always `NFTA_LIST_ELEM`, which libnftnl's parser requires; its own list builder numbers
    /// the nests 1, 2, 3, …).
    static func setElementBuild(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ e: OpaquePointer, _ type: UInt16) {
        note("nftnl_set_elem_nlmsg_build"); _ = nftnl_set_elem_nlmsg_build(nlh, e, Int32(type))
    }
    static func setElementSnprintf(_ buffer: UnsafeMutablePointer<CChar>, _ size: Int, _ e: OpaquePointer) -> Int32 {
        note("nftnl_set_elem_snprintf"); return nftnl_set_elem_snprintf(buffer, size, e, nftnlOutputDefault, 0)
    }
    static func setElementIsSet(_ e: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_set_elem_is_set"); return nftnl_set_elem_is_set(e, attr)
    }
    static func setElementGet(_ e: OpaquePointer, _ attr: UInt16, _ length: inout UInt32) -> UnsafeRawPointer? {
        note("nftnl_set_elem_get"); return nftnl_set_elem_get(e, attr, &length)
    }
    static func setElementGetU32(_ e: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_set_elem_get_u32"); return nftnl_set_elem_get_u32(e, attr)
    }
    static func setElementGetStr(_ e: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_set_elem_get_str"); return nftnl_set_elem_get_str(e, attr)
    }

    // MARK: expressions

    static func exprAlloc(_ name: String) -> OpaquePointer? { note("nftnl_expr_alloc"); return nftnl_expr_alloc(name) }
    static func exprFree(_ e: OpaquePointer) { note("nftnl_expr_free"); nftnl_expr_free(e) }
    static func exprIsSet(_ e: OpaquePointer, _ attr: UInt16) -> Bool {
        note("nftnl_expr_is_set"); return nftnl_expr_is_set(e, attr)
    }
    static func exprSetU8(_ e: OpaquePointer, _ attr: UInt16, _ value: UInt8) {
        note("nftnl_expr_set_u8"); nftnl_expr_set_u8(e, attr, value)
    }
    static func exprSetU32(_ e: OpaquePointer, _ attr: UInt16, _ value: UInt32) {
        note("nftnl_expr_set_u32"); nftnl_expr_set_u32(e, attr, value)
    }
    static func exprSetU64(_ e: OpaquePointer, _ attr: UInt16, _ value: UInt64) {
        note("nftnl_expr_set_u64"); nftnl_expr_set_u64(e, attr, value)
    }
    static func exprSetStr(_ e: OpaquePointer, _ attr: UInt16, _ value: String) -> Int32 {
        note("nftnl_expr_set_str"); return nftnl_expr_set_str(e, attr, value)
    }
    static func exprSet(_ e: OpaquePointer, _ attr: UInt16, _ bytes: [UInt8]) -> Int32 {
        note("nftnl_expr_set")
        return bytes.withUnsafeBytes { nftnl_expr_set(e, attr, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt32($0.count)) }
    }
    /// `nftnl_expr_set` for attributes whose buffer libnftnl keeps and later frees (x_tables
    /// `NFTNL_EXPR_MT_INFO`/`NFTNL_EXPR_TG_INFO` in libnftnl 1.2.4): hands over a malloc'ed copy.
    static func exprSetHandingOver(_ e: OpaquePointer, _ attr: UInt16, _ bytes: [UInt8]) -> Int32 {
        note("nftnl_expr_set")
        guard let copy = malloc(max(bytes.count, 1)) else { return -1 }
        bytes.withUnsafeBytes { if let base = $0.baseAddress { copy.copyMemory(from: base, byteCount: $0.count) } }
        return nftnl_expr_set(e, attr, copy, UInt32(bytes.count))
    }
    static func exprGetU8(_ e: OpaquePointer, _ attr: UInt16) -> UInt8 {
        note("nftnl_expr_get_u8"); return nftnl_expr_get_u8(e, attr)
    }
    static func exprGetU32(_ e: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_expr_get_u32"); return nftnl_expr_get_u32(e, attr)
    }
    static func exprGetU64(_ e: OpaquePointer, _ attr: UInt16) -> UInt64 {
        note("nftnl_expr_get_u64"); return nftnl_expr_get_u64(e, attr)
    }
    static func exprGetStr(_ e: OpaquePointer, _ attr: UInt16) -> UnsafePointer<CChar>? {
        note("nftnl_expr_get_str"); return nftnl_expr_get_str(e, attr)
    }
    static func exprGet(_ e: OpaquePointer, _ attr: UInt16, _ length: inout UInt32) -> UnsafeRawPointer? {
        note("nftnl_expr_get"); return nftnl_expr_get(e, attr, &length)
    }
    static func exprBuildPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ e: OpaquePointer) {
        note("nftnl_expr_build_payload"); nftnl_expr_build_payload(nlh, e)
    }
    static func exprSnprintf(_ buffer: UnsafeMutablePointer<CChar>, _ size: Int, _ e: OpaquePointer) -> Int32 {
        note("nftnl_expr_snprintf"); return nftnl_expr_snprintf(buffer, size, e, nftnlOutputDefault, 0)
    }

    // MARK: generation

    static func genAlloc() -> OpaquePointer? { note("nftnl_gen_alloc"); return nftnl_gen_alloc() }
    static func genFree(_ g: OpaquePointer) { note("nftnl_gen_free"); nftnl_gen_free(g) }
    static func genParse(_ nlh: UnsafePointer<nlmsghdr>, _ g: OpaquePointer) -> Int32 {
        note("nftnl_gen_nlmsg_parse"); return nftnl_gen_nlmsg_parse(nlh, g)
    }
    static func genGetU32(_ g: OpaquePointer, _ attr: UInt16) -> UInt32 {
        note("nftnl_gen_get_u32"); return nftnl_gen_get_u32(g, attr)
    }

    // MARK: user data

    static func udataBufAlloc(_ size: UInt32) -> OpaquePointer? {
        note("nftnl_udata_buf_alloc"); return nftnl_udata_buf_alloc(size)
    }
    static func udataBufFree(_ b: OpaquePointer) { note("nftnl_udata_buf_free"); nftnl_udata_buf_free(b) }
    static func udataPutStrz(_ b: OpaquePointer, _ type: UInt8, _ value: String) -> Bool {
        note("nftnl_udata_put_strz"); return nftnl_udata_put_strz(b, type, value)
    }
    static func udataBufData(_ b: OpaquePointer) -> UnsafeMutableRawPointer? {
        note("nftnl_udata_buf_data"); return nftnl_udata_buf_data(b)
    }
    static func udataBufLen(_ b: OpaquePointer) -> UInt32 { note("nftnl_udata_buf_len"); return nftnl_udata_buf_len(b) }

    // MARK: netlink messages

    static func nlmsgBuildHeader(_ buffer: UnsafeMutableRawPointer, _ type: UInt16, _ family: UInt16, _ flags: UInt16, _ seq: UInt32) -> UnsafeMutablePointer<nlmsghdr> {
        note("nftnl_nlmsg_build_hdr")
        return nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), type, family, flags, seq)
    }
    static func batchBegin(_ buffer: UnsafeMutableRawPointer, _ seq: UInt32) -> UnsafeMutablePointer<nlmsghdr> {
        note("nftnl_batch_begin"); return nftnl_batch_begin(buffer.assumingMemoryBound(to: CChar.self), seq)
    }
    static func batchEnd(_ buffer: UnsafeMutableRawPointer, _ seq: UInt32) -> UnsafeMutablePointer<nlmsghdr> {
        note("nftnl_batch_end"); return nftnl_batch_end(buffer.assumingMemoryBound(to: CChar.self), seq)
    }
    static func attrPutU32(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ type: UInt16, _ value: UInt32) {
        note("mnl_attr_put_u32"); mnl_attr_put_u32(nlh, type, value)
    }
    static func attrPutStrz(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ type: UInt16, _ value: String) {
        note("mnl_attr_put_strz"); mnl_attr_put_strz(nlh, type, value)
    }
    static func attrPut(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ type: UInt16, _ data: UnsafeRawBufferPointer) {
        note("mnl_attr_put"); mnl_attr_put(nlh, type, data.count, data.baseAddress)
    }
    static func attrNestStart(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ type: UInt16) -> UnsafeMutablePointer<nlattr> {
        note("mnl_attr_nest_start"); return mnl_attr_nest_start(nlh, type)
    }
    static func attrNestEnd(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ start: UnsafeMutablePointer<nlattr>) {
        note("mnl_attr_nest_end"); mnl_attr_nest_end(nlh, start)
    }

    // MARK: sockets and namespaces (results come with errno captured right after the call)

    static func socketOpen(_ bus: Int32) -> (OpaquePointer?, Int32) {
        note("mnl_socket_open"); let s = mnl_socket_open(bus); return (s, errno)
    }
    static func socketBind(_ s: OpaquePointer, _ groups: UInt32, _ pid: pid_t) -> (Int32, Int32) {
        note("mnl_socket_bind"); let r = mnl_socket_bind(s, groups, pid); return (r, errno)
    }
    static func socketSetOption(_ s: OpaquePointer, _ option: Int32, _ value: Int32) -> (Int32, Int32) {
        note("mnl_socket_setsockopt")
        var v = value
        let r = mnl_socket_setsockopt(s, option, &v, socklen_t(MemoryLayout<Int32>.size))
        return (r, errno)
    }
    static func socketFD(_ s: OpaquePointer) -> Int32 { note("mnl_socket_get_fd"); return mnl_socket_get_fd(s) }
    static func socketPortID(_ s: OpaquePointer) -> UInt32 { note("mnl_socket_get_portid"); return mnl_socket_get_portid(s) }
    static func socketClose(_ s: OpaquePointer) { note("mnl_socket_close"); _ = mnl_socket_close(s) }
    static func socketSend(_ s: OpaquePointer, _ bytes: UnsafeRawBufferPointer) -> (Int, Int32) {
        note("mnl_socket_sendto"); let n = mnl_socket_sendto(s, bytes.baseAddress, bytes.count); return (n, errno)
    }
    /// `recv(fd, …, flags | MSG_TRUNC)`: the result is the datagram's real length even when
    /// it did not fit.
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, nonBlocking: Bool) -> (Int, Int32) {
        note("recv")
        let flags = Int32(MSG_TRUNC) | (nonBlocking ? Int32(MSG_DONTWAIT) : 0)
        let n = recv(fd, buffer.baseAddress, buffer.count, flags)
        return (n, errno)
    }
    static func setSocketOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32) -> (Int32, Int32) {
        note("setsockopt")
        var v = value
        let r = setsockopt(fd, level, option, &v, socklen_t(MemoryLayout<Int32>.size))
        return (r, errno)
    }
    static func openReadOnly(_ path: String) -> (Int32, Int32) {
        note("open"); let fd = open(path, O_RDONLY | O_CLOEXEC); return (fd, errno)
    }
    static func close(_ fd: Int32) { note("close"); _ = Glibc.close(fd) }
    static func setNetworkNamespace(_ fd: Int32) -> (Int32, Int32) {
        note("setns"); let r = setns(fd, CNFTNL_CLONE_NEWNET); return (r, errno)
    }
    static func monotonicSeconds() -> Double {
        note("clock_gettime")
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    static func errorText(_ code: Int32) -> String {
        note("strerror"); return String(cString: strerror(code))
    }
}
