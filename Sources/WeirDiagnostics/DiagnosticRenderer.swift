/// Renders diagnostics the way compilers do:
///
///     Policies/x.weir:3:11: error: unknown network 'brdge'
///         network brdge address 172.17.0.2
///                 ^~~~~
public enum DiagnosticRenderer {
    /// The text of one diagnostic and its notes, each line ending in a newline.
    public static func render(_ diagnostic: Diagnostic) -> String {
        var out = ""
        renderOne(diagnostic, into: &out)
        for note in diagnostic.notes { renderOne(note, into: &out) }
        return out
    }

    /// All diagnostics, in the given order.
    public static func render(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map(render).joined()
    }

    private static func renderOne(_ diagnostic: Diagnostic, into out: inout String) {
        out += diagnostic.description + "\n"
        guard let range = diagnostic.range, !range.file.bytes.isEmpty else { return }
        let (line, column) = range.file.lineAndColumn(of: range.start)
        let text = range.file.lineText(line)
        guard !text.allSatisfy({ $0 == " " }) else { return }  // DSL call sites have no text
        out += "    " + text + "\n"
        // Keep tabs so the caret lines up; count characters, not bytes, before the column.
        let prefixBytes = Array(text.utf8.prefix(column - 1))
        let prefix = String(decoding: prefixBytes, as: UTF8.self)
        let pad = String(prefix.map { $0 == "\t" ? "\t" : " " })
        let endOnLine = min(range.end, range.start + max(0, text.utf8.count - (column - 1)))
        let width = max(1, String(decoding: range.file.bytes[range.start..<max(range.start, endOnLine)], as: UTF8.self).count)
        out += "    " + pad + "^" + String(repeating: "~", count: width - 1) + "\n"
    }
}
