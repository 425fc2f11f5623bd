import Foundation
import GatehouseServices
import Logging
import ServiceLifecycle

/// Publishes signed audit checkpoints: at start, whenever `everyEntries` new entries have
/// accumulated or `everySeconds` have passed with new entries, and once more at shutdown.
/// Every note this process signs is also written to `DATA_DIR/audit-head` (0600, replaced
/// atomically; see ``AuditLog``'s `onPublish`), a copy outside the database that
/// `gatehouse audit verify` trusts: rolling the database back to an older, internally
/// consistent state is then detected.
struct CheckpointPublisher: Service {
    let log: AuditLog
    let store: any Store
    let logger: Logger
    var everyEntries: Int64 = 1000
    var everySeconds: Double = 60

    func run() async throws {
        await self.publish()
        await cancelWhenGracefulShutdown {
            var lastPublished = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard let (latest, covered) = try? await self.store.read({ tx in
                    (try await tx.latestAuditSequence(), try await tx.checkpoints().last?.size ?? 0)
                }) else { continue }
                let pending = latest - covered
                if pending >= self.everyEntries || (pending > 0 && ContinuousClock.now - lastPublished >= .seconds(self.everySeconds)) {
                    await self.publish()
                    lastPublished = ContinuousClock.now
                }
            }
        }
        await self.publish()  // at shutdown: the last entries get a signature too
    }

    func publish() async {
        do {
            guard let checkpoint = try await self.log.publishCheckpoint() else { return }
            self.logger.info("audit checkpoint", metadata: ["size": "\(checkpoint.size)"])
        } catch {
            self.logger.error("could not publish an audit checkpoint", metadata: ["error": "\(error)"])
        }
    }

    static func writeAtomically(_ text: String, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown)
        }
    }
}
