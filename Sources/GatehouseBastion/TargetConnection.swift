import Crypto
import Foundation
import GatehouseCore
import GatehouseSSH
import GatehouseServices
import NIOCore
import NIOPosix
import NIOSSH

/// The bastion's SSH connection to a target host, on behalf of one person's connection: a
/// fresh Ed25519 key, a one-minute certificate for exactly LOGIN@HOST, and the target's host
/// key checked against the key it enrolled with. Made once, on the first channel, on the
/// person's connection's event loop, so relaying never crosses threads.
/// @unchecked Sendable: confined to that event loop.
final class TargetConnection: @unchecked Sendable {
    private enum State {
        case idle
        case connecting(EventLoopFuture<NIOSSHHandler>)
        case closed
    }

    let connection: BastionConnection
    let grant: BastionService.Grant
    private var state: State = .idle
    private var channel: (any Channel)?
    /// Why the target could not be used, in words for the person (host key mismatch, refused certificate).
    var failure: String?

    /// The bastion's key for this target connection, made fresh, never stored.
    private let key = Curve25519.Signing.PrivateKey()
    private var issued: EventLoopFuture<NIOSSHCertifiedPublicKey>?
    private var issuedAt = NIODeadline.distantPast

    init(connection: BastionConnection, grant: BastionService.Grant) {
        self.connection = connection
        self.grant = grant
    }

    /// The one-minute certificate for `key`, issued (and audited) when first needed and again
    /// when a later reconnection would find it older than 30 seconds.
    private func certificate() -> EventLoopFuture<NIOSSHCertifiedPublicKey> {
        if let issued = self.issued, NIODeadline.now() - self.issuedAt < .seconds(30) { return issued }
        self.issuedAt = .now()
        let loop = self.connection.channel.eventLoop
        let grant = self.grant
        let service = self.connection.context.service
        let session = self.connection.id
        let publicKey = SSHPublicKey(self.key.publicKey)
        let line = loop.makePromise(of: String.self)
        line.completeWithTask { try await service.onwardCertificate(grant, publicKey: publicKey, session: session) }
        let issued = line.futureResult.flatMapThrowing { line -> NIOSSHCertifiedPublicKey in
            guard let certified = NIOSSHCertifiedPublicKey(try NIOSSHPublicKey(openSSHPublicKey: line)) else {
                throw BastionError.certificateUnusable
            }
            return certified
        }
        self.issued = issued
        return issued
    }

    /// Opens a channel on the target, connecting first if needed. A connection the target drops
    /// before the SSH session is up (sshd's MaxStartups shedding a burst) is tried again twice,
    /// after 150 and 300 ms; a wrong host key or a refused certificate is not.
    func openChannel(type: SSHChannelType, attempt: Int = 0) -> EventLoopFuture<any Channel> {
        let loop = self.connection.channel.eventLoop
        return self.handler().flatMap { handler in
            let promise = loop.makePromise(of: (any Channel).self)
            handler.createChannel(promise, channelType: type) { child, _ in
                child.eventLoop.makeCompletedFuture {
                    try child.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                    try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                }
            }
            return promise.futureResult
        }.flatMapError { error in
            // The target refusing the channel itself (MaxSessions, a forwarding it does not allow) is an answer, not a dropped connection.
            let rejected = (error as? NIOSSHError)?.type == .channelSetupRejected
            guard !rejected, self.failure == nil, attempt < 2, self.connection.channel.isActive, !self.isClosed else {
                return loop.makeFailedFuture(error)
            }
            if case .connecting = self.state { self.state = .idle }
            self.channel?.close(promise: nil)
            self.channel = nil
            self.connection.logger.info("target dropped the connection; trying again", metadata: ["host": "\(self.grant.host)", "error": "\(error)"])
            return loop.scheduleTask(in: .milliseconds(150 * Int64(attempt + 1))) {}.futureResult.flatMap {
                self.openChannel(type: type, attempt: attempt + 1)
            }
        }
    }

