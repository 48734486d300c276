import WeirDiagnostics

/// One word of an `iptables-restore` line, with its byte range in the file.
struct IptablesToken: Sendable {
    var text: String
    /// Offset of the first byte (an opening quote if the word starts with one).
    var start: Int
    /// Offset just past the last byte (a closing quote included).
    var end: Int
    /// Whether any part was in double quotes.
    var quoted: Bool
}

/// Splits lines the way `iptables-restore` does (`add_param_to_argv` in iptables 1.8.9):
/// words are separated by spaces and tabs; a double quote starts a quoted part in which `\`
/// takes the next byte literally and the closing `"` ends the word; outside quotes a backslash
/// is an ordinary byte.
enum IptablesTokenizer {
    struct UnterminatedQuote: Error {
        var start: Int
    }

    static func tokenize(_ bytes: [UInt8], from start: Int, to end: Int) -> Result<[IptablesToken], UnterminatedQuote> {
        var tokens: [IptablesToken] = []
        var word: [UInt8] = []
        var wordStart = -1
        var inQuote = false
        var quoteStart = -1
        var quoted = false
        var escaped = false
        var i = start

        func finish(at position: Int) {
            tokens.append(IptablesToken(text: String(decoding: word, as: UTF8.self), start: wordStart, end: position, quoted: quoted))
            word.removeAll(keepingCapacity: true)
            wordStart = -1
            quoted = false
        }

        while i < end {
            let byte = bytes[i]
            if inQuote {
                if escaped {
                    word.append(byte)
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inQuote = false
                    finish(at: i + 1)
                } else {
                    word.append(byte)
                }
            } else if byte == UInt8(ascii: "\"") {
                if wordStart < 0 { wordStart = i }
                inQuote = true
                quoted = true
                quoteStart = i
            } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if wordStart >= 0 { finish(at: i) }
            } else {
                if wordStart < 0 { wordStart = i }
                word.append(byte)
            }
            i += 1
        }
        if inQuote { return .failure(UnterminatedQuote(start: quoteStart)) }
        if wordStart >= 0 { finish(at: end) }
        return .success(tokens)
    }
}
