import Crypto
public import Foundation
import GatehouseCore
import GatehouseRecording
public import GatehouseServices
public import Logging
public import NIOCore
public import NIOPosix
public import NIOSSH

/// Gatehouse's SSH bastion: an SSH server (swift-nio-ssh) that authenticates people by the key
/// of their Gatehouse certificate, asks ``BastionService`` where each may go, connects onward
/// with a one-minute certificate to a target whose host key it knows, relays the session
/// faithfully and records it.
public final class BastionServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Where sealed recordings are written (created 0700 if missing).
        public var recordingsDirectory: String
        /// How long a person has to authenticate before the connection is closed.
        public var authenticationTimeout: TimeAmount = .seconds(30)
        /// Connections that have not authenticated yet, per source address and in all. More are
        /// closed at once, before the key exchange (its cost is what a flood of handshakes, the
        /// DHEat attack, spends): OpenSSH's MaxStartups and PerSourceMaxStartups, in spirit.
        public var maxUnauthenticatedPerSource = 16
        public var maxUnauthenticated = 256
        public init(host: String, port: Int, recordingsDirectory: String) {
            self.host = host
            self.port = port
            self.recordingsDirectory = recordingsDirectory
        }
    }

    let configuration: Configuration
    let context: BastionContext
    private let channel = LockedBox<(any Channel)?>(nil)

    /// - Parameter hostKey: the bastion's Ed25519 host key (raw 32-byte seed).
    public init(configuration: Configuration, service: BastionService, hostKey: [UInt8], logger: Logger) throws {
        self.configuration = configuration
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: hostKey)
        self.context = BastionContext(
            service: service, hostKey: NIOSSHPrivateKey(ed25519Key: key), recordings: configuration.recordingsDirectory, logger: logger,
            limiter: PreAuthenticationLimiter(perSource: configuration.maxUnauthenticatedPerSource, total: configuration.maxUnauthenticated))
    }

    /// The bastion's host key as a known_hosts / authorized_keys line.
    public var hostKeyLine: String { String(openSSHPublicKey: self.context.hostKey.publicKey) }

    /// Binds the listener; returns the bound address (the port when 0 was asked for).
    @discardableResult
    public func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> SocketAddress {
        try FileManager.default.createDirectory(
            atPath: self.configuration.recordingsDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let context = self.context
        let timeout = self.configuration.authenticationTimeout
        let limiter = self.context.limiter
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let source = PreAuthenticationLimiter.key(channel.remoteAddress?.ipAddress)
                guard limiter.admit(source) else {
                    context.logger.info("too many unauthenticated connections; closed", metadata: ["source": "\(source)"])
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try BastionConnection.install(on: channel, context: context, authenticationTimeout: timeout, admitted: source)
                }
            }
            .bind(host: self.configuration.host, port: self.configuration.port).get()
        self.channel.value = channel
        return channel.localAddress!
    }

    /// Stops accepting connections and ends every live session (each is sealed and audited).
    public func stop() async {
        let channel = self.channel.mutate { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await channel?.close()
        let registry = self.context.service.registry
        for entry in registry.live { entry.end("the bastion is shutting down") }
        // Give the sessions a moment to seal their recordings (synced, and recorded in the store).
        for _ in 0..<150 where !registry.live.isEmpty || registry.sealing > 0 { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Ends sessions of people who were locked or offboarded (on any replica), every half second.
    /// Every five seconds (and at once on start) it also keeps this process's sessions marked as
    /// running, and closes sessions whose process stopped without ending them.
    public func enforce() async {
        let beats = Int(BastionService.heartbeatInterval / .milliseconds(500))
        var tick = 0
        let clock = ContinuousClock()
        var lastBeat = clock.now
        // Before other replicas may take this one for stopped (and close its sessions' records),
        // a replica that cannot reach the store ends its sessions itself: none goes on unrecorded
        // in the store, and none is left unenforced while people may be locked meanwhile.
        let giveUp = Duration.seconds(BastionService.staleAfter) - BastionService.heartbeatInterval * 3
        while !Task.isCancelled {
            do { try await self.context.service.enforce() } catch {
                self.context.logger.warning("session check failed", metadata: ["error": "\(error)"])
            }
            if tick % beats == 0 {
                do {
                    try await self.context.service.heartbeat()
                    lastBeat = clock.now
                    await self.context.service.retryDeferredSeals()
                    try await self.closeInterruptedSessions()
                } catch {
                    self.context.logger.warning("session heartbeat failed", metadata: ["error": "\(error)"])
                    if clock.now - lastBeat > giveUp {
                        for entry in self.context.service.registry.live {
                            entry.end("this Gatehouse server has lost its store, so it cannot keep sessions on record")
                        }
                    }
                }
            }
            tick &+= 1
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Closes the sessions of stopped processes, sealing each recording as it is found on this
    /// server's disk (a file cut short still plays up to its last whole frame); one that is not
    /// here (another replica's disk) is closed without a digest, and says so.
    func closeInterruptedSessions() async throws {
        let service = self.context.service
        for record in try await service.interruptedSessions() {
            let path = (self.configuration.recordingsDirectory as NSString).appendingPathComponent("\(record.id).\(RecordingFormat.fileExtension)")
            // Hashing a large file blocks: on the thread pool, not the concurrency pool.
            let found =
                RecordingFormat.isValidID(record.id) ? try await NIOThreadPool.singleton.runIfActive { RecordingDigestCheck.fileDigest(path) } : nil
            let closed = try await service.closeInterrupted(
                record, sha256: found?.sha256, bytes: found?.bytes,
                note: found == nil ? "its recording is not on this server's disk" : nil)
            if closed {
                self.context.logger.notice(
                    "closed a session whose server stopped", metadata: ["session": "\(record.id)", "sealed": "\(found != nil)"])
            }
        }
    }
}

/// What every connection shares.
struct BastionContext: Sendable {
    let service: BastionService
    let hostKey: NIOSSHPrivateKey
    let recordings: String
    let logger: Logger
    let limiter: PreAuthenticationLimiter
}

/// Counts connections that have not authenticated yet, per source address and in all.
final class PreAuthenticationLimiter: Sendable {
    private let counts = LockedBox<(total: Int, bySource: [String: Int])>((0, [:]))
    let perSource: Int
    let total: Int

    init(perSource: Int, total: Int) {
        self.perSource = perSource
        self.total = total
    }

    /// The address a source is counted under: IPv4 addresses as they are, IPv6 by their /64 (one
    /// host has a whole /64 to pick addresses from).
    static func key(_ address: String?) -> String {
        guard let address else { return "?" }
        guard address.contains(":"), let prefix = try? IPPrefix(parsing: address) else { return address }
        return IPPrefix.format(prefix.first & ~((UInt128(1) << 64) - 1), ipv4: false) + "/64"
    }

    func admit(_ source: String) -> Bool {
        self.counts.mutate { c in
            guard c.total < self.total, c.bySource[source, default: 0] < self.perSource else { return false }
            c.total += 1
            c.bySource[source, default: 0] += 1
            return true
        }
    }

    /// The connection authenticated or closed.
    func release(_ source: String) {
        self.counts.mutate { c in
            c.total -= 1
            let n = c.bySource[source, default: 1] - 1
            c.bySource[source] = n > 0 ? n : nil
        }
    }
}
