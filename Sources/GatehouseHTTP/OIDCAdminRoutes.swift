import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseServices
import Hummingbird

/// `/v1/oidc/...` on the admin socket: register, list and remove OAuth clients; rotate the
/// token-signing key.
enum OIDCAdminRoutes {
    struct ClientListing: Encodable {
        let id: String
        let name: String
        let kind: String
        let source: String
        let firstParty: Bool
        let redirectURIs: [String]
        let postLogoutRedirectURIs: [String]
        let authMethods: [String]
        let secret: String?

        init(_ c: OIDCClient, secret: String? = nil) {
            self.id = c.id
            self.name = c.name
            self.kind = c.kind.rawValue
            self.source = c.source.rawValue
            self.firstParty = c.firstParty
            self.redirectURIs = c.redirectURIs
            self.postLogoutRedirectURIs = c.postLogoutRedirectURIs
            self.authMethods = c.authMethods.map(\.rawValue)
            self.secret = secret
        }

        enum CodingKeys: String, CodingKey {
            case id, name, kind, source, secret
            case firstParty = "first_party"
            case redirectURIs = "redirect_uris"
            case postLogoutRedirectURIs = "post_logout_redirect_uris"
            case authMethods = "auth_methods"
        }
    }

    /// `POST /v1/oidc/clients` body. Unknown fields are refused.
    struct AddClient: Decodable {
        let id: String
        let name: String?
        let kind: String
        let redirectURIs: [String]
        let postLogoutRedirectURIs: [String]?
        let firstParty: Bool?
        let jwks: JWKSet?

        enum CodingKeys: String, CodingKey {
            case id, name, kind, jwks
            case redirectURIs = "redirect_uris"
            case postLogoutRedirectURIs = "post_logout_redirect_uris"
            case firstParty = "first_party"
        }
    }

    static func add(to router: Router<BasicRequestContext>, oidc: OIDCService, random: any RandomSource) {
        router.get("/v1/oidc/clients") { _, _ in
            return JSONResponse.make(.ok, try await oidc.clients().map { ClientListing($0) })
        }
        router.post("/v1/oidc/clients") { request, _ in
            let bytes = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: ["id", "name", "kind", "redirect_uris", "post_logout_redirect_uris", "first_party", "jwks"])
            guard let body = try? JSONDecoder().decode(AddClient.self, from: Data(bytes)) else {
                throw GatehouseError(.invalidInput, "body must be {\"id\", \"kind\", \"redirect_uris\": [...], ...}")
            }
            guard let kind = OIDCClient.Kind(rawValue: body.kind) else { throw GatehouseError(.invalidInput, "kind must be confidential or public") }
            let registered = try await oidc.registerClient(
                id: body.id, name: body.name, kind: kind, redirectURIs: body.redirectURIs, postLogoutRedirectURIs: body.postLogoutRedirectURIs ?? [],
                jwks: body.jwks?.keys ?? [], firstParty: body.firstParty ?? true, actor: AdminRoutes.actor, requestID: Identifier.make(using: random)
            )
            return JSONResponse.make(.created, ClientListing(registered.client, secret: registered.secret))
        }
        router.post("/v1/oidc/clients/remove") { request, _ in
            let bytes = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: ["id"])
            guard let id = (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])?["id"] as? String else {
                throw GatehouseError(.invalidInput, "id is required")
            }
            let revoked = try await oidc.removeClient(id: id, actor: AdminRoutes.actor, requestID: Identifier.make(using: random))
            return JSONResponse.make(.ok, ["id": id, "grants_revoked": String(revoked)])
        }
        router.post("/v1/oidc/keys/rotate") { request, _ in
            let bytes = try await collectBody(request, limit: AdminRoutes.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: ["algorithm"])
            let name = (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])?["algorithm"] as? String ?? "ecdsa-p256"
            guard let algorithm = KeyAlgorithm(rawValue: name) else { throw GatehouseError(.invalidInput, "algorithm must be ecdsa-p256 or ed25519") }
            let kid = try await oidc.rotateKeys(algorithm: algorithm, actor: AdminRoutes.actor)
            return JSONResponse.make(.ok, ["kid": kid, "algorithm": algorithm.rawValue])
        }
    }
}
