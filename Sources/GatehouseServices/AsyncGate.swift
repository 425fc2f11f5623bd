/// A first-in, first-out mutual exclusion for async code: at most one body runs at a time.
/// Used to serialize transactions where the backend allows only one writer (SQLite, memory).
public actor AsyncGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func withExclusiveAccess<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await self.acquire()
        do {
            let value = try await body()
            self.release()
            return value
        } catch {
            self.release()
            throw error
        }
    }

    private func acquire() async {
        if !self.busy {
            self.busy = true
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    private func release() {
        if self.waiters.isEmpty {
            self.busy = false
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}
