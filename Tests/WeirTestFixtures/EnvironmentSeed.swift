import Foundation

/// A test run's seed from the environment: the variable's value (decimal or `0x`-hex UInt64),
/// else `fallback`. A value that is neither stops the run, naming the variable.
public enum EnvironmentSeed {
    public static func read(_ name: String, fallback: UInt64) -> UInt64 {
        guard let text = ProcessInfo.processInfo.environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return fallback
        }
        let parsed = text.lowercased().hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let parsed else { fatalError("\(name) must be a decimal or 0x-hex UInt64, not '\(text)'") }
        return parsed
    }
}
