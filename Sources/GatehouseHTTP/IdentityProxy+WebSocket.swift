import Foundation
import GatehouseCore
import GatehousePolicy
import GatehouseServices
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import NIOCore

/// WebSockets through the identity-aware proxy. The upgrade is decided before it happens, with
/// the same checks as any proxied request (live sign-in, policy allow, audit); an admitted
/// connection is relayed message by message to a WebSocket opened to the upstream, which gets
/// the identity assertion in its handshake. A refused upgrade is not upgraded: the request
/// then takes the ordinary HTTP path and gets its redirect or 403 there.
extension IdentityProxy {
    static let maxMessage = 1 << 20

    func webSocketUpgrade(_ head: HTTPRequest, channel: any Channel) async -> ShouldUpgradeResult<
        WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    > {
        let rawPath = head.path ?? "/"
        let path = String(rawPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
        guard let app = self.match(authority: head.authority, path: path), let upstream = app.upstream else { return .dontUpgrade }
        // The same canonical-path rule as plain requests, before anything is decided: a
        // `/wiki/../secret/ws` must not be upgraded under the wiki's rule and resolved upstream
        // to another app. Not upgraded, the request takes the HTTP path and gets its 400 there.
        guard Self.isCanonicalPath(path) else { return .dontUpgrade }
        let cookies = head.headerFields[values: .cookie].joined(separator: "; ")
        do {
            let found: (User, SessionRecord)?
            if app.proxyHost != nil {
                found = try await self.hostSession(cookie: Self.cookie(cookies, named: self.hostCookie), app: app)
            } else if let token = Self.cookie(cookies, named: WebAuthnRoutes.cookieName(secure: self.secure)) {
                found = try await self.passkeys.authenticate(sessionToken: token)
            } else {
                found = nil
            }
            guard let (user, session) = found else { return .dontUpgrade }
            // Browsers send the page's origin with a WebSocket handshake and cookies ride along
            // from any site: only the app's own pages may open one.
            if let origin = head.headerFields[.origin] {
                let expected = self.publicURL.scheme + "://" + self.publicHost(of: app)
                let implicitPort = self.publicURL.port == nil
                guard
                    origin.lowercased() == expected.lowercased()
                        || (implicitPort && origin.lowercased() == expected.lowercased() + ":" + (self.publicURL.scheme == "https" ? "443" : "80"))
                else {
                    return .dontUpgrade
                }
            }
            let address = GatehouseRequestContext.clientAddress(
                peer: channel.remoteAddress?.ipAddress, forwardedFor: head.headerFields[values: .init("X-Forwarded-For")!],
                trusted: self.trustedProxies)
            guard let assertion = try await self.admit(user: user, session: session, app: app, address: address) else { return .dontUpgrade }
            var headers = HTTPFields()
            headers[.init(Self.assertionHeader)!] = assertion
            if let address { headers[.init("X-Forwarded-For")!] = address }
            headers[.init("X-Forwarded-Proto")!] = self.publicURL.scheme
            let kept = cookies.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { part in !part.isEmpty && !Self.ownCookies.contains { part.hasPrefix($0 + "=") } }
            if !kept.isEmpty { headers[.cookie] = kept.joined(separator: "; ") }
            // No Origin of ours: the WebSocket client always sends one (the upstream URL's), and a
            // second would make the handshake ambiguous. The browser's was checked above.
            let base = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
            let target = (base.hasPrefix("https://") ? "wss://" + base.dropFirst(8) : "ws://" + base.dropFirst(7)) + rawPath
            let handshake = headers
            return .upgrade([:]) { inbound, outbound, context in
                try await WebSocketClient.connect(
                    url: target, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: handshake), logger: context.logger
                ) { upIn, upOut, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: Self.maxMessage) { try await upOut.write(Self.frame(message)) }
                        }
                        group.addTask {
                            for try await message in upIn.messages(maxSize: Self.maxMessage) { try await outbound.write(Self.frame(message)) }
                        }
                        // The connection lives only as long as the access: once a second, the
                        // session must still be live, the account active and the policy allowing.
                        group.addTask {
                            while true {
                                try await Task.sleep(for: .seconds(1))
                                guard try await self.stillAdmitted(user: user, session: session, app: app) else { return }
                            }
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

    func stillAdmitted(user: User, session: SessionRecord, app: PolicyDefinitions.App) async throws -> Bool {
        let now = self.environment.time.now()
        let live = try await self.environment.store.read { tx -> Bool in
            guard let s = try await tx.session(tokenHash: session.tokenHash), s.isLive(at: now), try await tx.user(id: user.id)?.status == .active
            else { return false }
            return true
        }
        return live
            && self.oidc.policyDenial(user: user, app: app.name, lastStepUp: session.steppedUpAt).map { denial in
                if case .sourceNotAllowed = denial.reason { return true }  // the source was checked at the handshake
                return false
            } ?? true
    }

    static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let bytes): .binary(bytes)
        }
    }
}
