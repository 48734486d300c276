import Foundation

// Glibc declares setns(2) and CLONE_NEWNET only under _GNU_SOURCE, which Swift's Glibc module
// does not define; both are declared here.
@_silgen_name("setns") private func c_setns(_ fd: Int32, _ nstype: Int32) -> Int32
private let CLONE_NEWNET: Int32 = 0x4000_0000

/// Creating and deleting the lab's namespaces with iproute2's `ip netns`. Only names with the
/// `weirlab-` prefix are accepted, so nothing else can be touched through here.
enum NamespaceControl {
    static func validate(_ name: String) throws {
        guard name.hasPrefix(LabRegistry.prefix), name.utf8.count <= 240, !name.contains("/"),
              name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw LabError.invalidNamespaceName(name)
        }
    }

    static func path(_ name: String) -> String { LabRegistry.netnsDirectory + "/" + name }

    static func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// `ip netns add NAME`; fails, without touching it, when the namespace already exists.
    static func add(_ name: String) throws {
        try validate(name)
        guard !exists(name) else { throw LabError.namespaceExists(name) }
        let ip = try LabCommand.ip()
        var attempt = 0
        while true {
            let result = try LabCommand.run(ip, ["netns", "add", name])
            if result.status == 0 { return }
            if result.stderr.contains("File exists") { throw LabError.namespaceExists(name) }
            // Concurrent first uses of /run/netns can race inside iproute2; try again briefly.
            attempt += 1
            if attempt >= 3 || exists(name) {
                throw LabError.commandFailed(command: "\(ip) netns add \(name)", status: result.status, stderr: result.stderr)
            }
            usleep(20_000)
        }
    }

    /// Deletes namespaces (those already gone are fine); throws naming any that are left.
    static func delete(_ names: [String]) throws {
        for name in names { try validate(name) }
        let present = names.filter(exists)
        guard !present.isEmpty else { return }
        let ip = try LabCommand.ip()
        _ = try? LabCommand.run(ip, ["-force", "-batch", "-"], stdin: present.map { "netns delete \($0)\n" }.joined())
        var left = present.filter(exists)
        for name in left { _ = try? LabCommand.run(ip, ["netns", "delete", name]) }
        left = left.filter(exists)
        guard left.isEmpty else { throw LabError.teardownIncomplete(left) }
    }
}

/// Code that runs inside a network namespace: each call gets a new thread of its own that enters
/// the namespace with `setns(open("/run/netns/NAME"), CLONE_NEWNET)` and ends with the work, so
/// no shared thread (Dispatch, Swift concurrency) ever changes namespace. Sockets made on such a
/// thread stay in that namespace for good.
public enum NamespaceThread {
    /// Starts a thread that enters `namespace` and then calls `body` with nil, or with the error
    /// that kept it from entering (the thread then is still in the caller's namespace and
    /// `body` must not do network work).
    static func start(in namespace: String, label: String, _ body: @escaping @Sendable (LabError?) -> Void) {
        let thread = Thread {
            body(enter(namespace))
        }
        thread.name = label
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Runs `body` inside `namespace` on a new thread and waits for it.
    public static func run<T: Sendable>(in namespace: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<Result<T, any Error>>()
        let done = DispatchSemaphore(value: 0)
        start(in: namespace, label: "weirlab-run") { error in
            if let error { box.set(.failure(error)) } else { box.set(Result { try body() }) }
            done.signal()
        }
        done.wait()
        return try box.take()!.get()
    }

    private static func enter(_ namespace: String) -> LabError? {
        do { try NamespaceControl.validate(namespace) } catch { return error as? LabError }
        let fd = open(NamespaceControl.path(namespace), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .enterFailed(namespace: namespace, errno: errno) }
        defer { close(fd) }
        guard c_setns(fd, CLONE_NEWNET) == 0 else { return .enterFailed(namespace: namespace, errno: errno) }
        return nil
    }
}

/// Runs blocking work on a new thread and awaits it, so it never blocks Swift concurrency's pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    // The thread hands the value over through a box the awaiting side empties, so the thread
    // keeps no reference to it (a `Lab`'s deinit must run when its owner lets it go).
    let box = ResultBox<Result<T, any Error>>()
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            func produce() { box.set(Result { try body() }) }  // temporaries end with the call
            produce()
            continuation.resume()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    return try box.take()!.get()
}

/// A value handed from one thread to another.
final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ new: T) { lock.lock(); value = new; lock.unlock() }
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
    /// The value, leaving the box empty.
    func take() -> T? { lock.lock(); defer { value = nil; lock.unlock() }; return value }
}

/// Reads and writes `/proc/sys` inside a namespace (`/proc/sys/net` shows the namespace of the
/// thread that opens it).
enum Sysctl {
    /// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`; a key starting with `/` is a path
    /// already (for keys holding interface names with dots).
    static func path(_ key: String) -> String {
        key.hasPrefix("/") ? key : "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
    }

    /// Writes `value` to `key` inside `namespace`; returns false when the key does not exist there.
    @discardableResult
    static func write(_ key: String, _ value: String, in namespace: String) throws -> Bool {
        try NamespaceThread.run(in: namespace) {
            let file = path(key)
            guard FileManager.default.fileExists(atPath: file) else { return false }
            let fd = open(file, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LabError.socketFailed(call: "open(\(file))", errno: errno) }
            defer { close(fd) }
            let bytes = Array((value + "\n").utf8)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw LabError.socketFailed(call: "write(\(file))", errno: errno) }
            return true
        }
    }

    /// The value of `key` inside `namespace`, or nil when it does not exist there.
    static func read(_ key: String, in namespace: String) throws -> String? {
        try NamespaceThread.run(in: namespace) {
            guard let data = FileManager.default.contents(atPath: path(key)) else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
