import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseServices
import Hummingbird

/// The private network over HTTP: people register their devices' WireGuard keys with a bearer
/// token carrying the `network` scope; agents, over mutual TLS, register their hosts' keys and
/// long-poll for their configuration.
enum NetworkRoutes {
    static let maxBodyBytes = 4096
    /// The longest an agent's poll is held open.
    static let maxWait: Double = 55

    struct DeviceBody: Decodable {
        let publicKey: String
        let name: String
        enum CodingKeys: String, CodingKey {
            case publicKey = "public_key"
            case name
        }
    }

    struct HostBody: Decodable {
        let publicKey: String
        let endpoint: String
        enum CodingKeys: String, CodingKey {
            case publicKey = "public_key"
            case endpoint
        }
    }

    /// A JSON object with exactly the keys of `T`, at most `maxBodyBytes`.
    static func body<T: Decodable>(_ request: Request, _ type: T.Type, keys: Set<String>) async throws -> T {
        try WebAuthnRoutes.requireJSON(request)
        let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
        try StrictJSON.checkKeys(bytes, allowed: keys)
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw GatehouseError(.invalidInput, "the body needs \(keys.sorted().joined(separator: " and ")) as strings")
        }
    }

    static func add(to router: Router<GatehouseRequestContext>, network: NetworkService, oidc: OIDCService, time: any TimeSource) {
        // Registrations write a row and an audit event: bounded per person.
        let registrations = RateLimiter(capacity: 20, per: 60, time: time)
        router.post("/api/network/devices") { request, _ in
            let caller: BearerCaller
            switch try await SSHRoutes.bearer(request, oidc: oidc, scope: .network) {
            case .refused(let response): return response
            case .user(let c): caller = c
            }
            let user = caller.user
            if let wait = registrations.take("user:" + user.id) {
                throw GatehouseError(.rateLimited, "too many device registrations; try again in \(wait) seconds", retryAfter: wait)
            }
            let body = try await Self.body(request, DeviceBody.self, keys: ["public_key", "name"])
            let key = try WireGuardKey(base64: body.publicKey)
            return JSONResponse.make(
                .created,
                try await network.registerDevice(
                    user: user, publicKey: key, name: body.name, signedInAt: caller.authTime,
                    grantID: caller.grantID))
        }
        router.get("/api/network/devices") { request, _ in
            switch try await SSHRoutes.bearer(request, oidc: oidc, scope: .network) {
            case .refused(let response): return response
            case .user(let caller): return JSONResponse.make(.ok, try await network.devices(userID: caller.user.id, liveOnly: false))
            }
        }
        router.delete("/api/network/devices/:id") { request, context in
            switch try await SSHRoutes.bearer(request, oidc: oidc, scope: .network) {
            case .refused(let response): return response
            case .user(let caller):
                try await network.removeDevice(
                    id: context.parameters.get("id") ?? "", owner: caller.user, actor: AuditParty.user(caller.user.username).description)
                return Response(status: .noContent)
            }
        }
    }

    static func add(to router: Router<MTLSRequestContext>, network: NetworkService, pki: PKIService, time: any TimeSource) {
        // An agent registers at start; a host that re-registers in a loop (each change is an
        // audit event and makes every agent recompute) is slowed down.
        let registrations = RateLimiter(capacity: 30, per: 60, time: time)
        router.post("/api/agent/network") { request, context in
            let (host, enrolledAt) = try await MTLSListener.agent(context, pki: pki)
            if let wait = registrations.take("host:" + host) {
                throw GatehouseError(.rateLimited, "too many network registrations; try again in \(wait) seconds", retryAfter: wait)
            }
            let body = try await Self.body(request, HostBody.self, keys: ["public_key", "endpoint"])
            try await network.registerHost(
                host: host, enrolledAt: enrolledAt, publicKey: try WireGuardKey(base64: body.publicKey), endpoint: body.endpoint)
            return JSONResponse.make(.ok, try await network.configuration(host: host))
        }
        router.get("/api/agent/network") { request, context in
            let (host, _) = try await MTLSListener.agent(context, pki: pki)
            let after = request.uri.queryParameters.get("after").map { String($0) }
            let waitText = request.uri.queryParameters.get("wait").map { String($0) }
            let wait = waitText.map { Double($0) ?? .nan } ?? 0
            guard wait.isFinite, wait >= 0, after.map({ $0.utf8.count <= 64 }) ?? true else {
                throw GatehouseError(.invalidInput, "wait is seconds (0–\(Int(Self.maxWait))) and after a configuration version")
            }
            let config = try await network.nextConfiguration(
                host: host, after: after, timeout: Duration.milliseconds(Int(min(wait, Self.maxWait) * 1000)),
                interval: network.pollInterval)
            // The agent's certificate may have been revoked while it waited.
            _ = try await MTLSListener.agent(context, pki: pki)
            return JSONResponse.make(.ok, config)
        }
        router.delete("/api/agent/network") { _, context in
            let (host, enrolledAt) = try await MTLSListener.agent(context, pki: pki)
            try await network.deregisterHost(host: host, enrolledAt: enrolledAt)
            return Response(status: .noContent)
        }
    }
}
