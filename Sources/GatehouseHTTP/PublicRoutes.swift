import Foundation
import GatehouseCore
import GatehouseGraphQL
import GatehousePKI
import GatehouseServices
public import Hummingbird
public import HummingbirdCore
import HummingbirdWebSocket

/// The routes served on `--listen`: health, readiness, metrics and GraphQL.
public enum PublicRoutes {
    /// How long `/readyz` waits for the store before answering "not ready".
    static let readinessTimeout: Duration = .seconds(2)

    /// The router wrapped with the identity-aware proxy (when OIDC is on): what the listener
    /// serves. `proxy` is the one the composition root built (``proxy(_:)``), shared with
    /// ``httpServer(_:proxy:http1:)`` so its state (hand-off tickets) is in one place.
    public static func makeResponder(_ deps: HTTPDependencies, proxy: IdentityProxy?) throws -> ProxyingRouter {
        ProxyingRouter(router: try Self.makeRouter(deps, proxy: proxy), proxy: proxy)
    }

    /// The listener's HTTP/1.1 server: with the proxy on, WebSocket upgrades for proxied apps
    /// are decided (and relayed) by it; everything else is plain HTTP/1.1.
    public static func httpServer(_ deps: HTTPDependencies, proxy: IdentityProxy?, http1: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        guard let proxy else { return .http1(configuration: http1) }
        return .http1WebSocketUpgrade(configuration: .init(http1: http1, ws: .init(maxFrameSize: 1 << 20))) { head, channel, _ in
            await proxy.webSocketUpgrade(head, channel: channel)
        }
    }

    /// The identity-aware proxy, when OIDC is on. Build it once per listener.
    public static func proxy(_ deps: HTTPDependencies) -> IdentityProxy? {
        deps.oidc.map {
            IdentityProxy(
                oidc: $0, passkeys: deps.passkeys, environment: deps.environment, publicURL: deps.publicURL, ticketKey: deps.proxyTicketKey,
                trustedProxies: deps.trustedProxies)
        }
    }

    public static func makeRouter(_ deps: HTTPDependencies, proxy: IdentityProxy? = nil) throws -> Router<GatehouseRequestContext> {
        let router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: ClientAddressMiddleware(trusted: deps.trustedProxies))
        router.add(middleware: RequestMetrics(registry: deps.registry))
        router.add(middleware: SecurityHeaders())
        router.add(middleware: BrowserPages(library: try PageRoutes.library(), publicURL: deps.publicURL))
        router.add(middleware: CodedErrorMiddleware())
        let gateway = try GraphQLGateway()
        let personIssuances = PKIRoutes.personIssuances(time: deps.environment.time)
        let info = ServerInfo(version: deps.version, publicURL: deps.publicURL, startedAt: deps.startedAt)

