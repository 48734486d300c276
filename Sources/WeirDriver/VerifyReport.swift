import Foundation
import WeirModel
import WeirSimulator
import WeirVerifier

/// How `weir verify` prints an equivalence result: one line when the rulesets are equivalent;
/// else the packet, both traces side by side and both outcomes; or the same as JSON.
public enum VerifyReport {
    /// `equivalent: A ≡ B (N classes, 0.12 s)` or `not equivalent: A ≢ B (…)`, with "on every
    /// host" when the check was for every possible host.
    public static func summary(_ inputs: VerifyInputs, _ result: EquivalenceResult) -> String {
        let relation = result.equivalent ? "equivalent: \(inputs.left.label) ≡ \(inputs.right.label)"
                                         : "not equivalent: \(inputs.left.label) ≢ \(inputs.right.label)"
        var line = relation + " (\(result.classes) classes, \(String(format: "%.2f", result.seconds)) s)"
        if inputs.host == nil { line += " on every host" }
        return line
    }

    /// The host a counterexample holds on: the check's, or the one found with it.
    static func host(_ inputs: VerifyInputs, _ counterexample: Counterexample) -> HostModel {
        counterexample.host ?? inputs.host ?? .empty
    }

    /// The two simulator traversals of a counterexample, left and right.
    public static func traversals(_ inputs: VerifyInputs, _ counterexample: Counterexample) -> (left: Traversal, right: Traversal) {
        let host = host(inputs, counterexample)
        let left = Simulator(ruleset: inputs.left.ruleset, host: host).simulate(counterexample.packet, from: counterexample.origin)
        let right = Simulator(ruleset: inputs.right.ruleset, host: host).simulate(counterexample.packet, from: counterexample.origin)
        return (left, right)
    }

    /// `lo 10.0.0.5/32; eth* 198.51.100.1/32; routes 203.0.113.9/32 via eth*`: a found host.
    public static func hostLine(_ host: HostModel) -> String {
        var parts = host.interfaces.map { i in ([i.name] + i.addresses.map { "\($0)" }).joined(separator: " ") }
        if !host.extraRoutes.isEmpty {
            parts.append("routes " + host.extraRoutes.map { "\($0.destination) via \($0.interface)" }.joined(separator: ", "))
        }
        return parts.joined(separator: "; ")
    }

    /// Nil when the simulator gives the counterexample the outcomes the verifier claims; else
    /// a message saying where they differ (a bug of the verifier or of the simulator).
    public static func simulatorDisagreement(_ inputs: VerifyInputs, _ counterexample: Counterexample) -> String? {
        let (left, right) = traversals(inputs, counterexample)
        var problems: [String] = []
        if counterexample.host != nil && ObservableOutcome(left) == ObservableOutcome(right) {
            problems.append("the host found with it does not show the difference (\(ObservableOutcome(left)) on both sides)")
        }
        for (label, claimed, traversal) in [(inputs.left.label, counterexample.left, left), (inputs.right.label, counterexample.right, right)]
        where ObservableOutcome(traversal) != claimed {
            problems.append("\(label): the verifier says \(claimed), the simulator \(ObservableOutcome(traversal))")
        }
        return problems.isEmpty ? nil : "the simulator disagrees with the counterexample: " + problems.joined(separator: "; ")
    }

    /// `IN=enp0s8 SRC=… DST=… PROTO=TCP SPT=… DPT=… STATE=NEW` (or `from a local process SRC=…`).
    public static func packetLine(_ counterexample: Counterexample) -> String {
        let from = switch counterexample.origin {
        case .interface(let name): "IN=\(name)"
        case .local: "from a local process"
        }
        return "\(from) \(counterexample.packet) STATE=\(counterexample.packet.state.rawValue)"
    }

