import Foundation
import GatehouseCore
import GatehouseGraphQL
import GatehouseServices
public import Hummingbird

/// The routes served on the local admin socket (`DATA_DIR/admin.sock`, mode 0600). Reaching the
/// socket is the credential, as with a database's local socket; every change is audited with the
/// actor `admin-socket`.
public enum AdminRoutes {
    static let maxBodyBytes = 16 * 1024
    static let actor = "admin-socket"
    /// Where admin requests come from, in audit events: the local socket (peer credentials are
    /// not read yet; file permissions decide who may connect).
    static let source = "unix:admin.sock"

    public static func makeRouter(_ deps: HTTPDependencies) -> Router<BasicRequestContext> {
        let router = Router()
        // The socket's operator is the administrator: server-side failures keep their words.
        router.add(middleware: CodedErrorMiddleware(revealServerErrors: true))
        let invitations = InvitationService(
            environment: deps.environment, publicURL: deps.publicURL,
            recoveryHooks: OffboardingService.defaultHooks + deps.extraOffboardingHooks)

        router.get("/v1/status") { _, _ in
            let status = try await ServerStatus.read(
                environment: deps.environment, version: deps.version, publicURL: deps.publicURL, startedAt: deps.startedAt
            )
            return JSONResponse.make(.ok, status)
        }

        router.post("/v1/invitations") { request, _ in
            let body = try await collectBody(request, limit: Self.maxBodyBytes)
            let input = try InviteRequest.parse(body)
            let issued = try await invitations.invite(
                username: input.username, email: input.email, role: input.role, actor: Self.actor,
                requestID: Identifier.make(using: deps.environment.random), sourceAddress: Self.source
            )
            return JSONResponse.make(.created, InviteResponse(issued))
        }
        AuditRoutes.add(to: router, log: deps.auditLog)
        let offboarding = OffboardingService(environment: deps.environment, hooks: OffboardingService.defaultHooks + deps.extraOffboardingHooks)
        AccountRoutes.add(to: router, deps: deps, invitations: invitations, offboarding: offboarding)
        AccountRoutes.addInvitations(to: router, deps: deps, invitations: invitations)
        PolicyRoutes.add(to: router, policy: deps.policy, random: deps.environment.random, actor: Self.actor, source: Self.source)
        if let oidc = deps.oidc { OIDCAdminRoutes.add(to: router, oidc: oidc, random: deps.environment.random) }
        if let pki = deps.pki { PKIAdminRoutes.add(to: router, pki: pki, actor: Self.actor) }
        if let network = deps.network { NetworkAdminRoutes.add(to: router, network: network, actor: Self.actor) }
        if let bastion = deps.bastion, let directory = deps.recordingsDirectory {
            SessionAdminRoutes.add(to: router, bastion: bastion, recordings: directory, actor: Self.actor)
        }
        if let hosts = deps.hosts {
            router.post("/v1/hosts") { request, _ in
                let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
                try StrictJSON.checkKeys(bytes, allowed: ["name", "labels"])
                let object = (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
                guard let name = object["name"] as? String, (1...64).contains(name.utf8.count) else {
                    throw GatehouseError(.invalidInput, "name is required")
                }
                var labels: [String: String] = [:]
                if let value = object["labels"] {
                    guard let map = value as? [String: String], map.count <= 64 else {
                        throw GatehouseError(.invalidInput, "labels must be an object of strings")
                    }
                    labels = map
                }
                let (token, expires) = try await hosts.addHost(
                    name: name, labels: labels, actor: Self.actor, requestID: Identifier.make(using: deps.environment.random))
                return JSONResponse.make(.created, ["name": name, "token": token, "expires_at": ISO8601DateFormatter().string(from: expires)])
            }
        }

        // The administrator's GraphQL schema: the public one plus reads that need an
        // authenticated caller (reaching this socket is the authentication).
        var limits = GraphQLGateway.Limits.default
        limits.maxBodyBytes = PolicyRoutes.maxBodyBytes  // a policy text can travel in a mutation
        let gateway = try? GraphQLGateway(.admin, limits: limits)
        let info = ServerInfo(version: deps.version, publicURL: deps.publicURL, startedAt: deps.startedAt)
        var sessionRecording: (@Sendable (String, Int) async throws -> String)?
        if let bastion = deps.bastion, let directory = deps.recordingsDirectory {
            sessionRecording = { id, after in
                try await SessionAdminRoutes.asciicast(id: id, after: after, bastion: bastion, recordings: directory, limit: 16 << 20)
            }
        }
        let recordingRenderer = sessionRecording
        router.post("/v1/graphql") { request, _ in
            guard let gateway else {
                return JSONResponse.error(.internalServerError, code: "internal", "the admin GraphQL schema could not be built")
            }
            let body: [UInt8]
            body = try await collectBody(request, limit: PolicyRoutes.maxBodyBytes)
            let response = await gateway.handle(
                body: body,
                context: GraphQLContext(
                    serverInfo: info, auditLog: deps.auditLog, policy: deps.policy, offboarding: offboarding, actor: Self.actor, pki: deps.pki,
                    bastion: deps.bastion, sessionRecording: recordingRenderer, network: deps.network, invitations: invitations
                ))
            return JSONResponse.raw(.init(code: response.status), response.body)
        }
        return router
    }
}

struct OffboardResult: Codable {
    let username: String
    let revoked: [String: Int]
}

/// `POST /v1/invitations` body: `{"username": "...", "email": "...", "role": "..."}`.
/// Unknown fields are refused rather than ignored.
struct InviteRequest {
    let username: Username
    let email: EmailAddress?
    let role: RoleName

    static func parse(_ body: [UInt8]) throws(GatehouseError) -> InviteRequest {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw GatehouseError(.invalidInput, "body must be a JSON object")
        }
        for key in object.keys where !["username", "email", "role"].contains(key) {
            throw GatehouseError(.invalidInput, "unknown field '\(key.prefix(64))'")
        }
        guard let username = object["username"] as? String else {
            throw GatehouseError(.invalidInput, "username is required and must be a string")
        }
        var email: EmailAddress? = nil
        if let value = object["email"], !(value is NSNull) {
            guard let text = value as? String else { throw GatehouseError(.invalidInput, "email must be a string") }
            email = try EmailAddress(validating: text)
        }
        var role = RoleName.member
        if let value = object["role"], !(value is NSNull) {
            guard let text = value as? String else { throw GatehouseError(.invalidInput, "role must be a string") }
            role = try RoleName(validating: text)
        }
        return InviteRequest(username: try Username(validating: username), email: email, role: role)
    }
}

struct InviteResponse: Encodable {
    let id: String
    let username: String
    let email: String?
    let role: String
    let expiresAt: Date
    let enrollmentURL: String

    init(_ issued: InvitationService.Issued) {
        self.id = issued.invitation.id
        self.username = issued.invitation.username.rawValue
        self.email = issued.invitation.email?.rawValue
        self.role = issued.invitation.role.rawValue
        self.expiresAt = issued.invitation.expiresAt
        self.enrollmentURL = issued.enrollmentURL
    }

    enum CodingKeys: String, CodingKey {
        case id, username, email, role
        case expiresAt = "expires_at"
        case enrollmentURL = "enrollment_url"
    }
}
