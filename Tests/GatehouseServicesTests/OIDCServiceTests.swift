import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseServices
import GatehouseTesting
import Testing

/// The provider's use cases against every store: the code flow end to end, replay of codes and
/// refresh tokens, introspection and revocation, offboarding, the device grant, policy denials
/// and key rotation.
@Suite("OpenID Connect provider")
struct OIDCServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let rootKey = try! RootKey(bytes: Array(repeating: 9, count: 32))
    static let verifier = String(repeating: "k", count: 50)
    static let policy = """
        group staff { members = [alice] }
        group contractors { members = [carol] }
        app grafana { client_id = "grafana" }
        app cli { client_id = "gatehouse-cli" redirect_uris = ["http://127.0.0.1/callback"] }
        allow app staff-apps { who = [staff] apps = [grafana, cli] }
        """

    struct Fixture {
        let store: any Store
        let time: ManualTimeSource
        let oidc: OIDCService
        let policy: PolicyService
        let env: ServiceEnvironment
        let secret: String
        var alice: OIDCService.SignedIn
        var carol: OIDCService.SignedIn
    }

    static func fixture(_ store: any Store) async throws -> Fixture {
        let time = ManualTimeSource(Self.t0)
        let env = ServiceEnvironment(store: store, time: time, random: SeededRandomSource(seed: 11))
        let users = [
            User(
                id: "u-alice", username: Username(uncheckedStored: "alice"), email: EmailAddress(uncheckedStored: "alice@example.com"), role: .admin,
                status: .active, createdAt: Self.t0),
            User(id: "u-carol", username: Username(uncheckedStored: "carol"), email: nil, role: .member, status: .active, createdAt: Self.t0),
        ]
        var sessions: [SessionRecord] = []
        try await store.commit { tx in
            for user in users {
                try await tx.insertUser(user)
                try await tx.insertCredential(
                    CredentialRecord(
                        id: Array(user.id.utf8), userID: user.id, userHandle: Array(user.id.utf8), publicKey: [1], algorithm: -7, signCount: 0,
                        backupEligible: false, backedUp: false, aaguid: [UInt8](repeating: 0, count: 16), attestationFormat: "none",
                        transports: [], createdAt: Self.t0, lastUsedAt: nil))
            }
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        for user in users {
            let s = SessionRecord(
                tokenHash: "session-\(user.id)", userID: user.id, credentialID: Array(user.id.utf8), createdAt: Self.t0, lastSeenAt: Self.t0,
                expiresAt: Self.t0.addingTimeInterval(43200), idleTimeout: 1800, steppedUpAt: Self.t0, revokedAt: nil, sourceAddress: nil)
            try await store.commit { tx in
                try await tx.insertSession(s)
                return Change((), event: AuditEvent(code: .signInSucceeded, time: Self.t0, actor: "test", subject: "seed"))
            }
            sessions.append(s)
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(source: Self.policy, fileName: "test.policy", actor: "test")
        let oidc = OIDCService(environment: env, policy: policy, rootKey: Self.rootKey, issuer: "https://gatehouse.example")
        try await oidc.prepareKeys(initial: SigningKey.generate(.p256, using: SeededRandomSource(seed: 5)))
        let registered = try await oidc.registerClient(
            id: "grafana", name: "Grafana", kind: .confidential, redirectURIs: ["https://grafana.example/login"],
            postLogoutRedirectURIs: ["https://grafana.example/bye"], firstParty: true, actor: "test")
        return Fixture(
            store: store, time: time, oidc: oidc, policy: policy, env: env, secret: try #require(registered.secret),
            alice: .init(user: users[0], session: sessions[0]), carol: .init(user: users[1], session: sessions[1]))
    }

    static func query(
        client: String = "grafana", redirect: String = "https://grafana.example/login", scope: String = "openid profile groups offline_access",
        extra: [(String, String)] = []
    ) -> String {
        FormParameters.encode(
            [
                ("client_id", client), ("redirect_uri", redirect), ("response_type", "code"), ("scope", scope), ("state", "xyz"),
                ("nonce", "n-1"), ("code_challenge", PKCE.challenge(for: Self.verifier)), ("code_challenge_method", "S256"),
            ] + extra)
    }

    static func code(from outcome: OIDCService.AuthorizationOutcome) throws -> String {
        guard case .redirect(let url) = outcome, let items = URLComponents(string: url)?.queryItems,
            let code = items.first(where: { $0.name == "code" })?.value
        else {
            throw GatehouseError(.internal, "expected a code redirect, got \(outcome)")
        }
        #expect(items.first { $0.name == "state" }?.value == "xyz")
        #expect(items.first { $0.name == "iss" }?.value == "https://gatehouse.example")
        return code
    }

    func exchange(_ f: Fixture, code: String, verifier: String = Self.verifier, redirect: String = "https://grafana.example/login") async throws
        -> OIDCService.TokenResponse
    {
        try await f.oidc.token(
            form: FormParameters([
                "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect,
                "client_id": "grafana", "client_secret": f.secret,
            ]), authorization: nil)
    }

    func introspect(_ f: Fixture, _ token: String) async throws -> Bool {
        let answer = try await f.oidc.introspect(
            form: FormParameters(["token": token, "client_id": "grafana", "client_secret": f.secret]), authorization: nil)
        return answer["active"] == .bool(true)
    }

    @Test("code flow: signed ID token with the claims, introspection, userinfo", arguments: TestStoreKind.available)
    func codeFlow(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        // Signed out: sent to sign in and back to the same request.
        guard case .signIn(let returnTo) = try await f.oidc.authorize(query: Self.query(), signedIn: nil) else {
            Issue.record("expected sign-in")
            return
        }
        #expect(returnTo.hasPrefix("/oauth2/authorize?"))
        let code = try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice))
        let tokens = try await self.exchange(f, code: code)
        #expect(tokens.scope == "groups offline_access openid profile" && tokens.expiresIn == 600 && tokens.refreshToken != nil)
        let jwks = try await f.oidc.jwks()
        let keys = Dictionary(uniqueKeysWithValues: try jwks.keys.map { ($0.kid!, try $0.verificationKey()) })
        let verified = try JWS.verify(try #require(tokens.idToken), keys: keys)
        #expect(verified.algorithm == .es256)
        let claims = try JSONDecoder().decode(IDTokenClaims.self, from: Data(verified.payload))
        #expect(claims.iss == "https://gatehouse.example" && claims.sub == "u-alice" && claims.aud == "grafana" && claims.nonce == "n-1")
        #expect(claims.authTime == Int(Self.t0.timeIntervalSince1970) && claims.exp == claims.iat + 600)
        #expect(claims.amr == ["hwk", "mfa"] && claims.acr == "phrh")
        #expect(claims.groups == ["staff"] && claims.preferredUsername == "alice" && claims.email == nil)
        #expect(try await self.introspect(f, tokens.accessToken))
        let info = try await f.oidc.userinfo(accessToken: tokens.accessToken)
        #expect(info["sub"] == .string("u-alice") && info["groups"] == .list(["staff"]))
        let events = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.map(\.event.code)
        #expect(events.contains(.oidcAuthorized) && events.contains(.oidcTokenIssued))
    }

    @Test("a reused code is refused and revokes what the first use issued", arguments: TestStoreKind.available)
    func codeReuse(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let code = try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice))
        let first = try await self.exchange(f, code: code)
        await #expect(throws: OAuthError.self) { try await self.exchange(f, code: code) }
        #expect(try await !self.introspect(f, first.accessToken))
        #expect(try await !self.introspect(f, first.refreshToken!))
        let last = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.last?.event
        #expect(last?.code == .oidcReplayDetected && last?.details["kind"] == "authorization_code")
    }

    @Test("code exchange refuses a wrong verifier, redirect URI, client or an expired code", arguments: TestStoreKind.available)
    func codeRefusals(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let code = try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice))
        for (verifier, redirect) in [
            (String(repeating: "x", count: 50), "https://grafana.example/login"), (Self.verifier, "https://grafana.example/other"),
            ("short", "https://grafana.example/login"),
        ] {
            do {
                _ = try await self.exchange(f, code: code, verifier: verifier, redirect: redirect)
                Issue.record("accepted \(verifier) \(redirect)")
            } catch let error as OAuthError {
                #expect(error.code == .invalidGrant)
            }
        }
        // Wrong secret, missing verifier.
        await #expect(throws: OAuthError(.invalidClient, "client authentication failed")) {
            try await f.oidc.token(
                form: FormParameters([
                    "grant_type": "authorization_code", "code": code, "code_verifier": Self.verifier, "redirect_uri": "https://grafana.example/login",
                    "client_id": "grafana", "client_secret": "ghcs_wrong",
                ]), authorization: nil)
        }
        await #expect(throws: OAuthError.self) {
            try await f.oidc.token(
                form: FormParameters(["grant_type": "authorization_code", "code": code, "client_id": "grafana", "client_secret": f.secret]),
                authorization: nil)
        }
        // The failed attempts did not burn the code; after a minute it is dead anyway.
        f.time.advance(by: 61)
        await #expect(throws: OAuthError.self) { try await self.exchange(f, code: code) }
    }

    @Test("refresh rotates; a reused refresh token revokes the whole family", arguments: TestStoreKind.available)
    func refreshRotation(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let first = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        func refresh(_ token: String, scope: String? = nil) async throws -> OIDCService.TokenResponse {
            var form = ["grant_type": "refresh_token", "refresh_token": token]
            if let scope { form["scope"] = scope }
            return try await f.oidc.token(
                form: FormParameters(form), authorization: "Basic " + Data("grafana:\(f.secret)".utf8).base64EncodedString())
        }
        let second = try await refresh(first.refreshToken!)
        #expect(second.refreshToken != first.refreshToken && second.idToken != nil)
        await #expect(throws: OAuthError.self) { try await refresh(second.refreshToken!, scope: "openid email") }  // cannot widen
        let third = try await refresh(second.refreshToken!, scope: "openid offline_access")
        #expect(third.scope == "offline_access openid")
        #expect(try await self.introspect(f, third.accessToken))
        // The stolen copy of the first refresh token comes back: everything dies.
        await #expect(throws: OAuthError.self) { try await refresh(first.refreshToken!) }
        #expect(try await !self.introspect(f, third.accessToken))
        await #expect(throws: OAuthError.self) { try await refresh(third.refreshToken!) }
    }

    @Test("offboarding revokes every token at once; revocation by the client works", arguments: TestStoreKind.available)
    func offboardingAndRevocation(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let a = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        let b = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        try await f.oidc.revoke(
            form: FormParameters(["token": a.accessToken, "client_id": "grafana", "client_secret": f.secret]), authorization: nil)
        #expect(try await !self.introspect(f, a.accessToken))
        #expect(try await self.introspect(f, a.refreshToken!))
        // Unknown tokens get the same empty success.
        try await f.oidc.revoke(
            form: FormParameters(["token": "ghat_" + String(repeating: "A", count: 43), "client_id": "grafana", "client_secret": f.secret]),
            authorization: nil)
        // Another admin exists? No: add one so alice can be offboarded.
        try await test.store.commit { tx in
            try await tx.insertUser(
                User(id: "u-root", username: Username(uncheckedStored: "root"), email: nil, role: .admin, status: .active, createdAt: Self.t0))
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "root"))
        }
        let result = try await OffboardingService(environment: f.env, hooks: [SessionOffboardingHook(), OIDCOffboardingHook()])
            .offboard(username: Username(uncheckedStored: "alice"), actor: "test", reason: nil)
        #expect(result.revoked["oidc_grants"] == 2)
        for token in [a.refreshToken!, b.accessToken, b.refreshToken!] { #expect(try await !self.introspect(f, token)) }
        await #expect(throws: OAuthError.self) { try await f.oidc.userinfo(accessToken: b.accessToken) }
    }

    @Test("the policy decides who may use a client; the denial is audited", arguments: TestStoreKind.available)
    func policyDenial(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let outcome = try await f.oidc.authorize(query: Self.query(), signedIn: f.carol)
        #expect(outcome == .denied(clientName: "Grafana", reason: "no rule allows it"))
        let last = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.last?.event
        #expect(last?.code == .oidcDenied && last?.actor == "user:carol" && last?.outcome == .denied)
        // prompt=none gets an error redirect instead of a page.
        guard case .redirect(let url) = try await f.oidc.authorize(query: Self.query(extra: [("prompt", "none")]), signedIn: f.carol) else {
            Issue.record("expected redirect")
            return
        }
        #expect(url.contains("error=access_denied"))
    }

    @Test("device grant: pending, slow_down, approval, one redemption", arguments: TestStoreKind.available)
    func deviceGrant(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let cli = try #require(try await f.oidc.client(id: "gatehouse-cli"))
        #expect(cli.kind == .public && cli.source == .policy)
        let started = try await f.oidc.startDeviceAuthorization(client: cli, scope: "openid offline_access")
        #expect(started.verificationURIComplete.hasPrefix("https://gatehouse.example/device?user_code="))
        let poll = FormParameters([
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started.deviceCode, "client_id": "gatehouse-cli",
        ])
        await #expect(throws: OAuthError(.authorizationPending, "waiting for the user to approve")) {
            try await f.oidc.token(form: poll, authorization: nil)
        }
        f.time.advance(by: 1)
        do { _ = try await f.oidc.token(form: poll, authorization: nil) } catch let e as OAuthError { #expect(e.code == .slowDown) }
        // Carol is not allowed the CLI: her approval is a denial.
        let other = try await f.oidc.startDeviceAuthorization(client: cli, scope: "openid")
        #expect(try await f.oidc.decideDevice(userCode: other.userCode, approve: true, signedIn: f.carol) == .denied(reason: "no rule allows it"))
        #expect(try await f.oidc.decideDevice(userCode: "BCDF-GHJK", approve: true, signedIn: f.alice) == .invalidCode)
        #expect(
            try await f.oidc.decideDevice(userCode: started.userCode.lowercased(), approve: true, signedIn: f.alice)
                == .approved(clientName: "the Gatehouse command line (gatehouse login)"))
        f.time.advance(by: 20)
        let tokens = try await f.oidc.token(form: poll, authorization: nil)
        #expect(tokens.refreshToken != nil && tokens.idToken != nil)
        await #expect(throws: OAuthError.self) { try await f.oidc.token(form: poll, authorization: nil) }
        #expect(try await !self.introspect(f, tokens.accessToken))  // redeemed twice: revoked
        f.time.advance(by: 1000)
        await #expect(throws: OAuthError.self) {
            try await f.oidc.token(
                form: FormParameters([
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": other.deviceCode, "client_id": "gatehouse-cli",
                ]), authorization: nil)
        }
    }

    @Test("key rotation: new tokens name the new kid; the old key verifies until it retires", arguments: TestStoreKind.available)
    func rotation(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let f = try await Self.fixture(test.store)
        let before = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        let kid = try await f.oidc.rotateKeys(algorithm: .ed25519, actor: "test")
        let jwks = try await f.oidc.jwks()
        #expect(jwks.keys.count == 2 && jwks.keys.first { $0.kid == kid }?.crv == "Ed25519")
        let after = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        let keys = Dictionary(uniqueKeysWithValues: try jwks.keys.map { ($0.kid!, try $0.verificationKey()) })
        #expect(try JWS.verify(after.idToken!, keys: keys).kid == kid)
        #expect(try JWS.verify(before.idToken!, keys: keys).kid != kid)
        f.time.advance(by: 24 * 3600 + 1)
        try await f.oidc.reloadKeys()
        #expect(try await f.oidc.jwks().keys.map(\.kid) == [kid])
    }

    @Test("client registration refuses bad ids, redirect URIs and duplicates", arguments: [TestStoreKind.memory])
    func registration(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(InMemoryStore())
        for (id, uris) in [
            ("Bad Id", ["https://a.example/cb"]), ("ok", []), ("ok", ["http://a.example/cb"]), ("ok", ["https://a.example/cb#x"]),
            ("grafana", ["https://a.example/cb"]), ("gatehouse-cli", ["https://a.example/cb"]),
        ] {
            await #expect(throws: GatehouseError.self, "\(id) \(uris)") {
                try await f.oidc.registerClient(id: id, name: nil, kind: .confidential, redirectURIs: uris, firstParty: true, actor: "test")
            }
        }
        let pub = try await f.oidc.registerClient(
            id: "spa", name: "SPA", kind: .public, redirectURIs: ["https://spa.example/cb"], firstParty: false, actor: "test")
        #expect(pub.secret == nil && pub.client.authMethods == [.none])
        #expect(try await f.oidc.authenticateClient(.post(id: "grafana", secret: f.secret)).id == "grafana")  // now cached
        #expect(try await f.oidc.removeClient(id: "grafana", actor: "test") == 0)
        await #expect(throws: OAuthError.self) { try await f.oidc.authenticateClient(.post(id: "grafana", secret: f.secret)) }
        await #expect(throws: GatehouseError.self) { try await f.oidc.removeClient(id: "grafana", actor: "test") }
    }

    @Test("third-party clients ask for consent once; prompt=login and max_age send the user to sign in again")
    func consentAndReauthentication() async throws {
        let f = try await Self.fixture(InMemoryStore())
        _ = try await f.oidc.registerClient(
            id: "wiki", name: "Wiki", kind: .public, redirectURIs: ["https://wiki.example/cb"], firstParty: false, actor: "test")
        _ = try await f.policy.apply(
            source: Self.policy + "\napp wiki { client_id = \"wiki\" }\nallow app wiki-all { who = [staff] apps = [wiki] }\n", fileName: "t",
            actor: "test")
        let q = Self.query(client: "wiki", redirect: "https://wiki.example/cb", scope: "openid")
        guard case .consent(let prompt) = try await f.oidc.authorize(query: q, signedIn: f.alice) else {
            Issue.record("expected consent")
            return
        }
        #expect(prompt.clientName == "Wiki" && prompt.scopes == ["openid"])
        _ = try Self.code(from: try await f.oidc.consent(query: prompt.query, approve: true, signedIn: f.alice))
        _ = try Self.code(from: try await f.oidc.authorize(query: q, signedIn: f.alice))  // remembered
        guard case .redirect(let declined) = try await f.oidc.consent(query: q, approve: false, signedIn: f.alice) else {
            Issue.record("expected redirect")
            return
        }
        #expect(declined.contains("error=access_denied"))
        f.time.advance(by: 120)
        guard case .signIn = try await f.oidc.authorize(query: Self.query(extra: [("max_age", "60")]), signedIn: f.alice) else {
            Issue.record("max_age ignored")
            return
        }
        guard case .signIn(let back) = try await f.oidc.authorize(query: Self.query(extra: [("prompt", "login")]), signedIn: f.alice) else {
            Issue.record("prompt=login ignored")
            return
        }
        #expect(back.contains("login_after=1800000120"))
    }

    @Test("private_key_jwt: a signed assertion authenticates; replayed, misdirected or long-lived ones do not")
    func privateKeyJWT() async throws {
        let f = try await Self.fixture(InMemoryStore())
        let clientKey = TokenSigner(key: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 77)))
        let registered = try await f.oidc.registerClient(
            id: "ci-bot", name: nil, kind: .confidential, redirectURIs: ["https://ci.example/cb"], jwks: [clientKey.jwk],
            firstParty: true, actor: "test")
        #expect(registered.secret == nil && registered.client.authMethods == [.privateKeyJWT])
        func assertion(aud: String = "https://gatehouse.example/oauth2/token", jti: String, lifetime: Int = 60) -> String {
            let now = Int(f.time.now().timeIntervalSince1970)
            return clientKey.sign(
                payload: Array(#"{"iss":"ci-bot","sub":"ci-bot","aud":"\#(aud)","exp":\#(now + lifetime),"iat":\#(now),"jti":"\#(jti)"}"#.utf8))
        }
        func introspect(_ jwt: String) async throws -> [String: OIDCService.UserinfoValue] {
            try await f.oidc.introspect(
                form: FormParameters([
                    "token": "ghat_" + String(repeating: "A", count: 43), "client_assertion": jwt,
                    "client_assertion_type": ClientCredentials.assertionType,
                ]), authorization: nil)
        }
        #expect(try await introspect(assertion(jti: "one")) == ["active": .bool(false)])
        for (jwt, reason) in [
            (assertion(jti: "one"), "already used"), (assertion(aud: "https://elsewhere.example", jti: "two"), "audience"),
            (assertion(jti: "three", lifetime: 3600), "five minutes"),
            (
                TokenSigner(key: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 78))).sign(payload: Array("{}".utf8)),
                "client authentication failed"
            ),
        ] {
            do {
                _ = try await introspect(jwt)
                Issue.record("accepted: \(reason)")
            } catch let error as OAuthError {
                #expect(error.code == .invalidClient || error.code == .invalidToken, "\(error)")
                #expect(error.description.contains(reason) || error.code == .invalidToken, "\(error.description)")
            }
        }
        // The secret methods are not open to a key-only client.
        await #expect(throws: OAuthError.self) {
            try await f.oidc.introspect(form: FormParameters(["token": "x", "client_id": "ci-bot", "client_secret": "ghcs_x"]), authorization: nil)
        }
    }

    @Test(
        "review fixes: no consent bypass with an empty scope; a policy change ends refresh; narrowed scopes stick; introspection is first-party only")
    func reviewRegressions() async throws {
        let f = try await Self.fixture(InMemoryStore())
        _ = try await f.oidc.registerClient(
            id: "wiki", name: "Wiki", kind: .confidential, redirectURIs: ["https://wiki.example/cb"], firstParty: false, actor: "test")
        _ = try await f.policy.apply(
            source: Self.policy + "\napp wiki { client_id = \"wiki\" }\nallow app wiki-all { who = [staff] apps = [wiki] }\n", fileName: "t",
            actor: "test")
        // A third-party client asking for no scope at all still needs the user's consent.
        let q = FormParameters.encode([
            ("client_id", "wiki"), ("redirect_uri", "https://wiki.example/cb"), ("response_type", "code"), ("state", "xyz"),
            ("code_challenge", PKCE.challenge(for: Self.verifier)), ("code_challenge_method", "S256"),
        ])
        guard case .consent = try await f.oidc.authorize(query: q, signedIn: f.alice) else {
            Issue.record("an empty scope skipped consent")
            return
        }
        guard case .redirect(let url) = try await f.oidc.authorize(query: q + "&prompt=none", signedIn: f.alice) else {
            Issue.record("expected redirect")
            return
        }
        #expect(url.contains("error=consent_required"))

        // Narrowing on refresh is what introspection then reports.
        let tokens = try await self.exchange(f, code: try Self.code(from: try await f.oidc.authorize(query: Self.query(), signedIn: f.alice)))
        let narrowed = try await f.oidc.token(
            form: FormParameters([
                "grant_type": "refresh_token", "refresh_token": tokens.refreshToken!, "scope": "openid offline_access",
                "client_id": "grafana", "client_secret": f.secret,
            ]), authorization: nil)
        let answer = try await f.oidc.introspect(
            form: FormParameters(["token": narrowed.accessToken, "client_id": "grafana", "client_secret": f.secret]), authorization: nil)
        #expect(answer["scope"] == .string("offline_access openid"))
        #expect(try await f.oidc.userinfo(accessToken: narrowed.accessToken)["groups"] == nil)

        // A third-party confidential client cannot introspect other clients' tokens.
        let wikiSecret = try #require(
            try await f.oidc.registerClient(
                id: "wiki2", name: nil, kind: .confidential, redirectURIs: ["https://w2.example/cb"],
                firstParty: false, actor: "test"
            ).secret)
        await #expect(throws: OAuthError.self) {
            try await f.oidc.introspect(
                form: FormParameters(["token": narrowed.accessToken, "client_id": "wiki2", "client_secret": wikiSecret]), authorization: nil)
        }

        // The policy stops allowing alice grafana: tokens go inactive and the refresh revokes the grant.
        _ = try await f.policy.apply(
            source: Self.policy.replacingOccurrences(of: "apps = [grafana, cli]", with: "apps = [cli]"), fileName: "t", actor: "test")
        #expect(try await !self.introspect(f, narrowed.accessToken))
        do {
            _ = try await f.oidc.token(
                form: FormParameters([
                    "grant_type": "refresh_token", "refresh_token": narrowed.refreshToken!, "client_id": "grafana",
                    "client_secret": f.secret,
                ]), authorization: nil)
            Issue.record("refreshed against the policy")
        } catch let error as OAuthError {
            #expect(error.description.contains("no longer allows"))
        }
        let grant = try await f.store.read { tx in try await tx.oidcToken(hash: InvitationToken.hash(of: narrowed.refreshToken!)) }?.grant
        #expect(grant?.revokedReason == "policy")
    }
}
