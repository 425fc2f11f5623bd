import Foundation
import GatehouseCore
import GatehouseOIDC
import Testing

/// The authorization request rules: which failures are shown and which are redirected, PKCE
/// S256 only, exact redirect URIs, and the next step for each combination of session, policy,
/// consent and prompt.
@Suite("Authorization requests")
struct AuthorizationRequestTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let client = OIDCClient(
        id: "grafana", name: "Grafana", kind: .confidential, redirectURIs: ["https://grafana.example/cb", "http://127.0.0.1/cli"],
        secretHash: ClientSecret.hash("s"), firstParty: true, createdAt: now)
    static let challenge = PKCE.challenge(for: String(repeating: "v", count: 43))

    static func params(_ overrides: [String: String?] = [:]) -> FormParameters {
        var v: [String: String] = [
            "client_id": "grafana", "redirect_uri": "https://grafana.example/cb", "response_type": "code", "scope": "openid groups",
            "state": "st", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
        ]
        for (k, value) in overrides { v[k] = value }
        return FormParameters(v)
    }

    @Test("a good request validates")
    func good() throws {
        let r = try AuthorizationRequest.validate(Self.params(), client: Self.client)
        #expect(r.scopes == [.openid, .groups])
        #expect(r.state == "st" && r.nonce == "n")
    }

    @Test("RFC 7636 Appendix B: the S256 challenge of the example verifier")
    func pkceVector() {
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.verify(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(!PKCE.verify(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(!PKCE.verify(verifier: "short", challenge: PKCE.challenge(for: "short")))
        #expect(!PKCE.verify(verifier: String(repeating: "a", count: 129), challenge: PKCE.challenge(for: String(repeating: "a", count: 129))))
        #expect(!PKCE.isValidVerifier(String(repeating: "a", count: 42) + "!"))
    }

    @Test("client and redirect URI problems are shown, never redirected")
    func shown() {
        let cases: [(FormParameters, OIDCClient?, String)] = [
            (Self.params(["client_id": nil]), Self.client, "client_id is missing"),
            (Self.params(), nil, "there is no client"),
            (Self.params(["redirect_uri": nil]), Self.client, "redirect_uri is missing"),
            (Self.params(["redirect_uri": "https://grafana.example/cb/"]), Self.client, "not registered"),
            (Self.params(["redirect_uri": "https://grafana.example/cb?x=1"]), Self.client, "not registered"),
            (Self.params(["redirect_uri": "https://GRAFANA.example/cb"]), Self.client, "not registered"),
            (Self.params(["redirect_uri": "https://evil.example/cb"]), Self.client, "not registered"),
            (Self.params(["redirect_uri": "http://127.0.0.1:8080/other"]), Self.client, "not registered"),
            (Self.params(["state": String(repeating: "s", count: 3000)]), Self.client, "too long"),
        ]
        for (p, client, message) in cases {
            do {
                _ = try AuthorizationRequest.validate(p, client: client)
                Issue.record("accepted: \(message)")
            } catch {
                guard case .show(let e) = error else {
                    Issue.record("redirected: \(error)")
                    continue
                }
                #expect(e.description.contains(message), "\(e.description)")
            }
        }
    }

    @Test("RFC 8252: a loopback IP redirect URI matches on any port")
    func loopbackPort() throws {
        let r = try AuthorizationRequest.validate(Self.params(["redirect_uri": "http://127.0.0.1:53123/cli"]), client: Self.client)
        #expect(r.redirectURI == "http://127.0.0.1:53123/cli")
    }

    @Test("request problems go back to the client with its state")
    func redirected() {
        let cases: [([String: String?], OAuthError.Code)] = [
            (["response_type": "token"], .unsupportedResponseType),
            (["response_type": nil], .invalidRequest),
            (["code_challenge": nil], .invalidRequest),
            (["code_challenge_method": "plain"], .invalidRequest),
            (["code_challenge_method": nil], .invalidRequest),
            (["code_challenge": "abc"], .invalidRequest),
            (["scope": "openid admin"], .invalidScope),
            (["prompt": "none login"], .invalidRequest),
            (["prompt": "bogus"], .invalidRequest),
            (["max_age": "-1"], .invalidRequest),
            (["request": "eyJ..."], .requestNotSupported),
            (["request_uri": "https://x"], .requestURINotSupported),
            (["response_mode": "fragment"], .invalidRequest),
        ]
        for (overrides, code) in cases {
            do {
                _ = try AuthorizationRequest.validate(Self.params(overrides), client: Self.client)
                Issue.record("accepted \(overrides)")
            } catch {
                guard case .redirect(let e, let uri, let state) = error else {
                    Issue.record("shown: \(error)")
                    continue
                }
                #expect(e.code == code, "\(overrides): \(e)")
                #expect(uri == "https://grafana.example/cb" && state == "st")
            }
        }
        let url = AuthorizationRequest.errorRedirect(
            OAuthError(.accessDenied, "no & more"), redirectURI: "https://a.example/cb?x=1", state: "s t", issuer: "https://gh.example")
        #expect(url == "https://a.example/cb?x=1&error=access_denied&error_description=no%20%26%20more&state=s%20t&iss=https%3A%2F%2Fgh.example")
    }

    @Test("the next step follows session, max_age, prompt, policy and consent")
    func steps() throws {
        let now = Self.now
        let key = [UInt8](repeating: 5, count: 32)
        func step(
            _ o: [String: String?] = [:], session: Date? = now.addingTimeInterval(-100), denial: String? = nil, consent: Bool = false,
            firstParty: Bool = true
        ) throws -> AuthorizationStep {
            var r = try AuthorizationRequest.validate(Self.params(o), client: Self.client)
            r.loginAfter = LoginAfter.verify(r.loginAfterToken, key: key, now: now)
            return AuthorizationStep.decide(
                r, session: session.map { .init(authTime: $0) }, policyDenial: denial, consentGiven: consent, firstParty: firstParty, now: now)
        }
        let fresh = AuthorizationStep.signIn(loginAfter: 1_800_000_000)
        let marker = LoginAfter.encode(1_799_999_950, key: key)
        #expect(try step() == .issueCode)
        #expect(try step(session: nil) == .signIn(loginAfter: nil))
        #expect(try step(["prompt": "none"], session: nil) == .error(OAuthError(.loginRequired, "the user is not signed in")))
        #expect(try step(["max_age": "60"]) == fresh)
        #expect(try step(["max_age": "600"]) == .issueCode)
        #expect(try step(["prompt": "login"]) == fresh)
        // Back from that sign-in: a session newer than the marker passes, an older one does not.
        #expect(try step(["prompt": "login", "login_after": marker], session: now.addingTimeInterval(-10)) == .issueCode)
        #expect(try step(["prompt": "login", "login_after": marker], session: now.addingTimeInterval(-100)) == fresh)
        // max_age=0 is satisfied by the sign-in it caused (no loop).
        #expect(try step(["max_age": "0", "login_after": marker], session: now.addingTimeInterval(-10)) == .issueCode)
        // A forged, stale or future marker counts for nothing.
        #expect(try step(["prompt": "login", "login_after": "1799999950"], session: now.addingTimeInterval(-10)) == fresh)
        #expect(
            try step(["prompt": "login", "login_after": LoginAfter.encode(1_799_999_000, key: key)], session: now.addingTimeInterval(-10)) == fresh)
        #expect(
            try step(["prompt": "login", "login_after": LoginAfter.encode(1_800_000_100, key: key)], session: now.addingTimeInterval(-10)) == fresh)
        #expect(
            try step(
                ["prompt": "login", "login_after": LoginAfter.encode(1_799_999_950, key: [UInt8](repeating: 6, count: 32))],
                session: now.addingTimeInterval(-10)) == fresh)
        #expect(try step(denial: "no matching rule") == .denied(reason: "no matching rule"))
        if case .error(let e) = try step(["prompt": "none"], denial: "x") { #expect(e.code == .accessDenied) } else { Issue.record("expected error") }
        #expect(try step(firstParty: false) == .consent)
        #expect(try step(consent: true, firstParty: false) == .issueCode)
        #expect(try step(["prompt": "consent"], consent: true, firstParty: false) == .consent)
        if case .error(let e) = try step(["prompt": "none"], firstParty: false) {
            #expect(e.code == .consentRequired)
        } else {
            Issue.record("expected error")
        }
    }
}

