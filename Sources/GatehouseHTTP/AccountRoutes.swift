import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/users/...` on the admin socket: recovery links and offboarding.
enum AccountRoutes {
    static func add(to router: Router<BasicRequestContext>, deps: HTTPDependencies, invitations: InvitationService, offboarding: OffboardingService) {
        router.post("/v1/users/recover") { request, _ in
            do {
                let body = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
                try StrictJSON.checkKeys(body, allowed: ["username"])
                let object = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
                guard let name = object["username"] as? String else { throw GatehouseError(.invalidInput, "username is required") }
                let issued = try await invitations.inviteRecovery(
                    username: try Username(validating: name), actor: AdminRoutes.actor,
                    requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source
                )
                return JSONResponse.make(.created, InviteResponse(issued))
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
        }
        router.post("/v1/users/offboard") { request, _ in
            do {
                let body = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
                try StrictJSON.checkKeys(body, allowed: ["username", "reason"])
                let object = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
                guard let name = object["username"] as? String else { throw GatehouseError(.invalidInput, "username is required") }
                let reason = object["reason"] as? String
                let result = try await offboarding.offboard(
                    username: try Username(validating: name), actor: AdminRoutes.actor, reason: reason,
                    requestID: Identifier.make(using: deps.environment.random), sourceAddress: AdminRoutes.source
                )
                return JSONResponse.make(.ok, OffboardResult(username: result.user.username.rawValue, revoked: result.revoked))
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
        }
    }
}
