import Foundation
import GatehouseCore
import GatehouseServices
import Hummingbird

/// `/v1/pki/...` on the admin socket: the certificate inventory, revocation, and bringing in an
/// intermediate signed by an offline root.
enum PKIAdminRoutes {
    struct Listing: Encodable {
        let serial: String
        let spiffeID: String
        let dnsNames: [String]
        let ipAddresses: [String]
        let requester: String
        let notBefore: Date
        let notAfter: Date
        let revokedAt: Date?
        let revocationReason: String?
        enum CodingKeys: String, CodingKey {
            case serial, requester
            case spiffeID = "spiffe_id"
            case dnsNames = "dns_names"
            case ipAddresses = "ip_addresses"
            case notBefore = "not_before"
            case notAfter = "not_after"
            case revokedAt = "revoked_at"
            case revocationReason = "revocation_reason"
        }

        init(_ r: PKICertificateRecord) {
            self.serial = r.serial
            self.spiffeID = r.spiffeID
            self.dnsNames = r.dnsNames
            self.ipAddresses = r.ipAddresses
            self.requester = r.requester
            self.notBefore = r.notBefore
            self.notAfter = r.notAfter
            self.revokedAt = r.revokedAt
            self.revocationReason = r.revocationReason
        }
    }

    static func add(to router: Router<BasicRequestContext>, pki: PKIService, actor: String) {
        router.get("/v1/pki/certificates") { request, _ in
            do {
                let all = request.uri.queryParameters["all"].map { $0 == "1" || $0 == "true" } ?? false
                return JSONResponse.make(.ok, try await pki.inventory(includeExpired: all).map(Listing.init))
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
        }
        router.post("/v1/pki/revoke") { request, _ in
            do {
                let bytes = try await collectBody(request, limit: 4096)
                try StrictJSON.checkKeys(bytes, allowed: ["serial", "reason"])
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let serial = object["serial"] as? String else {
                    throw GatehouseError(.invalidInput, "serial is required")
                }
                try await pki.revoke(serial: serial, reason: (object["reason"] as? String) ?? "revoked by an administrator", actor: actor)
                return JSONResponse.make(.ok, ["serial": serial.lowercased(), "status": "revoked"])
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            }
        }
        router.post("/v1/pki/intermediate-request") { _, _ in
            do {
                return JSONResponse.make(.created, ["csr": try await pki.requestIntermediate(actor: actor), "trust_domain": pki.trustDomain])
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            } catch {
                return JSONResponse.error(GatehouseError(.internal, "the intermediate request could not be made: \(error)"))
            }
        }
        router.post("/v1/pki/intermediate") { request, _ in
            do {
                let bytes = try await collectBody(request, limit: 64 * 1024)
                try StrictJSON.checkKeys(bytes, allowed: ["pem"])
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let pem = object["pem"] as? String else {
                    throw GatehouseError(.invalidInput, "pem is required: the intermediate certificate, then the root")
                }
                let active = try await pki.importIntermediate(pem: pem, actor: actor)
                return JSONResponse.make(.created, ["trust_domain": pki.trustDomain, "not_after": ISO8601DateFormatter().string(from: active.intermediate.notValidAfter)])
            } catch let error as GatehouseError {
                return JSONResponse.error(error)
            } catch {
                return JSONResponse.error(GatehouseError(.invalidInput, "the intermediate could not be imported: \(error)"))
            }
        }
    }
}
