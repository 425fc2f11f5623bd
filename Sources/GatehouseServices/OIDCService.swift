public import Foundation
public import GatehouseCore
public import GatehouseOIDC
public import GatehousePolicy

/// The OpenID Connect provider's use cases: clients, signing keys, authorization, tokens,
/// introspection, revocation, logout and the device grant. Routes parse HTTP and carry out what
/// these return; every decision and every issued credential is audited in the transaction that
/// makes it.
///
/// Access and refresh tokens are opaque (see docs/oidc.md): a resource server asks
/// introspection, so revocation and offboarding take effect on the next request, not when a
/// self-contained token would have expired.
public struct OIDCService: Sendable {
    public struct Lifetimes: Sendable {
        public var code: TimeInterval = 60
        public var accessToken: TimeInterval = 600
        public var idToken: TimeInterval = 600
        /// A grant (and every refresh token in it) ends this long after sign-in approval.
        public var grant: TimeInterval = 12 * 3600
        public var deviceCode: TimeInterval = 900
        public var deviceInterval: Int = 5
        public var proxyAssertion: TimeInterval = 60
        /// How long a rotated-out signing key stays published.
        public var keyOverlap: TimeInterval = 24 * 3600
        public init() {}
    }

    let environment: ServiceEnvironment
    public let policy: PolicyService
    let sealer: KeySealer
    public let issuer: String
    public let lifetimes: Lifetimes
    public let keys: OIDCKeys
    let assertionReplay: ReplayCache
    /// Keys the `login_after` marker (see ``LoginAfter``).
    let loginAfterKey: [UInt8]
    /// Registered clients and token views, valid until the next write (see ``GenerationCache``):
    /// introspection and client authentication answer from memory until something changes.
    let clientCache = GenerationCache<OIDCClient?>(capacity: 10_000)
    /// Clients change only through ``registerClient`` and ``removeClient`` here; where this
    /// process is the only writer, the client cache follows this counter rather than every
    /// write (token traffic writes constantly and would empty it).
    let clientGeneration = LockedBox<UInt64>(0)
    let tokenCache = GenerationCache<OIDCTokenView?>(capacity: 100_000)

    public init(
        environment: ServiceEnvironment, policy: PolicyService, rootKey: RootKey, issuer: String, lifetimes: Lifetimes = Lifetimes(),
        keys: OIDCKeys = OIDCKeys()
    ) {
        self.environment = environment
        self.policy = policy
        self.sealer = KeySealer(rootKey: rootKey)
        self.issuer = issuer
        self.lifetimes = lifetimes
        self.keys = keys
        self.assertionReplay = ReplayCache(capacity: 100_000)
        self.loginAfterKey = rootKey.derive(label: "gatehouse/oidc-login-after/v1")
    }

    public var discovery: DiscoveryDocument {
        DiscoveryDocument(issuer: self.issuer, signingAlgorithms: JWSAlgorithm.allCases)
    }

    // MARK: signing keys

    /// Makes sure a signing key exists (the installation's token-signing key becomes the first)
    /// and loads the published ones.
    public func prepareKeys(initial: SigningKey) async throws {
        let env = self.environment
        let existing = try await env.store.read { tx in try await tx.oidcSigningKeys() }
        if existing.isEmpty {
            let signer = TokenSigner(key: initial)
            let record = OIDCSigningKeyRecord(
                kid: signer.kid, algorithm: initial.algorithm, publicKey: initial.publicKeyBytes,
                sealedPrivateKey: self.sealer.seal(initial.rawPrivate, purpose: .tokenSigning, random: env.random), createdAt: env.time.now())
            do {
                try await env.store.commit { tx in
                    try await tx.insertOIDCSigningKey(record)
                    return Change(
                        (),
                        event: AuditEvent(
                            code: .oidcKeyRotated, time: record.createdAt, actor: .system, subject: .key(signer.kid),
                            details: ["algorithm": signer.algorithm.rawValue, "first": "true"]))
                }
            } catch let error as GatehouseError where error.code == .conflict {
                // another replica did it first
            }
        }
        try await self.reloadKeys()
    }

