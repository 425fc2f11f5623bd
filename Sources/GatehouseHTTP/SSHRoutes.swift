import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseSSH
import GatehouseServices
import Hummingbird

/// `/api/ssh/...`: the CA keys (public), and user certificates for a bearer access token that
/// carries the `ssh` scope (what `gatehouse login` obtains).
enum SSHRoutes {
    static let maxBodyBytes = 16 * 1024

    struct CAKeys: Encodable {
        let userCA: String
        let hostCA: String
        /// The SSH bastion's host key and port, when it listens.
        let bastion: Bastion?
        enum CodingKeys: String, CodingKey {
            case userCA = "user_ca"
            case hostCA = "host_ca"
            case bastion
        }
    }

    struct Bastion: Encodable {
        /// Where clients reach it: the public URL's host (the listener may bind another address).
        let host: String
        let port: Int
        let hostKey: String
        enum CodingKeys: String, CodingKey {
            case host, port
            case hostKey = "host_key"
        }
    }

    struct IssuedBody: Encodable {
        let certificate: String
        let serial: String
        let principals: [String]
        let validAfter: Date
        let validBefore: Date
        /// Logins a fresh passkey check would add (absent when none).
        let stepUpWouldAdd: [String]?
        enum CodingKeys: String, CodingKey {
            case certificate, serial, principals
            case validAfter = "valid_after"
            case validBefore = "valid_before"
            case stepUpWouldAdd = "step_up_would_add"
        }
    }

    struct JoinedBody: Encodable {
        let host: String
        let hostCertificate: String
        let principals: [String]
        let validBefore: Date
        let agentToken: String?
        let userCA: String
        let agentCertificate: String?
        let rootCertificate: String?
        /// Where the agent reaches the mutual-TLS listener, when the server runs one.
        var mtlsURL: String? = nil
        enum CodingKeys: String, CodingKey {
            case mtlsURL = "mtls_url"
            case host, principals
            case agentCertificate = "agent_certificate"
            case rootCertificate = "root_certificate"
            case hostCertificate = "host_certificate"
            case validBefore = "valid_before"
            case agentToken = "agent_token"
            case userCA = "user_ca"
        }
        init(_ j: HostEnrollmentService.Joined) {
            self.host = j.host
            self.hostCertificate = j.hostCertificate
            self.principals = j.principals
            self.validBefore = j.validBefore
            self.agentToken = j.agentToken
            self.userCA = j.userCA
            self.agentCertificate = j.agentCertificate
            self.rootCertificate = j.rootCertificate
        }
    }