    private var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    func close() {
        self.state = .closed
        self.channel?.close(promise: nil)
    }

    private func handler() -> EventLoopFuture<NIOSSHHandler> {
        let loop = self.connection.channel.eventLoop
        switch self.state {
        case .connecting(let future): return future
        case .closed: return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        case .idle: break
        }
        let grant = self.grant
        let key = self.key
        let future = self.certificate().flatMap { certified -> EventLoopFuture<any Channel> in
            let auth = OnwardUserAuth(
                target: self, login: grant.login, offer: .init(privateKey: NIOSSHPrivateKey(ed25519Key: key), certifiedKey: certified))
            let hostKey = HostKeyPin(target: self, expected: grant.hostKeyFingerprint)
            return ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let client = SSHClientConfiguration(userAuthDelegate: auth, serverAuthDelegate: hostKey)
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSHHandler(role: .client(client), allocator: channel.allocator, inboundChildChannelInitializer: nil))
                        try channel.pipeline.syncOperations.addHandler(TargetErrorHandler(target: self))
                    }
                }
                .connect(host: grant.address, port: grant.port)
        }.flatMap { channel -> EventLoopFuture<NIOSSHHandler> in
            self.channel = channel
            channel.closeFuture.whenComplete { _ in
                // A target connection that ends is replaced by the next channel that needs one;
                // only the person's connection ending (close()) ends this for good.
                guard self.channel === channel else { return }
                self.channel = nil
                if case .connecting = self.state { self.state = .idle }
            }
            if case .closed = self.state { channel.close(promise: nil) }
            return channel.pipeline.handler(type: NIOSSHHandler.self)
        }
        future.whenFailure { error in
            if self.failure == nil { self.failure = "\(grant.host) (\(grant.address):\(grant.port)) could not be reached: \(error)" }
            self.connection.logger.warning("target unusable", metadata: ["host": "\(grant.host)", "error": "\(self.failure ?? "")"])
        }
        self.state = .connecting(future)
        return future
    }
}

/// Offers the one-minute certificate once; if the target asks again, it refused it.
final class OnwardUserAuth: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    let target: TargetConnection
    let login: String
    var offer: NIOSSHUserAuthenticationOffer.Offer.PrivateKey?

    init(target: TargetConnection, login: String, offer: NIOSSHUserAuthenticationOffer.Offer.PrivateKey) {
        self.target = target
        self.login = login
        self.offer = offer
    }

    func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        guard let offer = self.offer, availableMethods.contains(.publicKey) else {
            let host = self.target.grant.host
            self.target.failure =
                "\(host) refused the bastion's certificate for \(self.login) (does its sshd trust Gatehouse's user CA, and allow the principal \(self.login)@\(host)? `gatehouse agent join` sets both)"
            nextChallengePromise.succeed(nil)
            return
        }
        self.offer = nil
        nextChallengePromise.succeed(.init(username: self.login, serviceName: "", offer: .privateKey(offer)))
    }
}

/// The target must present exactly the host key it enrolled with.
final class HostKeyPin: NIOSSHClientServerAuthenticationDelegate, @unchecked Sendable {
    let target: TargetConnection
    let expected: String
    init(target: TargetConnection, expected: String) {
        self.target = target
        self.expected = expected
    }

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        let presented = (try? SSHPublicKey(authorizedKey: String(openSSHPublicKey: hostKey)))?.fingerprint ?? "an unsupported key"
        guard ConstantTime.equals(Array(presented.utf8), Array(self.expected.utf8)) else {
            self.target.failure =
                "\(self.target.grant.host) presented host key \(presented), not the key it enrolled with (\(self.expected)): refusing to connect"
            validationCompletePromise.fail(BastionError.channelRefused)
            return
        }
        validationCompletePromise.succeed(())
    }
}

final class TargetErrorHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    let target: TargetConnection
    init(target: TargetConnection) { self.target = target }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.target.connection.logger.info("target connection error", metadata: ["host": "\(self.target.grant.host)", "error": "\(error)"])
        context.close(promise: nil)
    }
}
