import ArgumentParser
import Foundation
import WeirDiagnostics
import WeirDriver
import WeirLab
import WeirModel
import WeirSema

/// `weir lab`: a policy's host built out of network namespaces, to poke at by hand.
struct LabCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Build a policy's host out of network namespaces with its ruleset loaded, list labs, remove them.",
        discussion: """
            `up` makes, named weirlab-<pid>-<tag>-…, a host namespace (the policy's interfaces and \
            bridges, forwarding on, the compiled ruleset loaded), one namespace per external peer \
            cabled to each host interface, and one per container on its bridges. Nothing is made \
            in the root namespace. The lab stays until `weir lab down`. Needs root and iproute2 \
            (and iptables-restore for --target iptables).

            Examples:
              weir lab up Policies/docker-default.weir
              weir lab up Policies/docker-default.weir --target iptables
              weir lab list
              weir lab down             # every lab whose creating process is gone
              weir lab down 4711-9f3a0c21
              weir lab down --all       # also labs of processes still running (tests)
            """,
        subcommands: [LabUp.self, LabDown.self, LabList.self]
    )
}

struct LabUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Build a lab for a policy and load its ruleset into the lab's host namespace."
    )

    enum Target: String, ExpressibleByArgument, CaseIterable { case nft, iptables }

    @Argument(help: "The policy (.weir).")
    var policy: String

    @Option(help: "How to load the ruleset: nft (one netlink transaction) or iptables (iptables-restore).")
    var target: Target = .nft

    func run() throws {
        let loaded = PolicyLoader.load(path: policy)
        let (checked, semantic) = Checker.check(loaded.items)
        let result = Compiler.compile(path: policy, backends: target == .nft ? [.nftables] : [.iptables])
        let diagnostics = loaded.diagnostics + semantic
        printDiagnostics(result.diagnostics)
        guard let checked, !result.hasErrors, !diagnostics.contains(where: { $0.severity == .error }),
              let ruleset = result.ruleset else { throw ExitCode(1) }
        guard geteuid() == 0 else {
            printError("error: weir lab needs root (it creates network namespaces with ip netns)")
            throw ExitCode(1)
        }
        let topology: LabTopology
        do {
            topology = try LabTopology(policy: checked)
        } catch {
            printError("\(policy): error: \(error)")
            throw ExitCode(1)
        }

        let target = target
        let interrupted = InterruptFlag()
        // Interrupts are held from before the first namespace until the lab is kept and printed:
        // Lab.up deletes every namespace it made when a step or the ruleset fails, and an
        // interrupt meanwhile removes the finished lab as well.
        try interrupted.holdingSignals {
            let lab: Lab
            do {
                lab = try Lab.up(topology) { namespace in
                    switch target {
                    case .nft:
                        if case .failure(let error) = Deployer.apply(result.batch!, namespace: namespace) { throw error }
                    case .iptables:
                        let failures = Deployer.applyIptables(ruleset, artifacts: result.artifacts, namespace: namespace)
                        if !failures.isEmpty { throw DiagnosticError(failures) }
                    }
                }
            } catch let error as DiagnosticError {
                printDiagnostics(error.diagnostics)
                printError("error: the ruleset was not loaded; the lab's namespaces were removed")
                throw ExitCode(1)
            } catch {
                printError("error: \(error)")
                printError("the lab's namespaces were removed")
                throw ExitCode(1)
            }
            if interrupted.isSet {
                do { try lab.down() } catch { printError("error: \(error)") }
                printError("interrupted: the lab's namespaces were removed")
                throw ExitCode(130)
            }
            lab.keep()
            print(Self.describe(lab, policy: policy, target: target))
        }
    }

    /// Namespaces, addresses, and how to get into them.
    static func describe(_ lab: Lab, policy: String, target: Target) -> String {
        func addresses(_ prefixes: [Prefix]) -> String { prefixes.map(\.description).joined(separator: " ") }
        var rows: [(String, String, String)] = []
        var host: [String] = lab.topology.uplinks.map { "\($0.interface) \(addresses($0.addresses))" }
        host += lab.topology.bridges.map { "\($0.device) \(addresses($0.gateways))" }
        rows.append(("host", lab.hostNamespace, host.joined(separator: ", ")))
        for (index, peer) in lab.peers.enumerated() {
            rows.append(("peer\(index)", peer.namespace, "\(peer.interface) \(addresses(peer.addresses)) (cabled to \(peer.hostInterface))"))
        }
        for container in lab.containers {
            var text = container.interfaces.map { "\($0.name) \(addresses($0.addresses)) on \($0.bridge)" }.joined(separator: ", ")
            if !container.published.isEmpty {
                text += "; publishes " + container.published.map { p in
                    (p.hostAddress.map { "\($0):" } ?? "") + "\(p.hostPort)->\(p.containerPort)/\(p.transport)"
                }.joined(separator: " ")
            }
            rows.append((container.name, container.namespace, text))
        }
        let nameWidth = rows.map(\.0.count).max()! + 2
        let namespaceWidth = rows.map(\.1.count).max()! + 2
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }

        let loader = target == .nft ? "nftables, one transaction" : "iptables-restore"
        var out = "lab \(lab.id) is up: \(policy) loaded into \(lab.hostNamespace) (\(loader))\n"
        if lab.bridgeNetfilter == .unavailable {
            out += "note: this kernel has no br_netfilter: traffic between containers of one bridge bypasses the ruleset\n"
        }
        out += "\n"
        for row in rows { out += pad(row.0, nameWidth) + pad(row.1, namespaceWidth) + row.2 + "\n" }
        out += "\nenter a namespace:\n"
        out += "  ip netns exec \(lab.hostNamespace) bash\n"
        out += "  ip netns exec \(lab.hostNamespace) " + (target == .nft ? "nft list ruleset" : "iptables-save") + "\n"
        if let peer = lab.peers.first, let container = lab.containers.first(where: { !$0.published.isEmpty }),
           let published = container.published.first, let hostAddress = peer.hostAddress(published.hostAddress?.family ?? .ipv4) {
            let target = published.hostAddress.map { $0.isUnspecified ? hostAddress : $0 } ?? hostAddress
            out += "  ip netns exec \(container.namespace) python3 -m http.server \(published.containerPort)   # a server in \(container.name)\n"
            out += "  ip netns exec \(peer.namespace) curl \(SocketEndpoint(target, published.hostPort))   # from outside, through the published port\n"
        }
        out += "remove it:\n  weir lab down \(lab.id)\n"
        return out
    }
}