    /// `POST /api/hosts/join` (a one-time join token) and `POST /api/hosts/renew` (the agent's
    /// bearer token): host certificates for enrolled servers.
    static func addHosts(to router: Router<GatehouseRequestContext>, hosts: HostEnrollmentService, mtlsURL: String?, time: any TimeSource) {
        let joins = RateLimiter(capacity: 30, per: 60, time: time)
        @Sendable func body(_ request: Request, _ allowed: Set<String>) async throws -> [String: String] {
            try WebAuthnRoutes.requireJSON(request)
            let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: allowed)
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw GatehouseError(.invalidInput, "body must be a JSON object")
            }
            var out: [String: String] = [:]
            for (k, v) in object {
                guard let text = v as? String else { throw GatehouseError(.invalidInput, "\(k) must be a string") }
                out[k] = text
            }
            return out
        }
        router.post("/api/hosts/join") { request, context in
            let address = context.clientAddress
            if let address, joins.take(RateLimiter.sourceKey(address)) != nil {
                throw GatehouseError(.rateLimited, "too many join attempts; try again in a minute", retryAfter: 60)
            }
            let fields = try await body(request, ["token", "host_key", "agent_csr"])
            guard let token = fields["token"], let key = fields["host_key"] else {
                throw GatehouseError(.invalidInput, "token and host_key are required")
            }
            var joined = JoinedBody(try await hosts.join(token: token, hostKey: key, agentCSR: fields["agent_csr"], sourceAddress: address))
            if joined.agentCertificate != nil { joined.mtlsURL = mtlsURL }
            return JSONResponse.make(.created, joined)
        }
        router.post("/api/hosts/renew") { request, context in
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
                throw GatehouseError(.unauthenticated, "send the agent token as Authorization: Bearer")
            }
            let fields = try await body(request, ["host_key"])
            guard let key = fields["host_key"] else { throw GatehouseError(.invalidInput, "host_key is required") }
            let address = context.clientAddress
            return JSONResponse.make(
                .ok,
                JoinedBody(
                    try await hosts.renew(
                        agentToken: String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces), hostKey: key, sourceAddress: address)))
        }
    }

    /// The caller behind a bearer token with a scope, or the answer to refuse with.
    enum BearerOutcome: Sendable {
        case user(BearerCaller)
        case refused(Response)
    }

    /// The signed-in user behind a live bearer access token that carries `scope`.
    static func bearer(_ request: Request, oidc: OIDCService, scope: Scope) async throws -> BearerOutcome {
        guard let header = request.headers[.authorization], header.utf8.count <= 256, header.lowercased().hasPrefix("bearer "),
            let caller = try await oidc.authenticateBearer(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        else {
            var r = JSONResponse.error(GatehouseError(.unauthenticated, "send a live access token as Authorization: Bearer (gatehouse login)"))
            r.headers[.wwwAuthenticate] = "Bearer"
            return .refused(r)
        }
        guard caller.scopes.contains(scope) else {
            var r = JSONResponse.error(.forbidden, code: "insufficient_scope", "this access token was not issued with the \(scope.rawValue) scope")
            r.headers[.wwwAuthenticate] = "Bearer error=\"insufficient_scope\", scope=\"\(scope.rawValue)\""
            return .refused(r)
        }
        return .user(caller)
    }

    struct HostListing: Encodable {
        let name: String
        let addresses: [String]
        /// The host's sshd port (the policy's `ssh_port`, 22 by default).
        let port: Int
    }

    static func add(
        to router: Router<GatehouseRequestContext>, ssh: SSHCertificateService, oidc: OIDCService, random: any RandomSource, time: any TimeSource,
        bastion bastionSSH: (host: String, port: Int, hostKey: String)? = nil
    ) {
        // Each issuance writes an inventory row and an audit event: bounded per person.
        let issuances = RateLimiter(capacity: 60, per: 60, time: time)
        @Sendable func bearer(_ request: Request) async throws -> BearerOutcome { try await Self.bearer(request, oidc: oidc, scope: .ssh) }
        router.get("/api/ssh/hosts") { request, context in
            switch try await bearer(request) {
            case .refused(let response): return response
            case .user(let caller):
                let (user, authTime) = (caller.user, caller.authTime)
                let address = context.clientAddress
                let hosts = ssh.reachableHosts(
                    for: user, sourceAddress: address.flatMap { try? IPPrefix(parsing: $0) }.map(\.first), lastStepUp: authTime)
                return JSONResponse.make(.ok, hosts.map { HostListing(name: $0.name, addresses: $0.addresses, port: $0.port) })
            }
        }
        router.get("/api/ssh/ca") { _, _ in
            let bastion = bastionSSH.map { Bastion(host: $0.host, port: $0.port, hostKey: $0.hostKey) }
            var r = JSONResponse.make(.ok, CAKeys(userCA: ssh.userCAKey.authorizedKey, hostCA: ssh.hostCAKey.authorizedKey, bastion: bastion))
            r.headers[.cacheControl] = "public, max-age=300"
            return r
        }
        router.get("/api/ssh/krl") { _, _ in
            var r = JSONResponse.raw(.ok, try await ssh.revocationList().encoded(), contentType: "application/octet-stream")
            r.headers[.cacheControl] = "no-cache"
            return r
        }
        router.post("/api/ssh/certificates") { request, context in
            let caller: BearerCaller
            switch try await bearer(request) {
            case .refused(let response): return response
            case .user(let c): caller = c
            }
            let (user, authTime) = (caller.user, caller.authTime)
            if let wait = issuances.take("user:" + user.id) {
                throw GatehouseError(.rateLimited, "too many certificate requests; try again in \(wait) seconds", retryAfter: wait)
            }
            try WebAuthnRoutes.requireJSON(request)
            let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: ["public_key", "hosts", "lifetime_seconds", "proof"])
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let key = object["public_key"] as? String
            else {
                throw GatehouseError(.invalidInput, "public_key is required: the OpenSSH public key line (ssh-ed25519 AAAA...)")
            }
            var proof: String? = nil
            if let value = object["proof"] {
                guard let text = value as? String else { throw GatehouseError(.invalidInput, "proof must be a string: the armored SSH signature") }
                proof = text
            }
            let token = String((request.headers[.authorization] ?? "").dropFirst(7)).trimmingCharacters(in: .whitespaces)
            var hosts: [String]? = nil
            if let value = object["hosts"] {
                guard let list = value as? [String] else { throw GatehouseError(.invalidInput, "hosts must be a list of host names") }
                hosts = list
            }
            var lifetime: TimeInterval? = nil
            if let value = object["lifetime_seconds"] {
                guard let n = value as? Int, !(value is Bool) else { throw GatehouseError(.invalidInput, "lifetime_seconds must be a whole number") }
                lifetime = TimeInterval(n)
            }
            let address = context.clientAddress
            let issued = try await ssh.issue(
                user: user, publicKey: key, hosts: hosts, lifetime: lifetime, sourceAddress: address,
                source: address.flatMap { try? IPPrefix(parsing: $0) }.map(\.first), lastStepUp: authTime, requestID: Identifier.make(using: random),
                grantID: caller.grantID, possession: (proof, token))
            return JSONResponse.make(
                .created,
                IssuedBody(
                    certificate: issued.certificate, serial: String(issued.serial), principals: issued.principals,
                    validAfter: issued.validAfter, validBefore: issued.validBefore,
                    stepUpWouldAdd: issued.stepUpWouldAdd.isEmpty ? nil : issued.stepUpWouldAdd))
        }
    }
}
