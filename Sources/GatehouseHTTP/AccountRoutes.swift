import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/users/...` on the admin socket: recovery links, offboarding, locking and unlocking.
enum AccountRoutes {
    static func add(to router: Router<BasicRequestContext>, deps: HTTPDependencies, invitations: InvitationService, offboarding: OffboardingService) {
        router.post("/v1/users/recover") { request, _ in
            do {
                let (name, _) = try await Self.body(request, allowed: ["username"])
                let issued = try await invitations.inviteRecovery(
                    username: name, actor: AdminRoutes.actor,
                    requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source
                )
                return JSONResponse.make(.created, InviteResponse(issued))
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
        }
        // Offboarding and locking end the same things; locking can be undone with unlock.
        for (path, disable) in [("offboard", offboarding.offboard), ("lock", offboarding.lock)] {
            router.post("/v1/users/\(path)") { request, _ in
                do {
                    let (name, reason) = try await Self.reasoned(request)
                    let result = try await disable(name, AdminRoutes.actor, reason, Identifier.make(using: deps.environment.random), AdminRoutes.source)
                    return JSONResponse.make(.ok, OffboardResult(username: result.user.username.rawValue, revoked: result.revoked))
                } catch let error as GatehouseError {
                    return JSONResponse.error(error)
                }
            }
        }
        router.post("/v1/users/unlock") { request, _ in
            do {
                let (name, reason) = try await Self.reasoned(request)
                let user = try await offboarding.unlock(username: name, actor: AdminRoutes.actor, reason: reason,
                                                        requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source)
                return JSONResponse.make(.ok, ["username": user.username.rawValue, "status": user.status.rawValue])
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
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
