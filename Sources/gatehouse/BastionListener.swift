import GatehouseBastion
import GatehouseCore
import Logging
import NIOCore
import ServiceLifecycle

/// Runs the SSH bastion inside the server's service group: binds it, checks live sessions
/// against their people every half second, and at shutdown stops it (ending and sealing live
/// sessions) before the audit publisher signs its last checkpoint.
struct BastionListener: Service {
    let server: BastionServer
    let listen: ListenAddress
    let logger: Logger

    func run() async throws {
        do {
            let address = try await self.server.start()
            // HOST:PORT as the other listeners print it (not NIO's "[IPv4]host/ip:port").
            let ip = address.ipAddress ?? self.listen.bindHost
            let shown = "\(ip.contains(":") ? "[\(ip)]" : ip):\(address.port ?? self.listen.port)"
            self.logger.notice("SSH bastion listening", metadata: ["address": "\(shown)", "host_key": "\(self.server.hostKeyLine)"])
        } catch {
            throw GatehouseError(.configInvalid, "cannot listen for SSH on \(self.listen): \(ServerRunner.describe(error, listen: self.listen))")
        }
        await cancelWhenGracefulShutdown {
            await self.server.enforce()
        }
        await self.server.stop()
    }
}