@Suite("OAuth parameter parsing")
struct FormParametersTests {
    @Test("form bodies decode + and percent escapes")
    func decodes() throws {
        let p = try FormParameters(parsing: "a=1+2&b=%C3%A9%2F&c=&d")
        #expect(p["a"] == "1 2" && p["b"] == "é/" && p["c"] == "" && p["d"] == "")
        #expect(p.nonEmpty("c") == nil)
    }

    @Test("hostile bodies are refused, not half-parsed")
    func hostile() {
        for body in [
            "a=1&a=2", "a=%ZZ", "a=%C3", "a=%00", "=x", "a=%0A", (0..<65).map { "k\($0)=v" }.joined(separator: "&"),
            String(repeating: "x", count: FormParameters.maxSize + 1),
        ] {
            #expect(throws: OAuthError.self, "\(body.prefix(40))") { try FormParameters(parsing: body) }
        }
    }

    @Test("Basic client authentication is form-decoded; two methods at once are refused")
    func clientCredentials() throws {
        let basic = "Basic " + Data("my%20client:s%3Acret".utf8).base64EncodedString()
        #expect(try ClientCredentials.parse(authorization: basic, form: FormParameters()) == .basic(id: "my client", secret: "s:cret"))
        #expect(
            try ClientCredentials.parse(authorization: nil, form: FormParameters(["client_id": "c", "client_secret": "s"]))
                == .post(id: "c", secret: "s"))
        #expect(try ClientCredentials.parse(authorization: nil, form: FormParameters(["client_id": "c"])) == .none(id: "c"))
        #expect(throws: OAuthError.self) {
            try ClientCredentials.parse(authorization: basic, form: FormParameters(["client_id": "c", "client_secret": "s"]))
        }
        #expect(throws: OAuthError.self) { try ClientCredentials.parse(authorization: basic, form: FormParameters(["client_id": "other"])) }
        #expect(throws: OAuthError.self) { try ClientCredentials.parse(authorization: "Bearer x", form: FormParameters()) }
        #expect(throws: OAuthError.self) { try ClientCredentials.parse(authorization: "Basic !!!", form: FormParameters()) }
        #expect(throws: OAuthError.self) { try ClientCredentials.parse(authorization: nil, form: FormParameters()) }
        #expect(throws: OAuthError.self) {
            try ClientCredentials.parse(authorization: nil, form: FormParameters(["client_assertion": "x", "client_assertion_type": "other"]))
        }
    }

    @Test("user codes: twenty consonants, typed loosely")
    func userCodes() {
        let random = SeededRandomSource(seed: 3)
        for _ in 0..<200 {
            let code = UserCode.generate(using: random)
            #expect(code.count == 8)
            #expect(UserCode.normalize(UserCode.display(code).lowercased()) == code)
        }
        #expect(UserCode.normalize("BCDF GHJK") == "BCDFGHJK")
        #expect(UserCode.normalize("ABCD-EFGH") == nil)  // vowels are never issued
        #expect(UserCode.normalize("BCDF-GHJ") == nil)
        #expect(UserCode.normalize(String(repeating: "B", count: 40)) == nil)
    }

    @Test("redirect URIs for registration: https, or http to loopback; no fragments")
    func redirectRegistration() {
        #expect(OIDCClient.redirectURIProblem("https://app.example/cb") == nil)
        #expect(OIDCClient.redirectURIProblem("http://127.0.0.1/cb") == nil)
        #expect(OIDCClient.redirectURIProblem("http://localhost:8080/cb") == nil)
        #expect(OIDCClient.redirectURIProblem("http://app.example/cb") != nil)
        #expect(OIDCClient.redirectURIProblem("https://app.example/cb#frag") != nil)
        #expect(OIDCClient.redirectURIProblem("https://user@app.example/cb") != nil)
        #expect(OIDCClient.redirectURIProblem("javascript:alert(1)") != nil)
        #expect(OIDCClient.redirectURIProblem("/relative") != nil)
    }
}
