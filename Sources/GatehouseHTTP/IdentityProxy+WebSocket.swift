import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird
import HummingbirdWebSocket
import HummingbirdWSClient
import NIOCore

/// WebSockets through the identity-aware proxy. The upgrade is decided before it happens, with
/// the same checks as any proxied request (live sign-in, policy allow, audit); an admitted
/// connection is relayed message by message to a WebSocket opened to the upstream, which gets
/// the identity assertion in its handshake. A refused upgrade is not upgraded: the request
/// then takes the ordinary HTTP path and gets its redirect or 403 there.
extension IdentityProxy {
    static let maxMessage = 16 << 20

    func webSocketUpgrade(_ head: HTTPRequest, channel: any Channel) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let rawPath = head.path ?? "/"
        let path = String(rawPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
        guard let app = self.match(authority: head.authority, path: path), let upstream = app.upstream else { return .dontUpgrade }
        let cookies = head.headerFields[values: .cookie].joined(separator: "; ")
        do {
            let found: (User, SessionRecord)?
            if app.proxyHost != nil {
                found = try await self.hostSession(cookie: Self.cookie(cookies, named: Self.hostCookie), app: app)
            } else if let token = Self.cookie(cookies, named: WebAuthnRoutes.cookieName) {
                found = try await self.passkeys.authenticate(sessionToken: token)
            } else {
                found = nil
            }
            guard let (user, session) = found else { return .dontUpgrade }
            let address = GatehouseRequestContext.clientAddress(peer: channel.remoteAddress?.ipAddress, forwardedFor: head.headerFields[values: .init("X-Forwarded-For")!],
                                                                trusted: self.trustedProxies)
            guard let assertion = try await self.admit(user: user, session: session, app: app, address: address) else { return .dontUpgrade }
            var headers = HTTPFields()
            headers[.init(Self.assertionHeader)!] = assertion
            if let address { headers[.init("X-Forwarded-For")!] = address }
            headers[.init("X-Forwarded-Proto")!] = self.publicURL.scheme
            let kept = cookies.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix(WebAuthnRoutes.cookieName + "=") && !$0.hasPrefix(Self.hostCookie + "=") }
            if !kept.isEmpty { headers[.cookie] = kept.joined(separator: "; ") }
            if let origin = head.headerFields[.origin] { headers[.origin] = origin }
            let base = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
            let target = (base.hasPrefix("https://") ? "wss://" + base.dropFirst(8) : "ws://" + base.dropFirst(7)) + rawPath
            let handshake = headers
            return .upgrade([:]) { inbound, outbound, context in
                try await WebSocketClient.connect(url: target, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: handshake), logger: context.logger) { upIn, upOut, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: Self.maxMessage) { try await upOut.write(Self.frame(message)) }
                        }
                        group.addTask {
                            for try await message in upIn.messages(maxSize: Self.maxMessage) { try await outbound.write(Self.frame(message)) }
                        }
                        // Either side closing ends the relay; the other side is then closed.
                        try await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            return .dontUpgrade
        }
    }

    static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let bytes): .binary(bytes)
        }
    }
}
