import Foundation
import GatehouseCore
import GatehouseSSH
import GatehouseServices
import Logging
import NIOCore
import NIOSSH

/// One person's SSH connection to the bastion: the outcome of their authentication, and the
/// onward connection to the target, made once and shared by the connection's channels.
/// @unchecked Sendable: confined to its channel's event loop (every access is on it).
final class BastionConnection: @unchecked Sendable {
    let id: String
    let context: BastionContext
    let channel: any Channel
    let source: String?
    let sourceAddress: UInt128?
    var access: BastionService.Access?
    var target: TargetConnection?

    init(channel: any Channel, context: BastionContext) {
        self.id = Identifier.make(using: context.service.random)
        self.channel = channel
        self.context = context
        let ip = channel.remoteAddress?.ipAddress
        self.source = ip
        self.sourceAddress = ip.flatMap { try? IPPrefix(parsing: $0) }.map(\.first)
    }

    var logger: Logger {
        var l = self.context.logger
        l[metadataKey: "connection"] = "\(self.id)"
        return l
    }

    /// The source this connection holds a pre-authentication slot for, until it authenticates or closes.
    private var admitted: String?

    /// Lists the whole connection under its person, so that offboarding and the periodic check
    /// close it even when it carries only port forwardings.
    func register(userID: String, keyFingerprint: String? = nil) {
        let channel = self.channel
        self.context.service.registry.register(
            .init(id: BastionSessionRegistry.connectionPrefix + self.id, userID: userID, keyFingerprint: keyFingerprint) { _ in
                // Its sessions end first and tell the person why; the connection follows a moment later.
                channel.eventLoop.scheduleTask(in: .milliseconds(250)) { channel.close(promise: nil) }
            })
    }

    /// Gives the pre-authentication slot back (once).
    func authenticated() {
        if let source = self.admitted { self.context.limiter.release(source) }
        self.admitted = nil
    }

    static func install(on channel: any Channel, context: BastionContext, authenticationTimeout: TimeAmount, admitted: String) throws {
        let connection = BastionConnection(channel: channel, context: context)
        connection.admitted = admitted
        // First, so that nothing below can leave the pre-authentication slot or the registry entry behind.
        channel.closeFuture.whenComplete { _ in
            connection.authenticated()
            context.service.registry.unregister(id: BastionSessionRegistry.connectionPrefix + connection.id)
            connection.target?.close()
            connection.target = nil
        }
        var server = SSHServerConfiguration(hostKeys: [context.hostKey], userAuthDelegate: BastionAuthDelegate(connection: connection))
        server.maxAuthAttempts = 8
        let handler = NIOSSHHandler(role: .server(server), allocator: channel.allocator) { child, type in
            connection.childChannel(child, type: type)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(ConnectionErrorHandler(connection: connection))
        // A connection that has not authenticated in time is closed; so is one that was only
        // told why it may not go anywhere.
        channel.eventLoop.scheduleTask(in: authenticationTimeout) {
            if connection.access == nil { channel.close(promise: nil) }
        }
    }

    /// The onward connection for this connection's grant, made on first use.
    func targetConnection(for grant: BastionService.Grant) -> TargetConnection {
        if let target = self.target { return target }
        let target = TargetConnection(connection: self, grant: grant)
        self.target = target
        return target
    }

    /// A channel the person opened: sessions and, where the policy allows, port forwardings.
    func childChannel(_ child: any Channel, type: SSHChannelType) -> EventLoopFuture<Void> {
        let loop = child.eventLoop
        do {
            try child.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        } catch {
            return loop.makeFailedFuture(error)
        }
        switch (type, self.access) {
        case (.session, .denied(_, let message)?):
            return loop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(DeniedSessionHandler(message: message)) }
        case (.session, .allowed(let grant)?):
            let target = self.targetConnection(for: grant)
            return target.openChannel(type: .session).flatMap { outbound in
                loop.makeCompletedFuture { try SessionRelay.link(inbound: child, outbound: outbound, connection: self, grant: grant) }
            }.flatMapError { error in
                // The target could not be reached or refused us: say why, rather than a bare open failure.
                loop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        DeniedSessionHandler(message: target.failure ?? "\(grant.host) could not be reached: \(error)"))
                }
            }
        case (.directTCPIP(let request), .allowed(let grant)?) where grant.portForwarding:
            let target = self.targetConnection(for: grant)
            let promise = loop.makePromise(of: Void.self)
            let service = self.context.service
            promise.completeWithTask { try await service.forwarding(grant, to: request.targetHost, port: request.targetPort) }
            return promise.futureResult.flatMap {
                target.openChannel(type: type)
            }.flatMap { outbound in
                loop.makeCompletedFuture { try ForwardingRelay.link(inbound: child, outbound: outbound) }
            }
        default:
            self.logger.notice("channel refused", metadata: ["type": "\(type)"])
            return loop.makeFailedFuture(BastionError.channelRefused)
        }
    }
}

enum BastionError: Error {
    case channelRefused
    case certificateUnusable
}

/// Authenticates by public key only: the key's signature is checked by swift-nio-ssh before
/// this runs; here the key is matched to the Gatehouse certificate it was certified in.
/// @unchecked Sendable: used on its connection's event loop only.
final class BastionAuthDelegate: NIOSSHServerUserAuthenticationDelegate, @unchecked Sendable {
    let connection: BastionConnection
    init(connection: BastionConnection) { self.connection = connection }

    var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .publicKey }

    func requestReceived(request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
        guard case .publicKey(let offer) = request.request, let key = try? SSHPublicKey(authorizedKey: String(openSSHPublicKey: offer.publicKey))
        else {
            responsePromise.succeed(.failure)
            return
        }
        let connection = self.connection
        let service = connection.context.service
        let userName = request.username
        let lookup = responsePromise.futureResult.eventLoop.makePromise(of: BastionService.Access?.self)
        lookup.completeWithTask {
            try await service.authenticate(
                keyFingerprint: key.fingerprint, userName: userName, source: connection.source, sourceAddress: connection.sourceAddress)
        }
        lookup.futureResult.whenComplete { result in
            switch result {
            case .success(let access?):
                connection.access = access
                connection.authenticated()
                let channel = connection.channel
                switch access {
                case .denied(let identity, let message):
                    connection.logger.notice("denied", metadata: ["user_name": "\(userName)", "reason": "\(message)"])
                    connection.register(userID: identity.user.id)
                    // Long enough to read the reason; a denied connection holds nothing open.
                    channel.eventLoop.scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
                case .allowed(let grant):
                    connection.register(userID: grant.identity.user.id, keyFingerprint: grant.identity.keyFingerprint)
                }
                responsePromise.succeed(.success)
            case .success(nil):
                connection.logger.info("unknown key", metadata: ["user_name": "\(userName)", "key": "\(key.fingerprint)"])
                responsePromise.succeed(.failure)
            case .failure(let error):
                connection.logger.error("authentication failed", metadata: ["error": "\(error)"])
                responsePromise.succeed(.failure)
            }
        }
    }
}

/// Closes the connection on any error that reaches the end of its pipeline.
final class ConnectionErrorHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    let connection: BastionConnection
    init(connection: BastionConnection) { self.connection = connection }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.connection.logger.info("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
