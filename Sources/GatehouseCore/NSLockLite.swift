import Foundation

/// A tiny lock wrapper so core types can guard state without pulling in NIO.
final class NSLockLite: @unchecked Sendable {
    // @unchecked: NSLock is thread-safe; the class only forwards to it.
    private let lock = NSLock()

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body()
    }
}
