import Synchronization

/// Records the names of the C functions WeirNetlink calls, in order, so tests can check a call
/// sequence without root. Off by default: funnels record only while a recorder is installed
/// for the current task with `record(_:)` (a task-local value, so parallel tests do not mix).
public final class CallRecorder: Sendable {
    private let names = Mutex<[String]>([])

    public init() {}

    /// The C functions called so far (`nftnl_rule_alloc`, `mnl_socket_sendto`, …).
    public var calls: [String] { names.withLock { $0 } }

    /// Runs `body` with this recorder installed for the current task (and the tasks it creates).
    public func record<T>(_ body: () throws -> T) rethrows -> T {
        CallRecorder.installed.add(1, ordering: .relaxed)
        defer { CallRecorder.installed.subtract(1, ordering: .relaxed) }
        return try CallRecorder.$current.withValue(self) { try body() }
    }

    @TaskLocal static var current: CallRecorder?
    /// How many recorders are installed anywhere: lets a funnel skip the task-local lookup
    /// (the common case) with one relaxed load.
    static let installed = Atomic<Int>(0)

    func append(_ name: StaticString) {
        let text = name.description
        names.withLock { $0.append(text) }
    }
}