    /// Reloads the published keys from the store (after a rotation, on any replica).
    @discardableResult
    public func reloadKeys() async throws -> OIDCKeys.Snapshot {
        let records = try await self.environment.store.read { tx in try await tx.oidcSigningKeys() }
        return try self.keys.load(records, sealer: self.sealer, at: self.environment.time.now())
    }

    /// The current keys, reloaded when older than ten seconds.
    func snapshot() async throws -> OIDCKeys.Snapshot {
        if let s = self.keys.current, self.environment.time.now().timeIntervalSince(s.loadedAt) < 10 { return s }
        return try await self.reloadKeys()
    }

    public func jwks() async throws -> JWKSet { try await self.snapshot().published }

    /// Rotates: a new key signs from now on; the previous ones stay published for the overlap,
    /// so tokens they signed keep verifying, and then retire.
    public func rotateKeys(algorithm: KeyAlgorithm, actor: String) async throws -> String {
        let env = self.environment
        let key = SigningKey.generate(algorithm, using: env.random)
        let signer = TokenSigner(key: key)
        let now = env.time.now()
        let record = OIDCSigningKeyRecord(
            kid: signer.kid, algorithm: algorithm, publicKey: key.publicKeyBytes,
            sealedPrivateKey: self.sealer.seal(key.rawPrivate, purpose: .tokenSigning, random: env.random), createdAt: now)
        let overlap = self.lifetimes.keyOverlap
        try await env.store.commit { tx in
            try await tx.insertOIDCSigningKey(record)
            try await tx.retireOIDCSigningKeys(keeping: signer.kid, at: now.addingTimeInterval(overlap))
            return Change(
                (),
                event: AuditEvent(
                    code: .oidcKeyRotated, time: now, actor: .stored(actor), subject: .key(signer.kid),
                    details: [
                        "algorithm": signer.algorithm.rawValue,
                        "previous_retire_at": String(Int(now.addingTimeInterval(overlap).timeIntervalSince1970)),
                    ]))
        }
        try await self.reloadKeys()
        return signer.kid
    }

    // MARK: clients

    /// Which of Gatehouse's own scopes (`ssh`, `certificates`, `network`) `clientID` may obtain
    /// and use, by the active policy (`gatehouse_scopes`; by default `gatehouse-cli` alone).
    public func gatehouseScopes(for clientID: String) -> Set<Scope> {
        Set(self.policy.active.policy.definitions.gatehouseScopes(clientID: clientID).compactMap { Scope(rawValue: $0) })
    }

    /// Refuses a request for Gatehouse's own scopes by a client the policy does not give them to,
    /// or (`deviceFlow`) through a device authorization the policy does not let carry them.
    func checkGatehouseScopes(_ scopes: Set<Scope>, clientID: String, deviceFlow: Bool = false) throws(OAuthError) {
        let allowed = self.gatehouseScopes(for: clientID)
        if let refused = scopes.filter({ $0.reachesGatehouse && !allowed.contains($0) }).sorted().first {
            throw OAuthError(
                .invalidScope,
                "client \(clientID) may not obtain the \(refused.rawValue) scope: it acts as the person on Gatehouse itself, and the policy gives it to gatehouse-cli only (gatehouse_scopes in the app's block)"
            )
        }
        guard deviceFlow else { return }
        let device = Set(self.policy.active.policy.definitions.deviceGatehouseScopes(clientID: clientID).compactMap { Scope(rawValue: $0) })
        if let refused = scopes.filter({ $0.reachesGatehouse && !device.contains($0) }).sorted().first {
            throw OAuthError(
                .invalidScope,
                "the \(refused.rawValue) scope is not available through device sign-in (a code approved by mistake must not act as you on Gatehouse); sign in with a browser, or list it in device_gatehouse_scopes of the app's block"
            )
        }
    }

