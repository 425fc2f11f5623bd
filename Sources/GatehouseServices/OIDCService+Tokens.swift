public import Foundation
public import GatehouseCore
public import GatehouseOIDC

/// The back channel: the token endpoint (code, refresh and device grants), userinfo,
/// revocation, introspection, RP-initiated logout and the proxy's identity assertions.
extension OIDCService {
    public struct TokenResponse: Sendable, Encodable, Equatable {
        public let accessToken: String
        public let tokenType = "Bearer"
        public let expiresIn: Int
        public let refreshToken: String?
        public let idToken: String?
        public let scope: String

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case tokenType = "token_type"
            case expiresIn = "expires_in"
            case refreshToken = "refresh_token"
            case idToken = "id_token"
            case scope
        }
    }

    static let deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

    /// The token endpoint. Throws ``OAuthError`` for every refusal the client should see.
    public func token(form: FormParameters, authorization: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws
        -> TokenResponse
    {
        let client = try await self.authenticateClient(try ClientCredentials.parse(authorization: authorization, form: form))
        switch form.nonEmpty("grant_type") {
        case "authorization_code"?:
            return try await self.exchangeCode(form, client: client, requestID: requestID, sourceAddress: sourceAddress)
        case "refresh_token"?:
            return try await self.refresh(form, client: client, requestID: requestID, sourceAddress: sourceAddress)
        case Self.deviceGrantType?:
            return try await self.redeemDevice(form, client: client, requestID: requestID, sourceAddress: sourceAddress)
        case nil:
            throw OAuthError(.invalidRequest, "grant_type is missing")
        case let other?:
            throw OAuthError(.unsupportedGrantType, "grant_type \(other.prefix(60)) is not supported")
        }
    }

    /// What a single-use credential's transaction found: tokens, or a replay that revoked the grant.
    enum Redemption: Sendable {
        case issued(TokenResponse)
        case replayed
        /// The policy no longer allows it: the grant was revoked (and that audited).
        case refused
    }

    static let invalidGrant = OAuthError(.invalidGrant, "the code or token is invalid, expired, revoked, or was issued to another client")
    static let notAllowed = OAuthError(.invalidGrant, "the access policy no longer allows this user this client")

    func exchangeCode(_ form: FormParameters, client: OIDCClient, requestID: String?, sourceAddress: String?) async throws -> TokenResponse {
        guard let code = form.nonEmpty("code"), OIDCTokenKind.of(code) == .authorizationCode else { throw Self.invalidGrant }
        guard let verifier = form.nonEmpty("code_verifier") else { throw OAuthError(.invalidRequest, "code_verifier is required (PKCE)") }
        let redirectURI = form.nonEmpty("redirect_uri")
        let hash = InvitationToken.hash(of: code)
        let signer = try await self.snapshot().signer
        let env = self.environment
        let outcome = try await env.store.commit { tx -> Change<Redemption> in
            let now = env.time.now()
            guard let view = try await tx.oidcToken(hash: hash), view.token.kind == .authorizationCode, view.grant.clientID == client.id else {
                throw Self.invalidGrant
            }
            if view.token.usedAt != nil {
                // RFC 6749 §4.1.2, OAuth 2.1 §4.1.3: a second use revokes everything the first issued.
                try await SessionCut.revokeGrant(id: view.grant.id, reason: "code_reuse", in: tx, at: now)
                return Change(
                    .replayed,
                    event: self.replayEvent(
                        view, client: client, kind: "authorization_code", now: now, requestID: requestID, sourceAddress: sourceAddress))
            }
            guard view.isActive(at: now) else { throw Self.invalidGrant }
            guard redirectURI == view.token.redirectURI else {
                throw OAuthError(.invalidGrant, "redirect_uri does not match the authorization request")
            }
            guard let challenge = view.token.codeChallenge, PKCE.verify(verifier: verifier, challenge: challenge) else {
                throw OAuthError(.invalidGrant, "code_verifier does not match the code_challenge")
            }
            guard self.grantStillAllowed(user: view.user, clientID: client.id) else { throw Self.notAllowed }
            guard try await tx.consumeOIDCToken(hash: hash, at: now) else { throw Self.invalidGrant }
            let response = try await self.issueTokens(
                tx, grant: view.grant, scope: view.grant.scope, user: view.user, client: client, nonce: view.grant.nonce, signer: signer, now: now)
            return Change(
                .issued(response),
                event: self.issuedEvent(
                    view.grant, user: view.user, grantType: "authorization_code", response, now: now, requestID: requestID,
                    sourceAddress: sourceAddress))
        }
        guard case .issued(let response) = outcome else { throw Self.invalidGrant }
        return response
    }

    func refresh(_ form: FormParameters, client: OIDCClient, requestID: String?, sourceAddress: String?) async throws -> TokenResponse {
        guard let token = form.nonEmpty("refresh_token"), OIDCTokenKind.of(token) == .refreshToken else { throw Self.invalidGrant }
        let narrowed = try form.nonEmpty("scope").map { try Scope.parse($0) }
        let hash = InvitationToken.hash(of: token)
        let signer = try await self.snapshot().signer
        let env = self.environment
        let outcome = try await env.store.commit { tx -> Change<Redemption> in
            let now = env.time.now()
            guard let view = try await tx.oidcToken(hash: hash), view.token.kind == .refreshToken, view.grant.clientID == client.id else {
                throw Self.invalidGrant
            }
            if view.token.usedAt != nil && view.grant.revokedAt == nil {
                // Rotation means a refresh token works once; a second presentation means two
                // parties hold it. End the family (RFC 9700 §4.14.2).
                try await SessionCut.revokeGrant(id: view.grant.id, reason: "refresh_reuse", in: tx, at: now)
                return Change(
                    .replayed,
                    event: self.replayEvent(view, client: client, kind: "refresh_token", now: now, requestID: requestID, sourceAddress: sourceAddress)
                )
            }
            guard view.isActive(at: now) else { throw Self.invalidGrant }
            guard self.grantStillAllowed(user: view.user, clientID: client.id) else {
                try await SessionCut.revokeGrant(id: view.grant.id, reason: "policy", in: tx, at: now)
                return Change(
                    .refused,
                    event: AuditEvent(
                        code: .oidcDenied, time: now, actor: .user(view.user.username), subject: .client(client.id), outcome: .denied,
                        reason: "the policy no longer allows this client; grant revoked", requestID: requestID, sourceAddress: sourceAddress,
                        details: ["grant": view.grant.id]))
            }
            var scope = view.scope
            if let narrowed {
                let granted = Set(scope.split(separator: " ").map(String.init))
                guard narrowed.allSatisfy({ granted.contains($0.rawValue) }) else {
                    throw OAuthError(.invalidScope, "a refresh cannot widen the granted scope")
                }
                scope = Scope.format(narrowed)
            }
            guard try await tx.consumeOIDCToken(hash: hash, at: now) else { throw Self.invalidGrant }
            let response = try await self.issueTokens(
                tx, grant: view.grant, scope: scope, user: view.user, client: client, nonce: nil, signer: signer, now: now)
            return Change(
                .issued(response),
                event: self.issuedEvent(
                    view.grant, user: view.user, grantType: "refresh_token", response, now: now, requestID: requestID, sourceAddress: sourceAddress))
        }
        switch outcome {
        case .issued(let response): return response
        case .refused: throw Self.notAllowed
        case .replayed: throw Self.invalidGrant
        }
    }

    func redeemDevice(_ form: FormParameters, client: OIDCClient, requestID: String?, sourceAddress: String?) async throws -> TokenResponse {
        guard let code = form.nonEmpty("device_code"), OIDCTokenKind.of(code) == .deviceCode else { throw Self.invalidGrant }
        let hash = InvitationToken.hash(of: code)
        let env = self.environment
        guard let record = try await env.store.read({ tx in try await tx.deviceAuthorization(deviceCodeHash: hash) }), record.clientID == client.id
        else {
            throw Self.invalidGrant
        }
        let now = env.time.now()
        guard now < record.expiresAt else { throw OAuthError(.expiredToken, "the device code has expired; start again") }
        switch record.status {
        case .pending:
            // RFC 8628 §3.5: polling faster than the interval earns slow_down and five more seconds.
            if let last = record.lastPolledAt, now.timeIntervalSince(last) < TimeInterval(record.interval) {
                try await env.store.recordDevicePoll(deviceCodeHash: hash, at: now, interval: min(record.interval + 5, 60))
                throw OAuthError(.slowDown, "polling too fast; wait \(min(record.interval + 5, 60)) seconds between requests")
            }
            try await env.store.recordDevicePoll(deviceCodeHash: hash, at: now, interval: record.interval)
            throw OAuthError(.authorizationPending, "waiting for the user to approve")
        case .denied:
            throw OAuthError(.accessDenied, "the user declined, or the policy does not allow this user this client")
        case .used, .approved:
            break
        }
        let signer = try await self.snapshot().signer
        let outcome = try await env.store.commit { tx -> Change<Redemption> in
            let now = env.time.now()
            guard let current = try await tx.deviceAuthorization(deviceCodeHash: hash), let grantID = current.grantID,
                let grant = try await tx.oidcGrant(id: grantID), let user = try await tx.user(id: grant.userID)
            else { throw Self.invalidGrant }
            let view = OIDCTokenView(
                token: OIDCTokenRecord(hash: hash, kind: .deviceCode, grantID: grantID, createdAt: current.createdAt, expiresAt: current.expiresAt),
                grant: grant, user: user)
            guard try await tx.consumeDeviceAuthorization(deviceCodeHash: hash) else {
                // Redeemed already (or concurrently): whoever holds a second copy must not win.
                try await SessionCut.revokeGrant(id: grantID, reason: "device_code_reuse", in: tx, at: now)
                return Change(
                    .replayed,
                    event: self.replayEvent(view, client: client, kind: "device_code", now: now, requestID: requestID, sourceAddress: sourceAddress))
            }
            guard grant.isLive(at: now), user.status == .active else { throw Self.invalidGrant }
            guard self.grantStillAllowed(user: user, clientID: client.id) else { throw Self.notAllowed }
            let response = try await self.issueTokens(
                tx, grant: grant, scope: grant.scope, user: user, client: client, nonce: nil, signer: signer, now: now)
            return Change(
                .issued(response),
                event: self.issuedEvent(
                    grant, user: user, grantType: "device_code", response, now: now, requestID: requestID, sourceAddress: sourceAddress))
        }
        switch outcome {
        case .issued(let response): return response
        case .refused: throw Self.notAllowed
        case .replayed: throw Self.invalidGrant
        }
    }

    func replayEvent(_ view: OIDCTokenView, client: OIDCClient, kind: String, now: Date, requestID: String?, sourceAddress: String?) -> AuditEvent {
        AuditEvent(
            code: .oidcReplayDetected, time: now, actor: .client(client.id), subject: .user(view.user.username), outcome: .denied,
            reason: "\(kind) presented twice; grant revoked", requestID: requestID, sourceAddress: sourceAddress,
            details: ["grant": view.grant.id, "kind": kind])
    }

    func issuedEvent(
        _ grant: OIDCGrantRecord, user: User, grantType: String, _ response: TokenResponse, now: Date, requestID: String?, sourceAddress: String?
    ) -> AuditEvent {
        AuditEvent(
            code: .oidcTokenIssued, time: now, actor: .client(grant.clientID), subject: .user(user.username), requestID: requestID,
            sourceAddress: sourceAddress,
            details: [
                "grant": grant.id, "grant_type": grantType, "scope": response.scope, "refresh": String(response.refreshToken != nil),
                "id_token": String(response.idToken != nil),
            ])
    }

    /// Issues an access token, a refresh token (with `offline_access`) and an ID token (with
    /// `openid`) for a live grant, inside the caller's transaction.
    func issueTokens(
        _ tx: any StoreWriter, grant: OIDCGrantRecord, scope: String, user: User, client: OIDCClient, nonce: String?, signer: TokenSigner, now: Date
    ) async throws -> TokenResponse {
        let random = self.environment.random
        let scopes = Set(scope.split(separator: " ").compactMap { Scope(rawValue: String($0)) })
        let ownScope = scope == grant.scope ? nil : scope
        let access = OIDCTokenKind.accessToken.generate(using: random)
        let accessExpiry = min(now.addingTimeInterval(self.lifetimes.accessToken), grant.expiresAt)
        var records = [
            OIDCTokenRecord(
                hash: InvitationToken.hash(of: access), kind: .accessToken, grantID: grant.id, createdAt: now, expiresAt: accessExpiry,
                scope: ownScope)
        ]
        var refresh: String? = nil
        if scopes.contains(.offlineAccess) {
            let value = OIDCTokenKind.refreshToken.generate(using: random)
            records.append(
                OIDCTokenRecord(
                    hash: InvitationToken.hash(of: value), kind: .refreshToken, grantID: grant.id, createdAt: now, expiresAt: grant.expiresAt,
                    scope: ownScope))
            refresh = value
        }
        try await tx.insertOIDCTokens(records)
        var idToken: String? = nil
        if scopes.contains(.openid) {
            var claims = IDTokenClaims(
                iss: self.issuer, sub: user.id, aud: client.id, exp: Int(now.addingTimeInterval(self.lifetimes.idToken).timeIntervalSince1970),
                iat: Int(now.timeIntervalSince1970), authTime: Int(grant.authTime.timeIntervalSince1970), nonce: nonce, amr: grant.amr,
                acr: grant.acr,
                azp: client.id, sid: grant.sessionHash.map { String($0.prefix(16)) })
            self.addProfileClaims(&claims.preferredUsername, &claims.email, &claims.groups, &claims.roles, user: user, scopes: scopes)
            idToken = signer.sign(payload: claims.encoded())
        }
        return TokenResponse(
            accessToken: access, expiresIn: Int(accessExpiry.timeIntervalSince(now).rounded()), refreshToken: refresh, idToken: idToken, scope: scope)
    }

    func addProfileClaims(
        _ username: inout String?, _ email: inout String?, _ groups: inout [String]?, _ roles: inout [String]?, user: User, scopes: Set<Scope>
    ) {
        if scopes.contains(.profile) { username = user.username.rawValue }
        if scopes.contains(.email) { email = user.email?.rawValue }
        if scopes.contains(.groups) {
            let m = self.memberships(of: user)
            groups = m.groups
            roles = m.roles
        }
    }

    // MARK: userinfo, introspection, revocation

    /// The live access token's view, or nil.
    func activeAccessToken(_ token: String) async throws -> OIDCTokenView? {
        guard OIDCTokenKind.of(token) == .accessToken else { return nil }
        let now = self.environment.time.now()
        guard let view = try await self.tokenView(hash: InvitationToken.hash(of: token)), view.token.kind == .accessToken, view.isActive(at: now),
            self.grantStillAllowed(user: view.user, clientID: view.grant.clientID)
        else { return nil }
        return view
    }

    /// A token's view, from the cache while nothing was written since it was read. Liveness is
    /// judged by the caller at the current time, so expiry needs no invalidation.
    func tokenView(hash: String) async throws -> OIDCTokenView? {
        let store = self.environment.store
        let generation = store.writeGeneration
        if let hit = self.tokenCache.get(hash, generation: generation) { return hit }
        let view = try await store.read { tx in try await tx.oidcToken(hash: hash) }
        self.tokenCache.put(hash, view, generation: generation)
        return view
    }

    /// The user behind a live access token, with the token's scopes and the grant's sign-in time,
    /// for Gatehouse's own APIs that accept bearer tokens (SSH certificates).
    public func authenticateBearer(_ token: String) async throws -> BearerCaller? {
        guard token.utf8.count <= 128, let view = try await self.activeAccessToken(token) else { return nil }
        // Gatehouse is the audience of its own scopes: a token some app obtained (or one issued
        // before the policy took a client's scopes away) carries none of them here.
        let allowed = self.gatehouseScopes(for: view.grant.clientID)
        let scopes = Set(view.scope.split(separator: " ").compactMap { Scope(rawValue: String($0)) }).filter {
            !$0.reachesGatehouse || allowed.contains($0)
        }
        return BearerCaller(user: view.user, scopes: scopes, authTime: view.grant.authTime, grantID: view.grant.id)
    }

    /// A token's scope as it can be used now: less any of Gatehouse's own its client may no
    /// longer hold (what introspection reports, as authenticateBearer enforces).
    func usableScope(_ view: OIDCTokenView) -> String {
        let allowed = self.gatehouseScopes(for: view.grant.clientID)
        return view.scope.split(separator: " ").filter { word in
            Scope(rawValue: String(word)).map { !$0.reachesGatehouse || allowed.contains($0) } ?? true
        }
        .joined(separator: " ")
    }

    /// OIDC Core §5.3: claims about the user behind a live access token, per its scopes.
    public func userinfo(accessToken: String) async throws -> [String: UserinfoValue] {
        guard let view = try await self.activeAccessToken(accessToken) else {
            throw OAuthError(.invalidToken, "the access token is invalid, expired or revoked")
        }
        let scopes = Set(view.scope.split(separator: " ").compactMap { Scope(rawValue: String($0)) })
        guard scopes.contains(.openid) else { throw OAuthError(.invalidToken, "the access token was not issued for openid") }
        var username: String? = nil
        var email: String? = nil
        var groups: [String]? = nil
        var roles: [String]? = nil
        self.addProfileClaims(&username, &email, &groups, &roles, user: view.user, scopes: scopes)
        var out: [String: UserinfoValue] = ["sub": .string(view.user.id)]
        if let username { out["preferred_username"] = .string(username) }
        if let email { out["email"] = .string(email) }
        if let groups { out["groups"] = .list(groups) }
        if let roles { out["roles"] = .list(roles) }
        return out
    }

    public enum UserinfoValue: Sendable, Encodable, Equatable {
        case string(String)
        case list([String])
        case bool(Bool)
        case int(Int)

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .string(let s): try c.encode(s)
            case .list(let l): try c.encode(l)
            case .bool(let b): try c.encode(b)
            case .int(let i): try c.encode(i)
            }
        }
    }

    /// RFC 7662: for an authenticated confidential client (a resource server). An unknown,
    /// expired or revoked token is `{"active": false}` and nothing more.
    public func introspect(form: FormParameters, authorization: String?) async throws -> [String: UserinfoValue] {
        let caller = try await self.authenticateClient(try ClientCredentials.parse(authorization: authorization, form: form))
        guard caller.kind == .confidential, caller.firstParty else {
            throw OAuthError(
                .invalidClient, "introspection is for the organization's own confidential clients (resource servers), not public or third-party ones")
        }
        guard let token = form.nonEmpty("token") else { throw OAuthError(.invalidRequest, "token is missing") }
        guard let kind = OIDCTokenKind.of(token), kind == .accessToken || kind == .refreshToken else { return ["active": .bool(false)] }
        let now = self.environment.time.now()
        guard let view = try await self.tokenView(hash: InvitationToken.hash(of: token)), view.token.kind == kind, view.isActive(at: now),
            self.grantStillAllowed(user: view.user, clientID: view.grant.clientID)
        else {
            return ["active": .bool(false)]
        }
        // A refresh token is the business of the client it was issued to alone.
        if kind == .refreshToken && view.grant.clientID != caller.id { return ["active": .bool(false)] }
        return [
            "active": .bool(true), "scope": .string(self.usableScope(view)), "client_id": .string(view.grant.clientID),
            "username": .string(view.user.username.rawValue),
            "token_type": .string(kind == .accessToken ? "Bearer" : "refresh_token"), "exp": .int(Int(view.token.expiresAt.timeIntervalSince1970)),
            "iat": .int(Int(view.token.createdAt.timeIntervalSince1970)), "sub": .string(view.user.id), "aud": .string(view.grant.clientID),
            "iss": .string(self.issuer),
        ]
    }

    /// RFC 7009: revokes a token the calling client holds. Revoking a refresh token ends its grant
    /// (and so the access tokens issued with it). Unknown tokens, and other clients' tokens, get
    /// the same empty success, so the endpoint tells nothing about them.
    public func revoke(form: FormParameters, authorization: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws {
        let client = try await self.authenticateClient(try ClientCredentials.parse(authorization: authorization, form: form))
        guard let token = form.nonEmpty("token") else { throw OAuthError(.invalidRequest, "token is missing") }
        if let hint = form.nonEmpty("token_type_hint"), hint != "access_token", hint != "refresh_token" {
            throw OAuthError(.unsupportedTokenType, "token_type_hint must be access_token or refresh_token")
        }
        guard let kind = OIDCTokenKind.of(token), kind == .accessToken || kind == .refreshToken else { return }
        let hash = InvitationToken.hash(of: token)
        let env = self.environment
        guard let view = try await env.store.read({ tx in try await tx.oidcToken(hash: hash) }), view.grant.clientID == client.id,
            view.token.kind == kind,
            view.token.revokedAt == nil, view.grant.revokedAt == nil
        else { return }
        try await env.store.commit { tx in
            let now = env.time.now()
            if kind == .refreshToken {
                try await SessionCut.revokeGrant(id: view.grant.id, reason: "revoked", in: tx, at: now)
            } else {
                _ = try await tx.revokeOIDCToken(hash: hash, at: now)
            }
            return Change(
                (),
                event: AuditEvent(
                    code: .oidcTokenRevoked, time: now, actor: .client(client.id), subject: .user(view.user.username),
                    requestID: requestID, sourceAddress: sourceAddress, details: ["grant": view.grant.id, "kind": kind.rawValue]))
        }
    }

    // MARK: logout

    public enum LogoutOutcome: Sendable, Equatable {
        /// Signed out; send the browser to the client's registered post-logout URI.
        case redirect(String)
        /// Signed out; show a page.
        case signedOut
        /// No valid `id_token_hint` for this session: ask the user before signing out (no
        /// cross-site logout by a bare link).
        case confirm
        case show(OAuthError)
    }

    /// OIDC RP-Initiated Logout 1.0. Ends the browser's session and every grant opened from it.
    public func logout(query: FormParameters, signedIn: SignedIn?, confirmed: Bool, requestID: String? = nil, sourceAddress: String? = nil)
        async throws -> LogoutOutcome
    {
        var hintClient: String? = nil
        var hintSubject: String? = nil
        if let hint = query.nonEmpty("id_token_hint") {
            // Signature checked with our own keys by kid; expiry does not matter for a hint.
            guard let verified = try? JWS.verify(hint, keys: try await self.snapshot().verifiers),
                let claims = try? JSONDecoder().decode(IDTokenClaims.self, from: Data(verified.payload)), claims.iss == self.issuer
            else {
                return .show(OAuthError(.invalidRequest, "id_token_hint is not an ID token issued here"))
            }
            hintClient = claims.aud
            hintSubject = claims.sub
        }
        if let id = query.nonEmpty("client_id") {
            if let hintClient, hintClient != id { return .show(OAuthError(.invalidRequest, "client_id does not match id_token_hint")) }
            hintClient = id
        }
        var target: String? = nil
        if let uri = query.nonEmpty("post_logout_redirect_uri") {
            guard let clientID = hintClient, let client = try await self.client(id: clientID), client.postLogoutRedirectURIs.contains(uri) else {
                return .show(OAuthError(.invalidRequest, "post_logout_redirect_uri is not registered for this client"))
            }
            var params: [(String, String)] = []
            if let state = query.nonEmpty("state") { params.append(("state", state)) }
            target = params.isEmpty ? uri : AuthorizationRequest.redirectURL(uri, params)
        }
        if let signedIn {
            let client = hintClient ?? ""
            guard confirmed || (hintSubject != nil && hintSubject == signedIn.user.id) else { return .confirm }
            let env = self.environment
            try await env.store.commit { tx in
                let now = env.time.now()
                let ended = try await SessionCut.end(tokenHashes: [signedIn.session.tokenHash], reason: "logout", in: tx, at: now)
                return Change(
                    (),
                    event: AuditEvent(
                        code: .oidcLogout, time: now, actor: .user(signedIn.user.username),
                        subject: .session(PasskeyService.sessionID(signedIn.session)),
                        requestID: requestID, sourceAddress: sourceAddress, details: ended.details.merging(["client": client]) { a, _ in a }))
            }
        }
        return target.map { .redirect($0) } ?? .signedOut
    }

    // MARK: proxy

    /// The signed, short-lived assertion the proxy adds to a forwarded request.
    public func proxyAssertion(user: User, app: String) async throws -> String {
        let now = self.environment.time.now()
        let m = self.memberships(of: user)
        let claims = ProxyAssertionClaims(
            iss: self.issuer, sub: user.id, aud: app, exp: Int(now.addingTimeInterval(self.lifetimes.proxyAssertion).timeIntervalSince1970),
            iat: Int(now.timeIntervalSince1970), jti: Base64URL.encode(self.environment.random.bytes(16)),
            preferredUsername: user.username.rawValue, email: user.email?.rawValue, groups: m.groups, roles: m.roles)
        return try await self.snapshot().signer.sign(payload: claims.encoded(), type: "gatehouse-assertion+jwt")
    }
}
