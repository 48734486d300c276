import WeirModel

/// A growable byte buffer written through a raw pointer: the printer's hot loop appends many
/// short pieces, and `Array.append` costs more per call than the copy itself.
/// The owner must call `deallocate()`.
struct ByteSink {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 256)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() { base.deallocate() }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count &+ extra > capacity { grow(count &+ extra) }
    }

    @inline(never)
    mutating func grow(_ needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(_ pointer: UnsafePointer<UInt8>, _ n: Int) {
        reserve(n)
        let to = base + count
        for i in 0..<n { to[i] = pointer[i] }
        count &+= n
    }

    @inline(__always)
    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { if let p = $0.baseAddress { append(p, $0.count) } }
    }

    @inline(__always)
    mutating func removeLast() { count -= 1 }

    @inline(__always)
    mutating func put(_ text: StaticString) {
        append(text.utf8Start, text.utf8CodeUnitCount)
    }

    @inline(__always)
    mutating func put(_ text: String) {
        var text = text
        text.withUTF8 { if let p = $0.baseAddress { append(p, $0.count) } }
    }

    @inline(__always)
    mutating func putDecimal(_ value: UInt32) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        reserve(digits)
        var v = value
        var i = count &+ digits &- 1
        while true {
            base[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
            if v == 0 { break }
            i -= 1
        }
        count &+= digits
    }

    @inline(__always)
    mutating func putHex(_ value: UInt16) {
        let digits: StaticString = "0123456789abcdef"
        var started = false
        var shift = 12
        while shift >= 0 {
            let nibble = Int((value >> UInt16(shift)) & 0xf)
            if nibble != 0 || started || shift == 0 {
                started = true
                append(digits.utf8Start[nibble])
            }
            shift -= 4
        }
    }

    mutating func putIPv4(_ v: UInt32) {
        putDecimal(v >> 24)
        append(UInt8(ascii: "."))
        putDecimal(v >> 16 & 0xff)
        append(UInt8(ascii: "."))
        putDecimal(v >> 8 & 0xff)
        append(UInt8(ascii: "."))
        putDecimal(v & 0xff)
    }

    /// IPv6 as glibc's `inet_ntop` prints it (RFC 5952 compression, embedded IPv4 for
    /// IPv4-compatible and IPv4-mapped addresses).
    mutating func putIPv6(_ v: UInt128) {
        @inline(__always) func word(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: v >> UInt128(112 - 16 * i)) }
        var bestBase = -1, bestLength = 0, runBase = -1
        for i in 0...8 {
            if i < 8, word(i) == 0 {
                if runBase < 0 { runBase = i }
            } else if runBase >= 0 {
                if i - runBase > bestLength { bestBase = runBase; bestLength = i - runBase }
                runBase = -1
            }
        }
        if bestLength < 2 { bestBase = -1 }
        for i in 0..<8 {
            if bestBase >= 0, i >= bestBase, i < bestBase + bestLength {
                if i == bestBase { append(UInt8(ascii: ":")) }
                continue
            }
            if i != 0 { append(UInt8(ascii: ":")) }
            if i == 6, bestBase == 0, bestLength == 6 || (bestLength == 5 && word(5) == 0xffff) {
                putIPv4(UInt32(truncatingIfNeeded: v))
                return
            }
            putHex(word(i))
        }
        if bestBase >= 0, bestBase + bestLength == 8 { append(UInt8(ascii: ":")) }
    }

    mutating func putAddress(_ address: IPAddress) {
        switch address {
        case .v4(let v): putIPv4(v)
        case .v6(let v): putIPv6(v)
        }
    }

    /// `first` or `first<sep>last`.
    mutating func putPorts(_ range: PortRange, separator: UInt8) {
        putDecimal(UInt32(range.first))
        if range.first != range.last {
            append(separator)
            putDecimal(UInt32(range.last))
        }
    }

    /// A string argument as libxtables' `xtables_save_string` prints it, with the leading space:
    /// bare when non-empty and only `[A-Za-z0-9_-]`, else in double quotes with `"`, `\` and `'`
    /// backslash-escaped.
    mutating func putSaveString(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            append(UInt8(ascii: " "))
            var bare = !utf8.isEmpty
            for byte in utf8 where !IptablesQuoting.isBare(byte) { bare = false; break }
            if bare {
                if let p = utf8.baseAddress { append(p, utf8.count) }
                return
            }
            reserve(utf8.count * 2 + 2)
            base[count] = UInt8(ascii: "\"")
            var at = count + 1
            for byte in utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "'") {
                    base[at] = UInt8(ascii: "\\")
                    at += 1
                }
                base[at] = byte
                at += 1
            }
            base[at] = UInt8(ascii: "\"")
            count = at + 1
        }
    }
}

/// iptables' quoting rules for string arguments.
public enum IptablesQuoting {
    @inline(__always)
    static func isBare(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    /// A string argument as `iptables-save` prints it (`xtables_save_string`), without the leading space.
    public static func quote(_ text: String) -> String {
        var out = ByteSink(capacity: text.utf8.count * 2 + 3)
        defer { out.deallocate() }
        out.putSaveString(text)
        return String(decoding: out.bytes.dropFirst(), as: UTF8.self)
    }
}