    /// The text report (ends with a newline).
    public static func text(_ inputs: VerifyInputs, _ result: EquivalenceResult) -> String {
        var out = summary(inputs, result) + "\n"
        guard let counterexample = result.counterexample else { return out }
        out += "counterexample: \(packetLine(counterexample))\n"
        if let host = counterexample.host { out += "on the host: \(hostLine(host))\n" }
        let (left, right) = traversals(inputs, counterexample)
        let leftLines = [inputs.left.label] + TraceFormat.text(left).split(separator: "\n").map(String.init)
        let rightLines = [inputs.right.label] + TraceFormat.text(right).split(separator: "\n").map(String.init)
        let width = leftLines.map(\.count).max() ?? 0
        for index in 0..<max(leftLines.count, rightLines.count) {
            let l = index < leftLines.count ? leftLines[index] : ""
            let r = index < rightLines.count ? rightLines[index] : ""
            var row = l.padding(toLength: width, withPad: " ", startingAt: 0) + " | " + r
            while row.hasSuffix(" ") { row.removeLast() }
            out += row + "\n"
        }
        out += "\(inputs.left.label): \(counterexample.left)\n"
        out += "\(inputs.right.label): \(counterexample.right)\n"
        return out
    }

    /// `{"equivalent": …, "classes": …, "seconds": …}` plus, when not equivalent,
    /// `"counterexample"`, `"left"` and `"right"`; keys sorted.
    public static func json(_ inputs: VerifyInputs, _ result: EquivalenceResult) -> String {
        var object: [String: Any] = [
            "equivalent": result.equivalent,
            "classes": result.classes,
            "seconds": (result.seconds * 1000).rounded() / 1000,
        ]
        if let counterexample = result.counterexample {
            let (left, _) = traversals(inputs, counterexample)
            let p = counterexample.packet
            var packet: [String: Any] = [
                "in": { if case .interface(let name) = counterexample.origin { name } else { NSNull() } }() as Any,
                "out": left.exitInterface.map { $0 as Any } ?? NSNull(),
                "src": "\(p.source)", "dst": "\(p.destination)", "proto": protocolName(p.transport),
                "state": p.state.rawValue.lowercased(),
            ]
            packet["sport"] = p.transport.hasPorts ? Int(p.sourcePort) : NSNull()
            packet["dport"] = p.transport.hasPorts ? Int(p.destinationPort) : NSNull()
            object["counterexample"] = packet
            if let host = counterexample.host {
                object["host"] = [
                    "interfaces": host.interfaces.map { ["name": $0.name, "addresses": $0.addresses.map { "\($0)" }] as [String: Any] },
                    "routes": host.extraRoutes.map { ["destination": "\($0.destination)", "interface": $0.interface] },
                ] as [String: Any]
            }
            object["left"] = outcome(counterexample.left)
            object["right"] = outcome(counterexample.right)
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `{"fate": …, "interface": …}` and, when the packet gets through, its final header.
    static func outcome(_ outcome: ObservableOutcome) -> [String: Any] {
        var object: [String: Any]
        switch outcome.fate {
        case .deliveredLocally: object = ["fate": "delivered locally", "interface": NSNull()]
        case .forwarded(let name): object = ["fate": "forwarded", "interface": name]
        case .sent(let name): object = ["fate": "sent", "interface": name]
        case .dropped: object = ["fate": "dropped", "interface": NSNull()]
        case .unroutable: object = ["fate": "unroutable", "interface": NSNull()]
        }
        if let p = outcome.packet {
            object["src"] = "\(p.source)"
            object["dst"] = "\(p.destination)"
            object["sport"] = p.transport.hasPorts ? Int(p.sourcePort) : NSNull()
            object["dport"] = p.transport.hasPorts ? Int(p.destinationPort) : NSNull()
        }
        return object
    }

    /// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or the number (as `weir trace --format json`).
    static func protocolName(_ transport: TransportProtocol) -> String {
        transport == .icmpv6 ? "icmpv6" : transport.description
    }
}
