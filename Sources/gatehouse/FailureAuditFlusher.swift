import GatehouseCore
import GatehouseServices
import Logging
import ServiceLifecycle

/// Writes the counts of repeated anonymous failures (see ``FailureAudit``) once their window has
/// passed, every 15 seconds, and everything still counted when the server stops.
struct FailureAuditFlusher: Service {
    let failures: FailureAudit
    let store: any Store
    let time: any TimeSource
    let logger: Logger
    var interval: Duration = .seconds(15)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                await self.write(self.failures.flush(at: self.time.now()))
            }
        }
        await self.write(self.failures.flush(at: self.time.now(), all: true))
    }

    func write(_ events: [AuditEvent]) async {
        do {
            try await FailureAudit.commit(events, to: self.store)
        } catch {
            self.logger.warning("could not write the counts of repeated failures", metadata: ["error": "\(error)", "events": "\(events.count)"])
        }
    }
}