        WebAuthnRoutes.add(
            to: router, passkeys: deps.passkeys, publicURL: deps.publicURL, random: deps.environment.random, time: deps.environment.time,
            perSourceAttempts: deps.signInRatePerMinute)
        let policy = deps.policy
        try PageRoutes.add(
            to: router, passkeys: deps.passkeys, secure: deps.publicURL.scheme == "https", publicURL: deps.publicURL.description,
            membership: { policy.membership(of: $0) })
        if let oidc = deps.oidc {
            try OIDCRoutes.add(
                to: router, oidc: oidc, passkeys: deps.passkeys, publicURL: deps.publicURL, random: deps.environment.random,
                time: deps.environment.time)
            if let ssh = deps.ssh {
                SSHRoutes.add(
                    to: router, ssh: ssh, oidc: oidc, random: deps.environment.random, time: deps.environment.time, bastion: deps.bastionSSH)
            }
            if let network = deps.network { NetworkRoutes.add(to: router, network: network, oidc: oidc, time: deps.environment.time) }
            if let hosts = deps.hosts { SSHRoutes.addHosts(to: router, hosts: hosts, mtlsURL: deps.mtlsURL, time: deps.environment.time) }
            if let proxy {
                router.get("/oauth2/proxy/start") { request, context in await proxy.start(request, context: context) }
            }
        }
        if let pki = deps.pki {
            PKIRoutes.add(to: router, pki: pki, oidc: deps.oidc, random: deps.environment.random, issuances: personIssuances)
        }
        router.get("/healthz") { _, _ in
            JSONResponse.make(.ok, ["status": "alive"])
        }
        router.get("/readyz") { _, _ in
            // The router exists only after the keys were unsealed; the store is checked live.
            do {
                try await Self.withDeadline(Self.readinessTimeout) { try await deps.environment.store.ping() }
                return JSONResponse.make(.ok, ["status": "ready"])
            } catch {
                return JSONResponse.make(.serviceUnavailable, ["status": "unavailable", "reason": "store unreachable"])
            }
        }
        router.get("/metrics") { _, _ in
            let text = deps.registry.emitToString() + ProcessMetrics.render()
            return JSONResponse.raw(.ok, Array(text.utf8), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.post("/graphql") { request, context in
            // Only JSON bodies: a cross-site form or text/plain post cannot reach the resolvers.
            let contentType = request.headers[.contentType]?.lowercased() ?? ""
            guard contentType.hasPrefix("application/json") || contentType.hasPrefix("application/graphql-response+json") else {
                return JSONResponse.raw(
                    .unsupportedMediaType,
                    Array(
                        #"{"errors":[{"extensions":{"code":"UNSUPPORTED_MEDIA_TYPE"},"message":"send the request as Content-Type: application/json"}]}"#
                            .utf8)
                )
            }
            let body: [UInt8]
            do {
                body = try await collectBody(request, limit: GraphQLGateway.Limits.default.maxBodyBytes)
            } catch {
                return JSONResponse.raw(
                    .contentTooLarge,
                    Array(#"{"errors":[{"extensions":{"code":"REQUEST_TOO_LARGE"},"message":"request body is too large"}]}"#.utf8)
                )
            }
            // A bearer token with the certificates scope lets signCertificate act for its person.
            var signer: (@Sendable (String, Int?) async throws -> IssuedCertificateNode)? = nil
            if let pki = deps.pki, let oidc = deps.oidc, request.headers[.authorization] != nil {
                switch try await SSHRoutes.bearer(request, oidc: oidc, scope: .certificates) {
                case .refused(let response): return response
                case .user(let caller):
                    let user = caller.user
                    let address = context.clientAddress
                    signer = { csr, lifetime in
                        if let wait = personIssuances.take("user:" + user.id) {
                            throw GatehouseError(.rateLimited, "too many certificate requests; try again in \(wait) seconds", retryAfter: wait)
                        }
                        let issued = try await pki.sign(
                            try SigningRequest(pemOrDER: Array(csr.utf8)), requester: .user(user), lifetime: lifetime.map(TimeInterval.init),
                            sourceAddress: address, requestID: Identifier.make(using: deps.environment.random), grantID: caller.grantID)
                        return IssuedCertificateNode(
                            certificate: try Authority.pem(issued.certificate), chain: try issued.chain.map(Authority.pem).joined(),
                            root: try Authority.pem(pki.current().root), serial: issued.serial, spiffeId: issued.spiffeID,
                            notAfter: issued.certificate.notValidAfter)
                    }
                }
            }
            let response = await gateway.handle(body: body, context: GraphQLContext(serverInfo: info, signCertificate: signer))
            return JSONResponse.raw(.init(code: response.status), response.body)
        }
        return router
    }

    /// Runs `body` but answers after `timeout` at the latest: on timeout the body is cancelled
    /// and left to finish on its own, so a probe on a hung connection cannot hang the caller.
    static func withDeadline(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let outcome = LockedBox<CheckedContinuation<Void, any Error>?>(nil)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            outcome.value = continuation
            let work = Task {
                do {
                    try await body()
                    outcome.mutate { $0.take() }?.resume()
                } catch {
                    outcome.mutate { $0.take() }?.resume(throwing: error)
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if let pending = outcome.mutate({ $0.take() }) {
                    work.cancel()
                    pending.resume(throwing: CancellationError())
                }
            }
        }
    }
}

/// Conservative headers on every response; the pages that come later tighten CSP per route.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // 404, 405, 413 and friends get the same headers as every other response.
            response = try error.response(from: request, context: context)
        }
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        // Pages set their own policy (own script and stylesheet only); everything else gets none.
        if response.headers[.init("Content-Security-Policy")!] == nil {
            response.headers[.init("Content-Security-Policy")!] = "default-src 'none'; frame-ancestors 'none'"
        }
        return response
    }
}
