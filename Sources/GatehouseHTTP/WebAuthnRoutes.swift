import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseWebAuthn
import Hummingbird

/// `/api/webauthn/...` on the public listener: enrollment from an invitation and sign-in with a
/// passkey, in the WebAuthn Level 3 JSON forms. A successful ceremony sets the session cookie.
enum WebAuthnRoutes {
    static let maxBodyBytes = 96 * 1024
    /// The session cookie: `__Host-gatehouse_session` over HTTPS (the prefix makes browsers refuse
    /// one set by a sibling host, with a Domain, or with a narrower path), plain
    /// `gatehouse_session` on a loopback HTTP listener (where `Secure` cookies cannot be set).
    static func cookieName(secure: Bool) -> String { secure ? "__Host-gatehouse_session" : "gatehouse_session" }
    /// Both spellings, for what the proxy strips from requests and refuses from upstreams.
    static let cookieNames = ["gatehouse_session", "__Host-gatehouse_session"]

    /// Sign-in attempts per source network (an IPv4 address or IPv6 /64), and per account name.
    static let perSourcePeriod: TimeInterval = 60
    static let perAccountAttempts = 10, perAccountPeriod: TimeInterval = 300

    static func add(
        to router: Router<GatehouseRequestContext>, passkeys: PasskeyService, publicURL: PublicURL, random: any RandomSource, time: any TimeSource,
        perSourceAttempts: Int
    ) {
        let secure = publicURL.scheme == "https"
        let perSource = RateLimiter(capacity: perSourceAttempts, per: Self.perSourcePeriod, time: time)
        let perAccount = RateLimiter(capacity: Self.perAccountAttempts, per: Self.perAccountPeriod, time: time)
        /// Refuses with 429 and Retry-After once a source (or the named account) is out of attempts.
        @Sendable func client(_ request: Request, _ context: GatehouseRequestContext) -> String? {
            context.clientAddress
        }
        @Sendable func limit(_ request: Request, _ context: GatehouseRequestContext, account: String? = nil) throws(GatehouseError) {
            if let source = client(request, context), let wait = perSource.take(RateLimiter.sourceKey(source)) {
                throw GatehouseError(.rateLimited, "too many sign-in attempts from your network; try again in \(wait) seconds", retryAfter: wait)
            }
            if let account, let wait = perAccount.take("user:" + account) {
                throw GatehouseError(.rateLimited, "too many sign-in attempts for this account; try again in \(wait) seconds", retryAfter: wait)
            }
        }
        router.post("/api/webauthn/registration/options") { request, context in
            try limit(request, context)
            let object = try await Self.object(request, allowed: ["token"])
            guard let token = object["token"] as? String else { throw GatehouseError(.invalidInput, "token is required") }
            let (ceremony, options) = try await passkeys.beginEnrollment(token: token, sourceAddress: client(request, context))
            return JSONResponse.make(.ok, Started(ceremony: ceremony, publicKey: options))
        }
        router.post("/api/webauthn/registration/verify") { request, context in
            try limit(request, context)
            let (ceremony, credential) = try await Self.ceremonyBody(request)
            let enrolled = try await passkeys.finishEnrollment(
                ceremony: ceremony, credential: credential, requestID: Identifier.make(using: random), sourceAddress: client(request, context),
                userAgent: request.headers[.userAgent]
            )
            return Self.signedIn(.created, enrolled.session, secure: secure)
        }
        router.post("/api/webauthn/authentication/options") { request, context in
            let object = try await Self.object(request, allowed: ["username"])
            var username: String? = nil
            if let value = object["username"], !(value is NSNull) {
                guard let text = value as? String else { throw GatehouseError(.invalidInput, "username must be a string") }
                username = text.isEmpty ? nil : text
            }
            try limit(request, context, account: username.flatMap { try? Username(validating: $0).rawValue })
            let (ceremony, options) = try await passkeys.beginSignIn(username: username, sourceAddress: client(request, context))
            return JSONResponse.make(.ok, Started(ceremony: ceremony, publicKey: options))
        }
        router.post("/api/webauthn/authentication/verify") { request, context in
            try limit(request, context)
            let (ceremony, credential) = try await Self.ceremonyBody(request)
            let session = try await passkeys.finishSignIn(
                ceremony: ceremony, credential: credential, requestID: Identifier.make(using: random), sourceAddress: client(request, context),
                userAgent: request.headers[.userAgent]
            )
            return Self.signedIn(.ok, session, secure: secure)
        }
        router.get("/api/passkeys") { request, _ in
            let (user, _, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let list = try await passkeys.passkeys(of: user).map {
                PasskeyListing(
                    id: Base64URL.encode($0.id), algorithm: COSEKey.Algorithm(rawValue: $0.algorithm)?.name ?? String($0.algorithm),
                    createdAt: $0.createdAt, lastUsedAt: $0.lastUsedAt, backedUp: $0.backedUp, name: $0.name,
                    model: AuthenticatorModels.name(aaguid: $0.aaguid))
            }
            return JSONResponse.make(.ok, list)
        }
        router.post("/api/passkeys/options") { request, context in
            try Self.requireJSON(request)
            let (user, session, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            // Each options call holds a pending ceremony: bounded per account, so one
            // signed-in user cannot fill the table that everyone's sign-ins share.
            try limit(request, context, account: user.username.rawValue)
            let (ceremony, options) = try await passkeys.beginAddPasskey(user: user, session: session)
            return JSONResponse.make(.ok, Started(ceremony: ceremony, publicKey: options))
        }
        router.post("/api/passkeys/verify") { request, context in
            let (user, _, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let (ceremony, credential) = try await Self.ceremonyBody(request)
            let record = try await passkeys.finishAddPasskey(
                user: user, ceremony: ceremony, credential: credential, requestID: Identifier.make(using: random),
                sourceAddress: client(request, context)
            )
            return JSONResponse.make(.created, ["id": Base64URL.encode(record.id)])
        }
        // Renames write an audit event each: bounded per person, apart from sign-in attempts.
        let renames = RateLimiter(capacity: 20, per: 60, time: time)
        router.post("/api/passkeys/rename") { request, context in
            let (user, _, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            if let wait = renames.take("user:" + user.id) {
                throw GatehouseError(.rateLimited, "too many renames; try again in \(wait) seconds", retryAfter: wait)
            }
            let object = try await Self.object(request, allowed: ["id", "name"])
            guard let text = object["id"] as? String, let id = Base64URL.decode(text), !id.isEmpty else {
                throw GatehouseError(.invalidInput, "id is required")
            }
            guard let name = object["name"] as? String else { throw GatehouseError(.invalidInput, "name is required: a string") }
            try await passkeys.renamePasskey(
                user: user, id: id, name: name, requestID: Identifier.make(using: random), sourceAddress: client(request, context))
            return Response(status: .noContent)
        }
        router.post("/api/passkeys/remove") { request, context in
            let (user, session, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let object = try await Self.object(request, allowed: ["id"])
            guard let text = object["id"] as? String, let id = Base64URL.decode(text), !id.isEmpty else {
                throw GatehouseError(.invalidInput, "id is required")
            }
            try await passkeys.removePasskey(
                user: user, session: session, id: id, requestID: Identifier.make(using: random), sourceAddress: client(request, context))
            return Response(status: .noContent)
        }
        router.post("/api/webauthn/stepup/options") { request, context in
            try Self.requireJSON(request)
            let (user, session, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            try limit(request, context, account: user.username.rawValue)
            let (ceremony, options) = try await passkeys.beginStepUp(user: user, session: session)
            return JSONResponse.make(.ok, Started(ceremony: ceremony, publicKey: options))
        }
        router.post("/api/webauthn/stepup/verify") { request, context in
            try limit(request, context)
            let (user, _, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let (ceremony, credential) = try await Self.ceremonyBody(request)
            try await passkeys.finishStepUp(
                user: user, ceremony: ceremony, credential: credential, requestID: Identifier.make(using: random),
                sourceAddress: client(request, context)
            )
            return Response(status: .noContent)
        }
        router.get("/api/session") { request, _ in
            let (user, session, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            return JSONResponse.make(.ok, SessionInfo(username: user.username.rawValue, role: user.role.rawValue, expiresAt: session.expiresAt))
        }
        router.post("/api/session/signout") { request, context in
            try Self.requireJSON(request)
            let (_, _, token) = try await Self.signedInUser(request, passkeys, secure: secure)
            _ = try await passkeys.signOut(sessionToken: token, requestID: Identifier.make(using: random), sourceAddress: client(request, context))
            var response = Response(status: .noContent)
            response.headers[.setCookie] =
                "\(Self.cookieName(secure: secure))=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
            return response
        }
        router.get("/api/sessions") { request, _ in
            let (user, current, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let list = try await passkeys.liveSessions(of: user).map {
                SessionListing(
                    id: PasskeyService.sessionID($0), createdAt: $0.createdAt, lastSeenAt: $0.lastSeenAt, expiresAt: $0.expiresAt,
                    current: $0.tokenHash == current.tokenHash)
            }
            return JSONResponse.make(.ok, list)
        }
        router.post("/api/sessions/revoke") { request, context in
            let (user, _, _) = try await Self.signedInUser(request, passkeys, secure: secure)
            let object = try await Self.object(request, allowed: ["id"])
            guard let id = object["id"] as? String, (1...64).contains(id.utf8.count) else { throw GatehouseError(.invalidInput, "id is required") }
            try await passkeys.revokeSession(of: user, id: id, requestID: Identifier.make(using: random), sourceAddress: client(request, context))
            return Response(status: .noContent)
        }
    }

    /// State-changing requests must be JSON: a cross-site HTML form cannot send that without a
    /// CORS preflight, which Gatehouse never grants (with SameSite=Lax, the CSRF defence).
    static func requireJSON(_ request: Request) throws(GatehouseError) {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw GatehouseError(.invalidInput, "send Content-Type: application/json")
        }
    }

    static func signedInUser(_ request: Request, _ passkeys: PasskeyService, secure: Bool) async throws -> (User, SessionRecord, String) {
        guard let token = Self.cookie(request, secure: secure), let (user, session) = try await passkeys.authenticate(sessionToken: token) else {
            throw GatehouseError(.unauthenticated, "not signed in")
        }
        return (user, session, token)
    }

    struct PasskeyListing: Encodable {
        let id: String
        let algorithm: String
        let createdAt: Date
        let lastUsedAt: Date?
        let backedUp: Bool
        /// The owner's name for it, else the authenticator model's, else nil.
        let name: String?
        let model: String?

        enum CodingKeys: String, CodingKey {
            case id, algorithm, name, model
            case createdAt = "created_at"
            case lastUsedAt = "last_used_at"
            case backedUp = "backed_up"
        }
    }

    struct SessionListing: Encodable {
        let id: String
        let createdAt: Date
        let lastSeenAt: Date
        let expiresAt: Date
        let current: Bool

        enum CodingKeys: String, CodingKey {
            case id, current
            case createdAt = "created_at"
            case lastSeenAt = "last_seen_at"
            case expiresAt = "expires_at"
        }
    }

    struct Started<Options: Encodable>: Encodable {
        let ceremony: String
        let publicKey: Options
    }

    struct SessionInfo: Encodable {
        let username: String
        let role: String
        let expiresAt: Date

        enum CodingKeys: String, CodingKey {
            case username, role
            case expiresAt = "expires_at"
        }
    }

    /// The session cookie: HttpOnly, SameSite=Lax (top-level sign-in redirects from other apps
    /// must carry it), Secure everywhere except plain-HTTP loopback development.
    static func signedIn(_ status: HTTPResponse.Status, _ session: PasskeyService.Session, secure: Bool) -> Response {
        var response = JSONResponse.make(
            status, SessionInfo(username: session.user.username.rawValue, role: session.user.role.rawValue, expiresAt: session.expiresAt))
        let maxAge = Int(PasskeyService.sessionLifetime)
        response.headers[.setCookie] =
            "\(Self.cookieName(secure: secure))=\(session.token); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
        return response
    }

    static func cookie(_ request: Request, secure: Bool) -> String? {
        let fields = request.headers[values: .cookie]
        return Self.cookie(fields.isEmpty ? nil : fields.joined(separator: "; "), named: Self.cookieName(secure: secure))
    }

    /// The one cookie called `name`. A request that carries it twice is treated as carrying
    /// none: a sibling host (a proxied app on its own subdomain) can plant a cookie of the same
    /// name with a wider domain or a longer path, and the browser would send both, in an order
    /// the server cannot trust.
    static func cookie(_ header: String?, named name: String) -> String? {
        guard let header else { return nil }
        var found: String? = nil
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, pair[0] == name else { continue }
            if found != nil { return nil }
            found = String(pair[1])
        }
        return found.flatMap { $0.isEmpty ? nil : $0 }
    }

    static func object(_ request: Request, allowed: Set<String>) async throws -> [String: Any] {
        try Self.requireJSON(request)
        let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
        try StrictJSON.checkKeys(bytes, allowed: allowed)
        return (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
    }

    /// `{"ceremony": "...", "credential": {...}}`: the credential object re-serialized for the
    /// strict parser in GatehouseWebAuthn.
    static func ceremonyBody(_ request: Request) async throws -> (String, [UInt8]) {
        let object = try await Self.object(request, allowed: ["ceremony", "credential"])
        guard let ceremony = object["ceremony"] as? String, (1...64).contains(ceremony.utf8.count) else {
            throw GatehouseError(.invalidInput, "ceremony is required")
        }
        guard let credential = object["credential"] as? [String: Any],
            let bytes = try? JSONSerialization.data(withJSONObject: credential)
        else {
            throw GatehouseError(.invalidInput, "credential must be the JSON object the browser returned")
        }
        return (ceremony, [UInt8](bytes))
    }

}
