public import Foundation

/// Where core code gets the current time from. Core never reads the wall clock itself;
/// the composition root passes ``SystemTimeSource`` and tests pass a fixed or stepped source.
public protocol TimeSource: Sendable {
    func now() -> Date
}

/// The operating system's wall clock.
public struct SystemTimeSource: TimeSource {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that stays where a test puts it.
public final class ManualTimeSource: TimeSource, @unchecked Sendable {
    // @unchecked: the one mutable field is guarded by `lock`.
    private let lock = NSLockLite()
    private var current: Date

    public init(_ start: Date) { self.current = start }

    public func now() -> Date { self.lock.withLock { self.current } }

    public func advance(by seconds: TimeInterval) {
        self.lock.withLock { self.current = self.current.addingTimeInterval(seconds) }
    }
}