    /// A client by id: registered in the store, or declared (public) in the active policy.
    public func client(id: String) async throws -> OIDCClient? {
        guard OIDCClient.isValidID(id) else { return nil }
        let store = self.environment.store
        let generation = store.writeGeneration == nil ? nil : self.clientGeneration.value
        let stored: OIDCClient?
        if let hit = self.clientCache.get(id, generation: generation) {
            stored = hit
        } else {
            stored = try await store.read { tx in try await tx.oidcClient(id: id) }
            self.clientCache.put(id, stored, generation: generation)
        }
        if let stored { return stored }
        guard let app = self.policy.active.policy.definitions.apps.first(where: { $0.clientID == id && !$0.redirectURIs.isEmpty }) else { return nil }
        return OIDCClient(
            id: id, name: Self.displayName(clientID: id, app: app.name), kind: .public, redirectURIs: app.redirectURIs, firstParty: true,
            source: .policy,
            createdAt: Date(timeIntervalSince1970: 0))
    }

    /// What pages call a client declared in the policy: Gatehouse's own CLI by what it is, any
    /// other by its app name.
    static func displayName(clientID: String, app: String) -> String {
        clientID == "gatehouse-cli" ? "the Gatehouse command line (gatehouse login)" : app
    }

    public func clients() async throws -> [OIDCClient] {
        let stored = try await self.environment.store.read { tx in try await tx.oidcClients() }
        let ids = Set(stored.map(\.id))
        let declared = self.policy.active.policy.definitions.apps.filter { !$0.redirectURIs.isEmpty && !ids.contains($0.clientID) }.map {
            OIDCClient(
                id: $0.clientID, name: Self.displayName(clientID: $0.clientID, app: $0.name), kind: .public, redirectURIs: $0.redirectURIs,
                firstParty: true, source: .policy, createdAt: Date(timeIntervalSince1970: 0))
        }
        return (stored + declared).sorted { $0.id < $1.id }
    }

    public struct Registration: Sendable {
        public let client: OIDCClient
        /// The secret, shown once (confidential clients without keys).
        public let secret: String?
    }

