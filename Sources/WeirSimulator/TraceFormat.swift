import Foundation

/// Prints traversals: text in the kernel's TRACE log format, or JSON.
public enum TraceFormat {
    /// One line per step (`nat:PREROUTING:rule:1 IN=enp0s8 OUT= SRC=… DST=… PROTO=TCP SPT=… DPT=…`),
    /// then the outcome with the final addresses and ports.
    public static func text(_ traversal: Traversal) -> String {
        var out = ""
        for step in traversal.steps { out += step.description + "\n" }
        switch traversal.outcome {
        case .dropped, .unroutable:
            out += "\(traversal.outcome)\n"
        default:
            out += "\(traversal.outcome): \(traversal.packet)\n"
        }
        return out
    }

    /// The same as JSON: `{"steps": [...], "outcome": {...}, "packet": {...}}`.
    public static func json(_ traversal: Traversal) -> String {
        func packet(_ p: Packet) -> [String: Any] {
            var fields: [String: Any] = ["src": "\(p.source)", "dst": "\(p.destination)", "proto": p.protocolName.lowercased(), "state": p.state.rawValue.lowercased()]
            if p.transport.hasPorts {
                fields["sport"] = Int(p.sourcePort)
                fields["dport"] = Int(p.destinationPort)
            }
            return fields
        }
        let steps: [[String: Any]] = traversal.steps.map { step in
            ["table": step.table, "chain": step.chain, "kind": step.kind.rawValue, "number": step.number,
             "in": step.input ?? "", "out": step.output ?? "", "packet": packet(step.packet)]
        }
        var outcome: [String: Any]
        switch traversal.outcome {
        case .deliveredLocally: outcome = ["verdict": "delivered"]
        case .forwarded(let i): outcome = ["verdict": "forwarded", "interface": i]
        case .sent(let i): outcome = ["verdict": "sent", "interface": i]
        case .dropped(let at): outcome = ["verdict": "dropped", "at": at]
        case .unroutable: outcome = ["verdict": "unroutable"]
        }
        let object: [String: Any] = ["steps": steps, "outcome": outcome, "packet": packet(traversal.packet)]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
