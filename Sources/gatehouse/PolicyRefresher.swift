import GatehouseServices
import Logging
import ServiceLifecycle

/// Keeps the active policy current when another replica (sharing PostgreSQL) applies a new
/// version: one indexed read every `interval`, a reload only when the version changed.
struct PolicyRefresher: Service {
    let policy: PolicyService
    let logger: Logger
    var interval: Duration = .seconds(2)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var seen = self.policy.active.info?.version
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                // Shutting down: the sleep ended early; checking now would only be cancelled.
                if Task.isCancelled { break }
                do {
                    let active = try await self.policy.refresh()
                    if active.info?.version != seen {
                        seen = active.info?.version
                        self.logger.notice("policy changed", metadata: ["version": "\(seen.map(String.init) ?? "none")"])
                    }
                } catch is CancellationError {
                    break
                } catch {
                    self.logger.warning("could not check for a new policy version", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