    /// Registers a client. Confidential clients get a generated secret unless they bring keys for
    /// `private_key_jwt`.
    public func registerClient(
        id: String, name: String?, kind: OIDCClient.Kind, redirectURIs: [String], postLogoutRedirectURIs: [String] = [],
        jwks: [JWK] = [], firstParty: Bool, actor: String, requestID: String? = nil
    ) async throws -> Registration {
        guard OIDCClient.isValidID(id) else {
            throw GatehouseError(.invalidInput, "client id must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        }
        guard !redirectURIs.isEmpty, redirectURIs.count <= OIDCClient.maxRedirectURIs, postLogoutRedirectURIs.count <= OIDCClient.maxRedirectURIs
        else {
            throw GatehouseError(.invalidInput, "give 1 to \(OIDCClient.maxRedirectURIs) redirect URIs")
        }
        for uri in redirectURIs + postLogoutRedirectURIs {
            if let problem = OIDCClient.redirectURIProblem(uri) { throw GatehouseError(.invalidInput, problem) }
        }
        let displayName = name ?? id
        guard displayName.count <= 100, !displayName.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw GatehouseError(.invalidInput, "client name must be at most 100 printable characters")
        }
        guard jwks.count <= 8 else { throw GatehouseError(.invalidInput, "at most 8 client keys") }
        for key in jwks {
            do { _ = try key.verificationKey() } catch { throw GatehouseError(.invalidInput, "client key: \(error.description)") }
        }
        if kind == .public && !jwks.isEmpty { throw GatehouseError(.invalidInput, "a public client has no keys; make it confidential") }
        if self.policy.active.policy.definitions.apps.contains(where: { $0.clientID == id && !$0.redirectURIs.isEmpty }) {
            throw GatehouseError(.conflict, "client \(id) is declared in the policy file")
        }
        let env = self.environment
        let secret = kind == .confidential && jwks.isEmpty ? ClientSecret.generate(using: env.random) : nil
        let now = env.time.now()
        defer { self.clientGeneration.mutate { $0 &+= 1 } }
        let client = OIDCClient(
            id: id, name: displayName, kind: kind, redirectURIs: redirectURIs, postLogoutRedirectURIs: postLogoutRedirectURIs,
            secretHash: secret.map(ClientSecret.hash),
            jwks: jwks.map {
                var k = $0
                k.kid = k.kid ?? k.thumbprint
                return k
            },
            firstParty: firstParty, createdAt: now)
        try await env.store.commit { tx in
            try await tx.insertOIDCClient(client)
            return Change(
                (),
                event: AuditEvent(
                    code: .oidcClientRegistered, time: now, actor: .stored(actor), subject: .client(id), requestID: requestID,
                    details: [
                        "kind": kind.rawValue, "first_party": String(firstParty), "redirect_uris": redirectURIs.joined(separator: " "),
                        "auth": client.authMethods.map(\.rawValue).joined(separator: " "),
                    ]))
        }
        return Registration(client: client, secret: secret)
    }

    /// Removes a registered client and revokes every grant it holds, and whatever Gatehouse
    /// issued with their tokens (a client the policy gave its own scopes to).
    public func removeClient(id: String, actor: String, requestID: String? = nil) async throws -> Int {
        defer { self.clientGeneration.mutate { $0 &+= 1 } }
        let env = self.environment
        return try await env.store.commit { tx in
            guard try await tx.deleteOIDCClient(id: id) else { throw GatehouseError(.notFound, "there is no registered client \(id.prefix(64))") }
            try await tx.lockAccountChanges()
            let now = env.time.now()
            let grants = try await tx.revokeOIDCGrants(clientID: id, reason: "client_removed", at: now)
            let issued = grants.all.isEmpty ? IssuedUnderGrants() : try await tx.revokeIssued(grantIDs: grants.all, at: now)
            return Change(
                grants.revoked,
                event: AuditEvent(
                    code: .oidcClientRemoved, time: now, actor: .stored(actor), subject: .client(id), requestID: requestID,
                    details: issued.details.merging(["grants_revoked": String(grants.revoked)]) { a, _ in a }))
        }
    }

    /// Authenticates the client of a token, revocation, introspection or device request.
    public func authenticateClient(_ credentials: ClientCredentials) async throws -> OIDCClient {
        guard let id = credentials.clientID ?? self.assertionIssuer(credentials), let client = try await self.client(id: id) else {
            throw OAuthError(.invalidClient, "client authentication failed")
        }
        guard client.authMethods.contains(credentials.method) else {
            throw OAuthError(
                .invalidClient, "client authentication failed: this client uses \(client.authMethods.map(\.rawValue).joined(separator: " or "))")
        }
        switch credentials {
        case .basic(_, let secret), .post(_, let secret):
            guard let hash = client.secretHash, ClientSecret.matches(secret, hash: hash) else {
                throw OAuthError(.invalidClient, "client authentication failed")
            }
        case .assertion(_, let jwt):
            try self.verifyClientAssertion(jwt, client: client)
        case .none:
            break
        }
        return client
    }

    private func assertionIssuer(_ credentials: ClientCredentials) -> String? {
        guard case .assertion(_, let jwt) = credentials, let payload = jwt.split(separator: ".").dropFirst().first,
            let bytes = Base64URL.decode(String(payload)), let claims = try? JSONDecoder().decode(ClientAssertionClaims.self, from: Data(bytes))
        else { return nil }
        return claims.iss
    }

    /// RFC 7523 §3: signed by one of the client's keys, iss = sub = client id, aud naming this
    /// issuer or its token endpoint, unexpired (and not valid for more than five minutes), and a
    /// `jti` not seen before.
    func verifyClientAssertion(_ jwt: String, client: OIDCClient) throws {
        var keys: [String: JWSVerificationKey] = [:]
        for jwk in client.jwks { if let kid = jwk.kid { keys[kid] = try jwk.verificationKey() } }
        let verified = try JWS.verify(jwt, keys: keys)
        guard let claims = try? JSONDecoder().decode(ClientAssertionClaims.self, from: Data(verified.payload)) else {
            throw OAuthError(.invalidClient, "client assertion claims are malformed")
        }
        let now = self.environment.time.now().timeIntervalSince1970
        guard claims.iss == client.id, claims.sub == client.id else {
            throw OAuthError(.invalidClient, "client assertion iss and sub must be the client id")
        }
        guard claims.aud.values.contains(where: { $0 == self.issuer || $0 == self.discovery.tokenEndpoint }) else {
            throw OAuthError(.invalidClient, "client assertion audience must be the issuer or the token endpoint")
        }
        guard TimeInterval(claims.exp) > now, TimeInterval(claims.exp) <= now + 300 else {
            throw OAuthError(.invalidClient, "client assertion is expired or lives longer than five minutes")
        }
        guard !claims.jti.isEmpty, claims.jti.utf8.count <= 256,
            self.assertionReplay.insert(
                "\(client.id) \(claims.jti)", until: Date(timeIntervalSince1970: TimeInterval(claims.exp)), now: self.environment.time.now())
        else {
            throw OAuthError(.invalidClient, "client assertion was already used (jti)")
        }
    }

    // MARK: policy

    /// The policy's answer for `user` and the app behind `clientID`: nil when allowed, else why not.
    public func policyDenial(user: User, clientID: String, sourceAddress: UInt128? = nil, lastStepUp: Date? = nil) -> PolicyDenial? {
        let compiled = self.policy.active.policy
        guard let app = compiled.definitions.apps.first(where: { $0.clientID == clientID }) else {
            return PolicyDenial(reason: .unknownTarget("client \(clientID)"), rule: nil)
        }
        return self.policyDenial(user: user, app: app.name, sourceAddress: sourceAddress, lastStepUp: lastStepUp)
    }

    public func policyDenial(user: User, app: String, sourceAddress: UInt128? = nil, lastStepUp: Date? = nil) -> PolicyDenial? {
        let compiled = self.policy.active.policy
        let now = self.environment.time.now()
        let subject = compiled.subject(user: user.username.rawValue, now: now)
        let decision = compiled.evaluate(
            .app(app), subject: subject, context: PolicyContext(now: now, sourceAddress: sourceAddress, lastStepUp: lastStepUp))
        if case .deny(let denial) = decision { return denial }
        return nil
    }

    /// Whether a grant may still be used (refresh, redemption, introspection, userinfo): the
    /// policy must still allow the user this client. Conditions that belong to the moment of
    /// sign-in (a step-up window, the browser's source network) were checked then.
    public func grantStillAllowed(user: User, clientID: String) -> Bool {
        guard let denial = self.policyDenial(user: user, clientID: clientID) else { return true }
        switch denial.reason {
        case .stepUpRequired, .sourceNotAllowed: return true
        default: return false
        }
    }

    /// The user's groups and roles in the active policy, for the `groups` scope and the proxy.
    public func memberships(of user: User) -> (groups: [String], roles: [String]) {
        let compiled = self.policy.active.policy
        var groups: [String] = []
        var roles: [String] = []
        for p in compiled.subject(user: user.username.rawValue, now: self.environment.time.now()).principals(at: self.environment.time.now()) {
            switch p {
            case .group(let g): groups.append(g)
            case .role(let r): roles.append(r)
            default: break
            }
        }
        return (groups.sorted(), roles.sorted())
    }
}
