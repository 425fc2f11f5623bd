import AsyncHTTPClient
import Foundation
public import GatehouseCore
import GatehouseOIDC
import GatehousePolicy
public import GatehouseServices
public import Hummingbird
import NIOCore
import NIOHTTP1

/// The identity-aware proxy for apps that speak no OIDC. An `app` in the policy with an
/// `upstream` and a `path` (on Gatehouse's own origin) or a `host` (its own host name, pointed
/// at Gatehouse) is reached only by signed-in users the policy allows. Gatehouse strips every
/// identity header the client sent, and adds `X-Gatehouse-Assertion`: a JWT (60 s, signed by
/// the OIDC keys) naming the user, groups and roles, which the app verifies with the JWKS.
///
/// Path apps use the Gatehouse session cookie directly. Host apps cannot see it (another host),
/// so the browser makes one round trip through `/oauth2/proxy/start`, which hands back a
/// one-time MACed ticket; the app host turns it into its own cookie (``ProxyTicket``).
public struct IdentityProxy: Sendable {
    public static let assertionHeader = "X-Gatehouse-Assertion"
    /// The proxy's cookie on an app's own host: `__Host-gatehouse_proxy` over HTTPS.
    var hostCookie: String { self.secure ? "__Host-gatehouse_proxy" : "gatehouse_proxy" }
    var secure: Bool { self.publicURL.scheme == "https" }
    /// Gatehouse's cookie names, in both spellings: never forwarded, never accepted from an app.
    static let ownCookies = WebAuthnRoutes.cookieNames + ["gatehouse_proxy", "__Host-gatehouse_proxy"]
    static let callbackPath = "/.gatehouse/callback"

