import Foundation

/// A value guarded by a lock, for the few places that share small mutable state across tasks.
public final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `stored` is only read or written while `lock` is held.
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { self.stored = value }

    public var value: Value {
        get {
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.stored
        }
        set {
            self.lock.lock()
            defer { self.lock.unlock() }
            self.stored = newValue
        }
    }

    public func mutate<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.stored)
    }
}