struct LabDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Remove labs: the named ones, else every lab whose creating process is gone (--all: every lab)."
    )

    @Argument(help: "Lab ids (owner-tag, as `weir lab up` and `weir lab list` print them).")
    var ids: [String] = []

    @Flag(help: "Also remove labs whose creating process is still running.")
    var all = false

    func validate() throws {
        for id in ids where LabID(id) == nil { throw ValidationError("'\(id)' is not a lab id (owner-tag)") }
        if all && !ids.isEmpty { throw ValidationError("give lab ids or --all, not both") }
    }

    func run() throws {
        let labs = LabRegistry.labs()
        let chosen: [LabRegistry.Record]
        if ids.isEmpty {
            chosen = labs.filter { all || !$0.ownerIsRunning }
            let kept = labs.count - chosen.count
            if kept > 0 { print("left \(kept) lab\(kept == 1 ? "" : "s") whose process is still running (--all removes them too)") }
        } else {
            let wanted = Set(ids.compactMap { LabID($0) })
            chosen = labs.filter { wanted.contains($0.id) }
            for id in wanted.subtracting(chosen.map(\.id)).sorted() { printError("no lab \(id)") }
        }
        var failed = false
        for record in chosen {
            do {
                let removed = try LabRegistry.remove(record.id)
                print("removed lab \(record.id) (\(removed.count) namespace\(removed.count == 1 ? "" : "s"))")
            } catch {
                printError("error: lab \(record.id): \(error)")
                failed = true
            }
        }
        if chosen.isEmpty && ids.isEmpty { print("no lab to remove") }
        if failed || (!ids.isEmpty && chosen.count < Set(ids).count) { throw ExitCode(1) }
    }
}

struct LabList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the labs on this machine.")

    func run() {
        let labs = LabRegistry.labs()
        if labs.isEmpty { print("no labs") }
        for lab in labs {
            let owner = lab.ownerIsRunning ? "process \(lab.id.owner) running" : "process gone"
            print("\(lab.id)  \(lab.namespaces.count) namespaces (\(owner)): \(lab.namespaces.joined(separator: " "))")
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP noted instead of acted on while a lab is being built, so the build
/// (or its own clean-up) finishes and the caller can remove what was made.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false

    var isSet: Bool { lock.withLock { set } }

    func holdingSignals<T>(_ body: () throws -> T) rethrows -> T {
        let signals = [SIGINT, SIGTERM, SIGHUP]
        var sources: [DispatchSourceSignal] = []
        var previous: [sig_t?] = []
        for number in signals {
            previous.append(signal(number, SIG_IGN))
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in lock.withLock { set = true } }
            source.resume()
            sources.append(source)
        }
        defer {
            for source in sources { source.cancel() }
            for (number, handler) in zip(signals, previous) { signal(number, handler) }
        }
        return try body()
    }
}
