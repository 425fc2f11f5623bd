import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/network/...` on the admin socket: every person's devices, removing any of them, and
/// the configuration a host's agent would get now (what `gatehouse admin network show` prints).
enum NetworkAdminRoutes {
    static func add(to router: Router<BasicRequestContext>, network: NetworkService, actor: String) {
        router.get("/v1/network/devices") { request, _ in
            let all = request.uri.queryParameters["all"].map { $0 == "1" || $0 == "true" } ?? false
            return JSONResponse.make(.ok, try await network.devices(userID: nil, liveOnly: !all))
        }
        router.delete("/v1/network/devices/:id") { _, context in
            try await network.removeDevice(id: context.parameters.get("id") ?? "", owner: nil, actor: actor)
            return JSONResponse.make(.ok, ["status": "removed"])
        }
        router.get("/v1/network/hosts/:name") { _, context in
            return JSONResponse.make(.ok, try await network.configuration(host: context.parameters.get("name") ?? ""))
        }
    }
}