    /// Headers a client must never be able to set on the way to an app: ours, and the ones other
    /// proxies and apps commonly trust for identity.
    static let strippedRequestHeaders: Set<String> = [
        "x-gatehouse-assertion", "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
        "x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-remote-user", "remote-user", "x-webauth-user",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded",
    ]
    /// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded in either direction.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization",
        "host", "content-length",
    ]

    let oidc: OIDCService
    let passkeys: PasskeyService
    let environment: ServiceEnvironment
    let publicURL: PublicURL
    let ticketKey: [UInt8]
    let trustedProxies: [IPPrefix]
    let audited = LockedBox<Set<String>>([])
    let usedHandoffs = LockedBox<[String: Date]>([:])

    public init(
        oidc: OIDCService, passkeys: PasskeyService, environment: ServiceEnvironment, publicURL: PublicURL, ticketKey: [UInt8],
        trustedProxies: [IPPrefix]
    ) {
        self.oidc = oidc
        self.passkeys = passkeys
        self.environment = environment
        self.publicURL = publicURL
        self.ticketKey = ticketKey
        self.trustedProxies = trustedProxies
    }

    /// The proxied app this request is for, if any: by host name first, then by path prefix.
    func match(_ request: Request) -> PolicyDefinitions.App? {
        self.match(authority: request.head.authority, path: request.uri.path)
    }

    func match(authority: String?, path: String) -> PolicyDefinitions.App? {
        let apps = self.oidc.policy.active.policy.definitions.apps
        if let authority = authority?.lowercased() {
            let host = authority.hasPrefix("[") ? authority : String(authority.split(separator: ":").first ?? "")
            if host != self.publicURL.host, let app = apps.first(where: { $0.upstream != nil && $0.proxyHost == host }) { return app }
        }
        return apps.first { app in app.upstream != nil && app.proxyPath.map { path.hasPrefix($0) || path + "/" == $0 } == true }
    }

    func clientAddress(_ request: Request, _ context: GatehouseRequestContext) -> String? {
        context.clientAddress
    }

    func handle(_ request: Request, context: GatehouseRequestContext, app: PolicyDefinitions.App) async -> Response {
        guard Self.isCanonicalPath(request.uri.path) else {
            return JSONResponse.raw(
                .badRequest, Array("This path has dot-segments or encoded slashes; Gatehouse does not forward it.\n".utf8),
                contentType: "text/plain; charset=utf-8")
        }
        do {
            if let prefix = app.proxyPath, request.uri.path + "/" == prefix {
                return Self.redirect(prefix + (request.uri.query.map { "?" + $0 } ?? ""))
            }
            let found: (User, SessionRecord)?
            if app.proxyHost != nil {
                if request.uri.path == Self.callbackPath { return self.callback(request, app: app) }
                found = try await self.hostSession(request, app: app)
                guard let found else { return Self.redirect(self.startURL(app: app, request: request)) }
                return try await self.authorizeAndForward(request, context: context, app: app, user: found.0, session: found.1)
            }
            guard let token = WebAuthnRoutes.cookie(request, secure: self.secure),
                let (user, session) = try await self.passkeys.authenticate(sessionToken: token)
            else {
                return request.method == .get || request.method == .head
                    ? Self.redirect("/signin?return_to=" + FormParameters.encode(request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")))
                    : JSONResponse.error(GatehouseError(.unauthenticated, "sign in to Gatehouse first"))
            }
            return try await self.authorizeAndForward(request, context: context, app: app, user: user, session: session)
        } catch {
            return JSONResponse.error(GatehouseError(.storeFailure, "Gatehouse cannot check this request right now; try again"))
        }
    }

    /// Policy, audit, assertion, forward.
    func authorizeAndForward(_ request: Request, context: GatehouseRequestContext, app: PolicyDefinitions.App, user: User, session: SessionRecord)
        async throws -> Response
    {
        let address = self.clientAddress(request, context)
        guard let assertion = try await self.admit(user: user, session: session, app: app, address: address) else {
            let denial = self.oidc.policyDenial(user: user, app: app.name, sourceAddress: Self.numeric(address), lastStepUp: session.steppedUpAt)
            let message =
                "The access policy does not allow \(user.username) to use \(app.name) (\(denial?.description ?? "denied")). Ask an administrator if you need it."
            // A person in a browser gets the same page as the rest of Gatehouse; a program, the words.
            if request.headers[.accept]?.contains("text/html") == true {
                return PageRoutes.render(
                    PageRoutes.shared, "denied", title: "Not allowed",
                    [
                        "heading": "You cannot use \(app.name)", "message": message,
                        "account": self.publicURL.origin + "/account",
                    ], status: .forbidden)
            }
            return JSONResponse.raw(
                .forbidden, Array("You cannot use \(app.name): the access policy does not allow it (\(denial?.description ?? "denied")).\n".utf8),
                contentType: "text/plain; charset=utf-8")
        }
        return await self.forward(request, to: app, assertion: assertion, clientAddress: address)
    }

    static func numeric(_ address: String?) -> UInt128? { address.flatMap { try? IPPrefix(parsing: $0) }.map(\.first) }

    /// Asks the policy; audits a refusal every time and an admission once per session and app.
    /// Returns the identity assertion for an admitted request, nil for a refused one.
    func admit(user: User, session: SessionRecord, app: PolicyDefinitions.App, address: String?) async throws -> String? {
        let now = self.environment.time.now()
        if let denial = self.oidc.policyDenial(user: user, app: app.name, sourceAddress: Self.numeric(address), lastStepUp: session.steppedUpAt) {
            try await self.environment.store.commit { _ in
                Change(
                    (),
                    event: AuditEvent(
                        code: .oidcDenied, time: now, actor: .user(user.username), subject: .app(app.name), outcome: .denied,
                        reason: denial.description, requestID: Identifier.make(using: self.environment.random), sourceAddress: address))
            }
            return nil
        }
        let key = "\(session.tokenHash) \(app.name)"
        if self.audited.mutate({ seen in
            if seen.count >= 100_000 { seen.removeAll() }  // bounded: at worst an admission is audited twice
            return seen.insert(key).inserted
        }) {
            do {
                try await self.environment.store.commit { _ in
                    Change(
                        (),
                        event: AuditEvent(
                            code: .proxyAllowed, time: now, actor: .user(user.username), subject: .app(app.name),
                            requestID: Identifier.make(using: self.environment.random), sourceAddress: address,
                            details: ["session": PasskeyService.sessionID(session)]))
                }
            } catch {
                _ = self.audited.mutate { $0.remove(key) }  // not audited: refuse, and audit on the next try
                throw error
            }
        }
        return try await self.oidc.proxyAssertion(user: user, app: app.name)
    }

    func forward(_ request: Request, to app: PolicyDefinitions.App, assertion: String, clientAddress: String?) async -> Response {
        guard let upstream = app.upstream else { return Self.badGateway(app) }
        let base = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
        var out = HTTPClientRequest(url: base + request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""))
        out.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers {
            let name = field.name.canonicalName
            // Names with `_` are dropped too: CGI-style stacks read `X_Forwarded_User` as `X-Forwarded-User`.
            if Self.hopByHop.contains(name) || Self.strippedRequestHeaders.contains(name) || name.hasPrefix("x-gatehouse-") || name.contains("_") {
                continue
            }
            if name == "cookie" {
                let kept = field.value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { part in !Self.ownCookies.contains { part.hasPrefix($0 + "=") } }
                if !kept.isEmpty { out.headers.add(name: "Cookie", value: kept.joined(separator: "; ")) }
                continue
            }
            out.headers.add(name: field.name.rawName, value: field.value)
        }
        out.headers.add(name: Self.assertionHeader, value: assertion)
        if let clientAddress { out.headers.add(name: "X-Forwarded-For", value: clientAddress) }
        out.headers.add(name: "X-Forwarded-Proto", value: self.publicURL.scheme)
        out.headers.add(name: "X-Forwarded-Host", value: self.publicHost(of: app))
        if let length = request.headers[.contentLength].flatMap(Int.init) {
            out.body = .stream(request.body, length: .known(Int64(length)))
        } else if request.method != .get && request.method != .head {
            out.body = .stream(request.body, length: .unknown)
        }
        do {
            let response = try await HTTPClient.shared.execute(out, timeout: .seconds(300))
            var headers = HTTPFields()
            for (name, value) in response.headers
            where (!Self.hopByHop.contains(name.lowercased()) || name.lowercased() == "content-length") && Self.keepResponseHeader(name, value) {
                if let field = HTTPFields.Element.Name(name) { headers.append(HTTPFields.Element(name: field, value: value)) }
            }
            return Response(status: .init(code: Int(response.status.code)), headers: headers, body: ResponseBody(asyncSequence: response.body))
        } catch {
            return Self.badGateway(app)
        }
    }

    /// The host (and port) users reach `app` at, from configuration, never from the request.
    func publicHost(of app: PolicyDefinitions.App) -> String {
        (app.proxyHost ?? self.publicURL.host) + (self.publicURL.port.map { ":\($0)" } ?? "")
    }

    /// Headers an app must not set on Gatehouse's users: a cookie named like Gatehouse's (session
    /// fixation on a shared origin) and a service worker scope wider than the app's path.
    static func keepResponseHeader(_ name: String, _ value: String) -> Bool {
        switch name.lowercased() {
        case "service-worker-allowed": return false
        case "set-cookie":
            let cookie = value.trimmingCharacters(in: .whitespaces).lowercased()
            return !Self.ownCookies.contains { cookie.hasPrefix($0.lowercased()) }
        default: return true
        }
    }

    /// A path a redirect may go to after sign-in: on the same host, no scheme-relative `//`, no
    /// backslashes, no control characters or spaces (which browsers strip or reinterpret).
    static func localPath(_ text: String?) -> String {
        guard let text, text.utf8.count <= 2048, text.hasPrefix("/"), !text.hasPrefix("//"),
            text.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "\\") })
        else { return "/" }
        return text
    }

    /// Paths with dot-segments or encoded dots and slashes are refused: `/wiki/../admin/` must
    /// not be admitted under the wiki's rule and then resolved by the upstream to another app.
    static func isCanonicalPath(_ path: String) -> Bool {
        let lowered = path.lowercased()
        if lowered.contains("%2e") || lowered.contains("%2f") || lowered.contains("%5c") || lowered.contains("\\") { return false }
        // A segment's matrix parameters do not make it another name: `..;x` is `..` to Tomcat.
        return !path.split(separator: "/", omittingEmptySubsequences: false).contains { segment in
            let name = segment.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? segment
            return name == "." || name == ".."
        }
    }

    static func badGateway(_ app: PolicyDefinitions.App) -> Response {
        JSONResponse.raw(.badGateway, Array("\(app.name) is not reachable right now.\n".utf8), contentType: "text/plain; charset=utf-8")
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    // MARK: apps on their own host name

    func startURL(app: PolicyDefinitions.App, request: Request) -> String {
        let rd = request.method == .get ? request.uri.path + (request.uri.query.map { "?" + $0 } ?? "") : "/"
        return self.publicURL.origin + "/oauth2/proxy/start?" + FormParameters.encode([("app", app.name), ("rd", rd)])
    }

    /// The app host's own cookie: a ticket naming the Gatehouse session, checked on every request.
    func hostSession(_ request: Request, app: PolicyDefinitions.App) async throws -> (User, SessionRecord)? {
        try await self.hostSession(cookie: Self.cookie(request.headers[values: .cookie].joined(separator: "; "), named: self.hostCookie), app: app)
    }

    func hostSession(cookie: String?, app: PolicyDefinitions.App) async throws -> (User, SessionRecord)? {
        guard let value = cookie,
            let ticket = ProxyTicket.verify(value, app: app.name, key: self.ticketKey, now: self.environment.time.now())
        else { return nil }
        let now = self.environment.time.now()
        return try await self.environment.store.read { tx -> (User, SessionRecord)? in
            guard let s = try await tx.session(tokenHash: ticket.sessionHash), s.isLive(at: now), let u = try await tx.user(id: s.userID),
                u.status == .active
            else { return nil }
            return (u, s)
        }
    }

    /// `/.gatehouse/callback?ticket=...&rd=...` on the app host: a one-time, one-minute ticket
    /// becomes the host cookie.
    func callback(_ request: Request, app: PolicyDefinitions.App) -> Response {
        let now = self.environment.time.now()
        guard let text = request.uri.queryParameters.get("ticket"),
            let ticket = ProxyTicket.verify(text, app: app.name, key: self.ticketKey, now: now),
            ticket.expiresAt.timeIntervalSince(now) <= 60,
            self.usedHandoffs.mutate({ used in
                used = used.filter { $0.value > now }
                return used.updateValue(ticket.expiresAt, forKey: ticket.nonce) == nil
            })
        else {
            return JSONResponse.raw(
                .badRequest, Array("This sign-in link is not valid or was already used. Open the app again.\n".utf8),
                contentType: "text/plain; charset=utf-8")
        }
        let target = Self.localPath(request.uri.queryParameters.get("rd").map { String($0) })
        let cookie = ProxyTicket(
            sessionHash: ticket.sessionHash, app: app.name, expiresAt: now.addingTimeInterval(PasskeyService.sessionLifetime),
            nonce: Base64URL.encode(self.environment.random.bytes(12))
        ).encode(key: self.ticketKey)
        var response = Self.redirect(target)
        response.headers[.setCookie] =
            "\(self.hostCookie)=\(cookie); Path=/; Max-Age=\(Int(PasskeyService.sessionLifetime)); HttpOnly; SameSite=Lax"
            + (self.publicURL.scheme == "https" ? "; Secure" : "")
        return response
    }

    /// `/oauth2/proxy/start` on Gatehouse's own host: signs in if needed, asks the policy, and
    /// sends the browser back to the app host with a one-time ticket.
    func start(_ request: Request, context: GatehouseRequestContext) async -> Response {
        do {
            let apps = self.oidc.policy.active.policy.definitions.apps
            guard let name = request.uri.queryParameters.get("app"),
                let app = apps.first(where: { $0.name == name && $0.proxyHost != nil && $0.upstream != nil }),
                let host = app.proxyHost
            else {
                return JSONResponse.error(GatehouseError(.notFound, "there is no such proxied app"))
            }
            let rd = Self.localPath(request.uri.queryParameters.get("rd").map { String($0) })
            guard let token = WebAuthnRoutes.cookie(request, secure: self.secure),
                let (user, session) = try await self.passkeys.authenticate(sessionToken: token)
            else {
                return Self.redirect(
                    "/signin?return_to=" + FormParameters.encode("/oauth2/proxy/start?" + FormParameters.encode([("app", name), ("rd", rd)])))
            }
            let address = self.clientAddress(request, context)
            if let denial = self.oidc.policyDenial(
                user: user, app: app.name, sourceAddress: address.flatMap { try? IPPrefix(parsing: $0) }.map(\.first), lastStepUp: session.steppedUpAt
            ) {
                let now = self.environment.time.now()
                try await self.environment.store.commit { _ in
                    Change(
                        (),
                        event: AuditEvent(
                            code: .oidcDenied, time: now, actor: .user(user.username), subject: .app(app.name), outcome: .denied,
                            reason: denial.description, requestID: Identifier.make(using: self.environment.random), sourceAddress: address))
                }
                return JSONResponse.raw(
                    .forbidden, Array("You cannot use \(app.name): the access policy does not allow it (\(denial.description)).\n".utf8),
                    contentType: "text/plain; charset=utf-8")
            }
            let ticket = ProxyTicket(
                sessionHash: session.tokenHash, app: app.name, expiresAt: self.environment.time.now().addingTimeInterval(60),
                nonce: Base64URL.encode(self.environment.random.bytes(16))
            ).encode(key: self.ticketKey)
            let port = self.publicURL.port.map { ":\($0)" } ?? ""
            return Self.redirect(
                "\(self.publicURL.scheme)://\(host)\(port)\(Self.callbackPath)?" + FormParameters.encode([("ticket", ticket), ("rd", rd)]))
        } catch {
            return JSONResponse.error(GatehouseError(.storeFailure, "Gatehouse cannot check this request right now; try again"))
        }
    }

    static func cookie(_ header: String?, named name: String) -> String? { WebAuthnRoutes.cookie(header, named: name) }
}

/// The public listener's responder: requests for a proxied app go to ``IdentityProxy``;
/// everything else to Gatehouse's own router.
public struct ProxyingRouter: HTTPResponderBuilder {
    let router: Router<GatehouseRequestContext>
    let proxy: IdentityProxy?

    public func buildResponder() -> Responder {
        Responder(inner: self.router.buildResponder(), proxy: self.proxy)
    }

    public struct Responder: HTTPResponder {
        public typealias Context = GatehouseRequestContext
        let inner: RouterResponder<GatehouseRequestContext>
        let proxy: IdentityProxy?

        public func respond(to request: Request, context: GatehouseRequestContext) async throws -> Response {
            if let proxy, let app = proxy.match(request) {
                // The router's middleware does this for Gatehouse's own routes.
                var context = context
                context.resolveClient(request, trusted: proxy.trustedProxies)
                var response = await proxy.handle(request, context: context, app: app)
                response.headers[.init("X-Content-Type-Options")!] = response.headers[.init("X-Content-Type-Options")!] ?? "nosniff"
                return response
            }
            return try await self.inner.respond(to: request, context: context)
        }
    }
}
