import GatehouseServices
import SQLKit
import SQLiteKit

/// Group commit for SQLite: write transactions that arrive while a commit is in flight are
/// batched into the next one, so many callers share one durable `COMMIT` (one WAL fsync with
/// `synchronous=FULL`) instead of paying one each.
///
/// Each caller's work runs inside its own `SAVEPOINT`: if it throws, only its changes are
/// rolled back and only it gets the error. Every caller is answered after the `COMMIT` that
/// made its work durable returns; if that `COMMIT` fails, every caller in the batch gets the
/// error and nothing of the batch is kept. So the guarantee is the same as one transaction per
/// caller: acknowledged means durable, refused means nothing written.
final class SQLiteGroupCommit: Sendable {
    struct Job: Sendable {
        let work: @Sendable (any SQLDatabase, AuditSequencer) async throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    struct Queue: Sendable {
        var jobs: [Job] = []
        var draining = false
    }

    let connection: SQLiteConnection
    let gate: AsyncGate
    /// Most jobs in one transaction; bounds the work lost to one failed `COMMIT`.
    let maxBatch = 512
    private let queue = LockedBox(Queue())

    init(connection: SQLiteConnection, gate: AsyncGate) {
        self.connection = connection
        self.gate = gate
    }

    func submit<T: Sendable>(_ work: @escaping @Sendable (any SQLDatabase, AuditSequencer) async throws -> T) async throws -> T {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let shouldDrain = self.queue.mutate { queue -> Bool in
                queue.jobs.append(Job(work: { try await work($0, $1) }, continuation: continuation))
                if queue.draining { return false }
                queue.draining = true
                return true
            }
            if shouldDrain {
                Task { await self.drain() }
            }
        }
        return value as! T  // each job's continuation carries exactly the T its work returned
    }

    private func drain() async {
        while true {
            let batch = self.queue.mutate { queue -> [Job] in
                let batch = Array(queue.jobs.prefix(self.maxBatch))
                queue.jobs.removeFirst(batch.count)
                if batch.isEmpty { queue.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            await self.run(batch)
        }
    }

    /// Runs a batch in one transaction. The fast path runs every job back to back; if one
    /// throws, the transaction is rolled back and the batch runs again with each job inside
    /// its own savepoint, so the failing job loses only its own changes. (Job bodies are
    /// functions of the transaction's state, so running one again is safe.)
    private func run(_ batch: [Job]) async {
        let outcome: Result<[Result<any Sendable, any Error>], any Error>
        do {
            outcome = .success(
                try await self.gate.withExclusiveAccess {
                    if let results = try await self.attempt(batch, isolated: false) { return results }
                    return try await self.attempt(batch, isolated: true)!
                })
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let results):
            for (job, result) in zip(batch, results) { job.continuation.resume(with: result) }
        case .failure(let error):
            for job in batch { job.continuation.resume(throwing: error) }
        }
    }

    /// One transaction over `batch`. Without isolation, returns nil (after rolling back) as soon
    /// as a job throws. With isolation, every job gets its own savepoint and its own outcome.
    /// Throws when the transaction itself cannot begin or commit: then nothing was kept.
    private func attempt(_ batch: [Job], isolated: Bool) async throws -> [Result<any Sendable, any Error>]? {
        let db = self.connection.sql(queryLogLevel: .trace)
        try await db.raw("BEGIN IMMEDIATE").run()
        do {
            let sequencer = AuditSequencer(next: try await SQLTransaction.latestSequence(db) + 1)
            var results: [Result<any Sendable, any Error>] = []
            results.reserveCapacity(batch.count)
            for job in batch {
                if !isolated {
                    do {
                        results.append(.success(try await job.work(db, sequencer)))
                    } catch {
                        try? await db.raw("ROLLBACK").run()
                        return nil
                    }
                    continue
                }
                let mark = sequencer.next
                do {
                    try await db.raw("SAVEPOINT gatehouse_job").run()
                    let value = try await job.work(db, sequencer)
                    try await db.raw("RELEASE gatehouse_job").run()
                    results.append(.success(value))
                } catch {
                    // If SQLite already rolled back the whole transaction (full disk, I/O error),
                    // the savepoint is gone and these throw: the batch then fails as a whole,
                    // rather than letting later jobs run outside any transaction.
                    try await db.raw("ROLLBACK TO gatehouse_job").run()
                    try await db.raw("RELEASE gatehouse_job").run()
                    sequencer.next = mark
                    results.append(.failure(error))
                }
            }
            try await db.raw("COMMIT").run()
            return results
        } catch {
            try? await db.raw("ROLLBACK").run()
            throw error
        }
    }
}

/// Hands out audit sequence numbers within one batch, so each job need not query the maximum.
final class AuditSequencer: @unchecked Sendable {
    // @unchecked: used only by the one task running a batch, under the store's gate.
    var next: Int64

    init(next: Int64) { self.next = next }
}
