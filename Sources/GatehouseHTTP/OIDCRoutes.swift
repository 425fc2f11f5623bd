import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseServices
import Hummingbird
import Mustache

/// The OpenID Connect provider's HTTP surface: discovery, JWKS, the authorization endpoint
/// with its consent page, the token, userinfo, revocation, introspection and device endpoints,
/// the device approval page and RP-initiated logout. Routes parse and answer; the decisions are
/// ``OIDCService``'s.
enum OIDCRoutes {
    static let maxFormBytes = FormParameters.maxSize

    static func add(
        to router: Router<GatehouseRequestContext>, oidc: OIDCService, passkeys: PasskeyService, publicURL: PublicURL,
        random: any RandomSource, time: any TimeSource
    ) throws {
        let library = try PageRoutes.library()
        @Sendable func page(
            _ template: String, title: String, _ values: [String: any Sendable], status: HTTPResponse.Status = .ok, formTargets: [String] = []
        ) -> Response {
            PageRoutes.render(library, template, title: title, values, status: status, formTargets: formTargets)
        }
        @Sendable func client(_ request: Request, _ context: GatehouseRequestContext) -> String? {
            context.clientAddress
        }
        @Sendable func source(_ address: String?) -> UInt128? { address.flatMap { try? IPPrefix(parsing: $0) }.map(\.first) }
        @Sendable func signedIn(_ request: Request) async throws -> OIDCService.SignedIn? {
            guard let token = WebAuthnRoutes.cookie(request, secure: publicURL.scheme == "https"),
                let (user, session) = try await passkeys.authenticate(sessionToken: token)
            else { return nil }
            return OIDCService.SignedIn(user: user, session: session)
        }
        @Sendable func errorPage(_ error: OAuthError) -> Response {
            page(
                "error", title: "Sign-in request refused",
                [
                    "heading": "This sign-in request cannot be completed",
                    "message": "\(error.description) (\(error.code.rawValue)). Go back to the application and try again.",
                ],
                status: .badRequest)
        }
        @Sendable func unavailable() -> Response {
            page(
                "error", title: "Unavailable",
                ["heading": "Something went wrong", "message": "Gatehouse cannot complete this right now. Try again in a moment."],
                status: .serviceUnavailable)
        }
        @Sendable func redirect(_ location: String) -> Response {
            Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
        }
        @Sendable func signInRedirect(_ returnTo: String) -> Response {
            redirect("/signin?return_to=" + FormParameters.encode(returnTo))
        }
        @Sendable func authorizationResponse(_ outcome: OIDCService.AuthorizationOutcome) -> Response {
            switch outcome {
            case .show(let error): return errorPage(error)
            case .redirect(let url): return redirect(url)
            case .signIn(let returnTo): return signInRedirect(returnTo)
            case .consent(let prompt):
                return page(
                    "consent", title: "Allow \(prompt.clientName)?",
                    ["clientName": prompt.clientName, "clientID": prompt.clientID, "scopes": Self.describe(prompt.scopes), "query": prompt.query],
                    formTargets: [(try? FormParameters(parsing: prompt.query))?["redirect_uri"]].compactMap { $0 })
            case .denied(let name, let reason):
                return page(
                    "error", title: "Not allowed",
                    [
                        "heading": "You cannot use \(name)",
                        "message":
                            "The access policy does not allow your account to use this application (\(reason)). Ask an administrator if you need it.",
                    ],
                    status: .forbidden)
            }
        }

        router.get("/.well-known/openid-configuration") { _, _ in
            var response = JSONResponse.make(.ok, oidc.discovery)
            response.headers[.cacheControl] = "public, max-age=300"
            return response
        }
        router.get("/oauth2/jwks") { _, _ in
            var response = JSONResponse.make(.ok, try await oidc.jwks())
            response.headers[.cacheControl] = "public, max-age=60"
            return response
        }

        // MARK: authorization endpoint and consent

        @Sendable func authorize(_ query: String, _ request: Request, _ context: GatehouseRequestContext) async -> Response {
            do {
                let address = client(request, context)
                return authorizationResponse(
                    try await oidc.authorize(
                        query: query, signedIn: try await signedIn(request), requestID: Identifier.make(using: random),
                        sourceAddress: address, source: source(address)))
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }
        router.get("/oauth2/authorize") { request, context in
            await authorize(request.uri.query ?? "", request, context)
        }
        router.post("/oauth2/authorize") { request, context in
            do {
                let form = try await Self.formBody(request)
                return await authorize(FormParameters.encode(form.values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }), request, context)
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }
        router.post("/oauth2/consent") { request, context in
            do {
                try Self.requireSameOrigin(request, publicURL)
                let form = try await Self.formBody(request)
                guard let query = form["request"], let decision = form["decision"], ["allow", "deny"].contains(decision) else {
                    throw OAuthError(.invalidRequest, "the consent form is incomplete")
                }
                guard let user = try await signedIn(request) else { return signInRedirect("/oauth2/authorize?" + query) }
                let address = client(request, context)
                return authorizationResponse(
                    try await oidc.consent(
                        query: query, approve: decision == "allow", signedIn: user, requestID: Identifier.make(using: random),
                        sourceAddress: address, source: source(address)))
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }

        // MARK: back channel

        router.post("/oauth2/token") { request, context in
            await Self.backChannel {
                let form = try await Self.formBody(request)
                let tokens = try await oidc.token(
                    form: form, authorization: request.headers[.authorization], requestID: Identifier.make(using: random),
                    sourceAddress: client(request, context))
                return Self.noStore(JSONResponse.make(.ok, tokens))
            }
        }
        router.post("/oauth2/introspect") { request, _ in
            await Self.backChannel {
                let form = try await Self.formBody(request)
                return Self.noStore(JSONResponse.make(.ok, try await oidc.introspect(form: form, authorization: request.headers[.authorization])))
            }
        }
        router.post("/oauth2/revoke") { request, context in
            await Self.backChannel {
                let form = try await Self.formBody(request)
                try await oidc.revoke(
                    form: form, authorization: request.headers[.authorization], requestID: Identifier.make(using: random),
                    sourceAddress: client(request, context))
                return Self.noStore(Response(status: .ok))
            }
        }
        // Each start writes a row and an audit entry, and public clients need no secret: bounded
        // per network and per client.
        let deviceStarts = RateLimiter(capacity: 30, per: 60, time: time)
        let deviceStartsPerClient = RateLimiter(capacity: 300, per: 60, time: time)
        router.post("/oauth2/device_authorization") { request, context in
            await Self.backChannel {
                let form = try await Self.formBody(request)
                let caller = try await oidc.authenticateClient(
                    try ClientCredentials.parse(authorization: request.headers[.authorization], form: form))
                if let address = client(request, context), deviceStarts.take(RateLimiter.sourceKey(address)) != nil {
                    throw OAuthError(.slowDown, "too many device authorizations from this network; wait a minute")
                }
                if deviceStartsPerClient.take("client:" + caller.id) != nil {
                    throw OAuthError(.slowDown, "too many device authorizations for this client; wait a minute")
                }
                return Self.noStore(
                    JSONResponse.make(
                        .ok,
                        try await oidc.startDeviceAuthorization(
                            client: caller, scope: form["scope"],
                            sourceAddress: client(request, context))))
            }
        }
        @Sendable func userinfo(_ request: Request) async -> Response {
            do {
                guard let header = request.headers[.authorization], header.utf8.count <= 256, header.lowercased().hasPrefix("bearer ") else {
                    var r = JSONResponse.raw(
                        .unauthorized, Array(#"{"error":"invalid_token","error_description":"send the access token as Authorization: Bearer"}"#.utf8))
                    r.headers[.wwwAuthenticate] = "Bearer"
                    return r
                }
                let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
                return Self.noStore(JSONResponse.make(.ok, try await oidc.userinfo(accessToken: token)))
            } catch let error as OAuthError {
                var r = Self.oauthError(error)
                r.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
                return r
            } catch {
                return Self.oauthError(OAuthError(.temporarilyUnavailable, "try again in a moment"))
            }
        }
        router.get("/oauth2/userinfo") { request, _ in await userinfo(request) }
        router.post("/oauth2/userinfo") { request, _ in await userinfo(request) }

        // MARK: device approval page

        let deviceLimiter = RateLimiter(capacity: 10, per: 60, time: time)
        router.get("/device") { request, context in
            do {
                let typed = request.uri.queryParameters.get("user_code") ?? ""
                guard let user = try await signedIn(request) else {
                    return signInRedirect("/device" + (typed.isEmpty ? "" : "?user_code=" + FormParameters.encode(String(typed.prefix(32)))))
                }
                guard !typed.isEmpty else { return page("device-entry", title: "Connect a device", ["userCode": ""]) }
                if deviceLimiter.take("user:" + user.user.username.rawValue) != nil
                    || client(request, context).map({ deviceLimiter.take(RateLimiter.sourceKey($0)) != nil }) == true
                {
                    return page(
                        "device-entry", title: "Connect a device", ["userCode": "", "problem": "Too many attempts; wait a minute and try again."],
                        status: .tooManyRequests)
                }
                guard let (record, device) = try await oidc.pendingDevice(userCode: typed) else {
                    return page(
                        "device-entry", title: "Connect a device",
                        ["userCode": String(typed.prefix(32)), "problem": "That code is not valid, has expired, or was already used."],
                        status: .notFound)
                }
                let started = ISO8601DateFormatter.string(
                    from: record.createdAt, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime])
                return page(
                    "device-confirm", title: "Connect a device",
                    [
                        "clientName": device.name, "userCode": UserCode.display(record.userCode),
                        "scopes": Self.describe(record.scope.split(separator: " ").map(String.init)),
                        "startedFrom": record.sourceAddress ?? "an unknown address", "startedAt": started,
                        "yourAddress": client(request, context) ?? "unknown",
                    ])
            } catch {
                return unavailable()
            }
        }
        router.post("/device") { request, context in
            do {
                try Self.requireSameOrigin(request, publicURL)
                let form = try await Self.formBody(request)
                guard let user = try await signedIn(request) else { return signInRedirect("/device") }
                guard let typed = form["user_code"], let decision = form["decision"], ["allow", "deny"].contains(decision) else {
                    throw OAuthError(.invalidRequest, "the form is incomplete")
                }
                if deviceLimiter.take("user:" + user.user.username.rawValue) != nil
                    || client(request, context).map({ deviceLimiter.take(RateLimiter.sourceKey($0)) != nil }) == true
                {
                    return page(
                        "device-entry", title: "Connect a device", ["userCode": "", "problem": "Too many attempts; wait a minute and try again."],
                        status: .tooManyRequests)
                }
                let address = client(request, context)
                switch try await oidc.decideDevice(
                    userCode: typed, approve: decision == "allow", signedIn: user, requestID: Identifier.make(using: random),
                    sourceAddress: address, source: source(address))
                {
                case .approved(let name):
                    return page(
                        "notice", title: "Device connected",
                        ["heading": "\(name) is signed in", "message": "You can close this page and return to your device."])
                case .declined:
                    return page("notice", title: "Device refused", ["heading": "Refused", "message": "The device was not signed in."])
                case .denied(let reason):
                    return page(
                        "error", title: "Not allowed",
                        [
                            "heading": "You cannot use this application",
                            "message": "The access policy does not allow it (\(reason)).",
                        ], status: .forbidden)
                case .invalidCode:
                    return page(
                        "device-entry", title: "Connect a device",
                        ["userCode": "", "problem": "That code is not valid, has expired, or was already used."], status: .notFound)
                }
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }

        // MARK: logout

        @Sendable func logout(_ query: String, confirmed: Bool, _ request: Request, _ context: GatehouseRequestContext) async -> Response {
            do {
                let params = try FormParameters(parsing: query)
                let user = try await signedIn(request)
                switch try await oidc.logout(
                    query: params, signedIn: user, confirmed: confirmed, requestID: Identifier.make(using: random),
                    sourceAddress: client(request, context))
                {
                case .redirect(let url): return Self.clearingCookie(redirect(url), publicURL)
                case .signedOut:
                    return Self.clearingCookie(
                        page("notice", title: "Signed out", ["heading": "You are signed out", "message": "You can close this page."]), publicURL)
                case .confirm:
                    return page(
                        "logout-confirm", title: "Sign out?", ["query": query], formTargets: [params["post_logout_redirect_uri"]].compactMap { $0 })
                case .show(let error): return errorPage(error)
                }
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }
        router.get("/oauth2/logout") { request, context in await logout(request.uri.query ?? "", confirmed: false, request, context) }
        router.post("/oauth2/logout") { request, context in
            do {
                try Self.requireSameOrigin(request, publicURL)
                let form = try await Self.formBody(request)
                if let original = form["request"] { return await logout(original, confirmed: form["confirm"] == "yes", request, context) }
                return await logout(
                    FormParameters.encode(form.values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }), confirmed: false, request, context)
            } catch let error as OAuthError {
                return errorPage(error)
            } catch {
                return unavailable()
            }
        }
    }

    // MARK: helpers

    /// A form body: `application/x-www-form-urlencoded` only, bounded, parsed strictly.
    /// What each scope lets the client do, in words (the consent and device pages).
    static func describe(_ scopes: [String]) -> [String] {
        scopes.map { Scope(rawValue: $0)?.consentText ?? $0 }
    }

    static func formBody(_ request: Request) async throws -> FormParameters {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw OAuthError(.invalidRequest, "send the parameters as application/x-www-form-urlencoded")
        }
        let bytes: [UInt8]
        do { bytes = try await collectBody(request, limit: Self.maxFormBytes) } catch {
            throw OAuthError(.invalidRequest, "request parameters are too large")
        }
        return try FormParameters(parsing: bytes)
    }

    /// Browser form posts must come from our own pages (a second line behind SameSite=Lax,
    /// which does not separate Gatehouse from apps on sibling host names). Browsers say where a
    /// request comes from in Sec-Fetch-Site, which pages cannot set: it must be `same-origin`.
    /// Without it (older browsers, other clients) the Origin must be ours. (Our pages send no
    /// referrer, so browsers send `Origin: null` on their form posts: Origin alone cannot tell.)
    static func requireSameOrigin(_ request: Request, _ publicURL: PublicURL) throws {
        if let site = request.headers[.init("Sec-Fetch-Site")!] {
            guard site == "same-origin" else { throw OAuthError(.invalidRequest, "this form must be sent from Gatehouse's own page") }
        } else if request.headers[.origin] != publicURL.origin {
            throw OAuthError(.invalidRequest, "this form must be sent from Gatehouse's own page")
        }
    }

    static func noStore(_ response: Response) -> Response {
        var r = response
        r.headers[.cacheControl] = "no-store"
        r.headers[.init("Pragma")!] = "no-cache"
        return r
    }

    static func clearingCookie(_ response: Response, _ publicURL: PublicURL) -> Response {
        var r = response
        r.headers[.setCookie] =
            "\(WebAuthnRoutes.cookieName(secure: publicURL.scheme == "https"))=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
            + (publicURL.scheme == "https" ? "; Secure" : "")
        return r
    }

    struct ErrorBody: Encodable {
        let error: String
        let errorDescription: String
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }

    static func oauthError(_ error: OAuthError) -> Response {
        Self.noStore(JSONResponse.make(.init(code: error.httpStatus), ErrorBody(error: error.code.rawValue, errorDescription: error.description)))
    }

    /// Runs a back-channel endpoint: OAuth errors become RFC 6749 §5.2 JSON; anything else (the
    /// store unreachable, the audit log unwritable) is `temporarily_unavailable`, never a token.
    static func backChannel(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as OAuthError {
            var r = Self.oauthError(error)
            if error.code == .invalidClient { r.headers[.wwwAuthenticate] = "Basic realm=\"gatehouse\"" }
            return r
        } catch let error as GatehouseError where error.code == .invalidInput || error.code == .notFound {
            return Self.oauthError(OAuthError(.invalidRequest, error.message))
        } catch {
            return Self.oauthError(OAuthError(.temporarilyUnavailable, "Gatehouse cannot complete this right now; try again"))
        }
    }
}
