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
                guard
                    let (latest, covered) = try? await self.store.read({ tx in
                        (try await tx.latestAuditSequence(), try await tx.checkpoints().last?.size ?? 0)
                    })
                else { continue }
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

    /// Writes, syncs and renames into place, then syncs the directory: after a power loss the
    /// head is the old note or the new one, never an empty or partial file.
    static func writeAtomically(_ text: String, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown)
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
