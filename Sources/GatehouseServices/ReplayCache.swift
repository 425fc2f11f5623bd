import Foundation

/// A bounded set of recently seen one-time values (client assertion `jti`s), each kept until
/// its own expiry. Per replica: a value replayed to another replica within its (at most five
/// minute) life is not caught here — documented in docs/oidc.md.
final class ReplayCache: Sendable {
    let capacity: Int
    let box = LockedBox<[String: Date]>([:])

    init(capacity: Int) { self.capacity = capacity }

    /// Records `value`; false if it is already present (a replay) or the cache is full of live values.
    func insert(_ value: String, until expiry: Date, now: Date) -> Bool {
        self.box.mutate { seen in
            if let existing = seen[value], existing > now { return false }
            if seen.count >= self.capacity {
                seen = seen.filter { $0.value > now }
                guard seen.count < self.capacity else { return false }
            }
            seen[value] = expiry
            return true
        }
    }
}
