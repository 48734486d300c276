import WeirDiagnostics

/// A token of the policy language.
public struct Token: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A run of characters that are not blanks or punctuation: keywords, names, addresses, ports.
        case word
        /// A double-quoted string; `text` holds the unescaped contents.
        case string
        case leftBrace, rightBrace, comma, equals, bang, semicolon, newline, endOfFile
    }

    public var kind: Kind
    /// The word's text, or a string's unescaped contents.
    public var text: String
    public var start: Int
    public var end: Int
}

/// Splits policy text into tokens. Comments run from `#` to the end of the line.
/// Errors (bad characters, unterminated strings) are diagnostics; lexing always finishes.
public struct Lexer {
    private let file: SourceFile
    private let bytes: [UInt8]
    private var position = 0
    public private(set) var diagnostics: [Diagnostic] = []

    public init(file: SourceFile) {
        self.file = file
        self.bytes = file.bytes
    }

    static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"),
             UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: ";"),
             UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "\""), UInt8(ascii: "#"):
            false
        default:
            byte > 0x20 && byte < 0x7f
        }
    }

    /// All tokens, ending with `.endOfFile`.
    public mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        tokens.reserveCapacity(bytes.count / 4)
        while true {
            let token = next()
            tokens.append(token)
            if token.kind == .endOfFile { return tokens }
        }
    }

    private mutating func next() -> Token {
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                position += 1
            case UInt8(ascii: "#"):
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
            case UInt8(ascii: "\n"): return single(.newline)
            case UInt8(ascii: "{"): return single(.leftBrace)
            case UInt8(ascii: "}"): return single(.rightBrace)
            case UInt8(ascii: ","): return single(.comma)
            case UInt8(ascii: ";"): return single(.semicolon)
            case UInt8(ascii: "="): return single(.equals)
            case UInt8(ascii: "!"): return single(.bang)
            case UInt8(ascii: "\""): return string()
            default:
                if Self.isWordByte(byte) { return word() }
                let start = position
                // Skip one whole UTF-8 character so the caret points at it once.
                position += 1
                while position < bytes.count, bytes[position] & 0xC0 == 0x80 { position += 1 }
                let shown = file.text(of: start..<position)
                let what = byte < 0x20 || byte == 0x7f ? "control character 0x\(String(byte, radix: 16))" : "character '\(shown)'"
                diagnostics.append(.error("unexpected \(what)", at: SourceRange(file: file, start: start, end: position)))
            }
        }
        return Token(kind: .endOfFile, text: "", start: bytes.count, end: bytes.count)
    }

    private mutating func single(_ kind: Token.Kind) -> Token {
        position += 1
        return Token(kind: kind, text: "", start: position - 1, end: position)
    }

    private mutating func word() -> Token {
        let start = position
        while position < bytes.count, Self.isWordByte(bytes[position]) { position += 1 }
        return Token(kind: .word, text: String(decoding: bytes[start..<position], as: UTF8.self), start: start, end: position)
    }

    private mutating func string() -> Token {
        let start = position
        position += 1
        var content: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return Token(kind: .string, text: String(decoding: content, as: UTF8.self), start: start, end: position)
            }
            if byte == UInt8(ascii: "\n") { break }
            if byte == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] != UInt8(ascii: "\n") {
                content.append(bytes[position + 1])
                position += 2
                continue
            }
            content.append(byte)
            position += 1
        }
        diagnostics.append(.error("unterminated string", at: SourceRange(file: file, start: start, end: start + 1)))
        return Token(kind: .string, text: String(decoding: content, as: UTF8.self), start: start, end: position)
    }
}
