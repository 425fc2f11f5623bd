import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/users/...` on the admin socket: recovery links, offboarding, locking and unlocking.
enum AccountRoutes {
    static func add(to router: Router<BasicRequestContext>, deps: HTTPDependencies, invitations: InvitationService, offboarding: OffboardingService) {
        router.post("/v1/users/recover") { request, _ in
            let (name, _) = try await Self.body(request, allowed: ["username"])
            let issued = try await invitations.inviteRecovery(
                username: name, actor: AdminRoutes.actor,
                requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source
            )
            return JSONResponse.make(.created, InviteResponse(issued))
        }
        // Offboarding and locking end the same things; locking can be undone with unlock.
        for (path, disable) in [("offboard", offboarding.offboard), ("lock", offboarding.lock)] {
            router.post("/v1/users/\(path)") { request, _ in
                let (name, reason) = try await Self.reasoned(request)
                let result = try await disable(name, AdminRoutes.actor, reason, Identifier.make(using: deps.environment.random), AdminRoutes.source)
                return JSONResponse.make(.ok, OffboardResult(username: result.user.username.rawValue, revoked: result.revoked))
            }
        }
        router.post("/v1/users/unlock") { request, _ in
            let (name, reason) = try await Self.reasoned(request)
            let user = try await offboarding.unlock(
                username: name, actor: AdminRoutes.actor, reason: reason,
                requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source)
            return JSONResponse.make(.ok, ["username": user.username.rawValue, "status": user.status.rawValue])
        }
    }

    /// `/v1/invitations/...`: the pending links, and revoking or replacing one.
    static func addInvitations(to router: Router<BasicRequestContext>, deps: HTTPDependencies, invitations: InvitationService) {
        router.get("/v1/invitations") { _, _ in
            let now = deps.environment.time.now()
            return JSONResponse.make(.ok, try await invitations.pending().map { PendingInvitation($0, now: now) })
        }
        router.post("/v1/invitations/revoke") { request, _ in
            let (name, reason) = try await Self.reasoned(request)
            let revoked = try await invitations.revoke(
                username: name, actor: AdminRoutes.actor, reason: reason,
                requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source)
            return JSONResponse.make(.ok, PendingInvitation(revoked, now: deps.environment.time.now()))
        }
        router.post("/v1/invitations/resend") { request, _ in
            let (name, _) = try await Self.body(request, allowed: ["username"])
            let issued = try await invitations.resend(
                username: name, actor: AdminRoutes.actor,
                requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source)
            return JSONResponse.make(.created, InviteResponse(issued))
        }
    }

    /// A link as `admin invitations list` shows it (never its secret, which is not stored).
    struct PendingInvitation: Encodable {
        let id: String
        let kind: String
        let username: String
        let email: String?
        let role: String
        let createdAt: Date
        let expiresAt: Date
        let createdBy: String
        let state: String
        enum CodingKeys: String, CodingKey {
            case id, kind, username, email, role, state
            case createdAt = "created_at"
            case expiresAt = "expires_at"
            case createdBy = "created_by"
        }
        init(_ i: Invitation, now: Date) {
            self.id = i.id
            self.kind = i.kind.rawValue
            self.username = i.username.rawValue
            self.email = i.email?.rawValue
            self.role = i.role.rawValue
            self.createdAt = i.createdAt
            self.expiresAt = i.expiresAt
            self.createdBy = i.createdBy
            self.state = i.state == .pending && now >= i.expiresAt ? "expired" : i.state.rawValue
        }
    }

    /// `{"username": ..., "reason": ...}`, the reason optional.
    static func reasoned(_ request: Request) async throws -> (Username, String?) {
        let (name, object) = try await Self.body(request, allowed: ["username", "reason"])
        if let value = object["reason"], !(value is String) { throw GatehouseError(.invalidInput, "reason must be a string") }
        let reason = object["reason"] as? String
        try OffboardingService.checkReason(reason)
        return (name, reason)
    }

    /// A JSON object with a valid `username` and nothing but `allowed` keys.
    static func body(_ request: Request, allowed: Set<String>) async throws -> (Username, [String: Any]) {
        let bytes = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
        try StrictJSON.checkKeys(bytes, allowed: allowed)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
        guard let name = object["username"] as? String else { throw GatehouseError(.invalidInput, "username is required and must be a string") }
        return (try Username(validating: name), object)
    }
}
