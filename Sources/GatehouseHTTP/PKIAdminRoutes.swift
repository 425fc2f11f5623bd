import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/pki/...` on the admin socket: the certificate inventory (``PKICertificateRecord`` as
/// JSON), revocation, and bringing in an intermediate signed by an offline root.
enum PKIAdminRoutes {
    static func add(to router: Router<BasicRequestContext>, pki: PKIService, actor: String) {
        router.get("/v1/pki/certificates") { request, _ in
            let all = request.uri.queryParameters["all"].map { $0 == "1" || $0 == "true" } ?? false
            return JSONResponse.make(.ok, try await pki.inventory(includeExpired: all))
        }
        router.post("/v1/pki/revoke") { request, _ in
            let bytes = try await collectBody(request, limit: 4096)
            try StrictJSON.checkKeys(bytes, allowed: ["serial", "reason"])
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let serial = object["serial"] as? String else {
                throw GatehouseError(.invalidInput, "serial is required")
            }
            try await pki.revoke(serial: serial, reason: (object["reason"] as? String) ?? "revoked by an administrator", actor: actor)
            return JSONResponse.make(.ok, ["serial": serial.lowercased(), "status": "revoked"])
        }
        router.post("/v1/pki/intermediate-request") { _, _ in
            return JSONResponse.make(.created, ["csr": try await pki.requestIntermediate(actor: actor), "trust_domain": pki.trustDomain])
        }
        router.post("/v1/pki/intermediate") { request, _ in
            do {
                let bytes = try await collectBody(request, limit: 64 * 1024)
                try StrictJSON.checkKeys(bytes, allowed: ["pem"])
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let pem = object["pem"] as? String else {
                    throw GatehouseError(.invalidInput, "pem is required: the intermediate certificate, then the root")
                }
                let active = try await pki.importIntermediate(pem: pem, actor: actor)
                return JSONResponse.make(
                    .created, ["trust_domain": pki.trustDomain, "not_after": ISO8601DateFormatter().string(from: active.intermediate.notValidAfter)])
            } catch let error as GatehouseError {
                return JSONResponse.error(error, revealing: true)
            } catch {
                return JSONResponse.error(GatehouseError(.invalidInput, "the intermediate could not be imported: \(error)"))
            }
        }
    }
}
