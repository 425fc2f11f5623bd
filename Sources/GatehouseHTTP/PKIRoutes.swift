import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehousePKI
import GatehouseServices
import Hummingbird

/// `/api/pki/...` on the public listener: the CA chain and CRL (public), and certificates for a
/// signed-in person whose access token carries the `certificates` scope.
enum PKIRoutes {
    static let maxBodyBytes = 16 * 1024
    /// Certificates a person may obtain per minute, through REST and GraphQL together.
    /// Certificates a person may ask for per minute, over REST and GraphQL together.
    static func personIssuances(time: any TimeSource) -> RateLimiter { RateLimiter(capacity: 60, per: 60, time: time) }

    struct IssuedBody: Encodable {
        let certificate: String
        let chain: String
        let root: String
        let serial: String
        let spiffeID: String
        let notAfter: Date
        enum CodingKeys: String, CodingKey {
            case certificate, chain, root, serial
            case spiffeID = "spiffe_id"
            case notAfter = "not_after"
        }

        init(_ issued: PKIService.Issued, root: String) throws {
            self.certificate = try Authority.pem(issued.certificate)
            self.chain = try issued.chain.map(Authority.pem).joined()
            self.root = root
            self.serial = issued.serial
            self.spiffeID = issued.spiffeID
            self.notAfter = issued.certificate.notValidAfter
        }
    }

    /// `{"csr": PEM, "lifetime_seconds": N}`, strictly.
    static func signBody(_ request: Request) async throws -> (SigningRequest, TimeInterval?) {
        try WebAuthnRoutes.requireJSON(request)
        let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
        try StrictJSON.checkKeys(bytes, allowed: ["csr", "lifetime_seconds"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let csr = object["csr"] as? String else {
            throw GatehouseError(.invalidInput, "csr is required: a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")
        }
        var lifetime: TimeInterval? = nil
        if let value = object["lifetime_seconds"] {
            guard let n = value as? Int, !(value is Bool), n > 0 else {
                throw GatehouseError(.invalidInput, "lifetime_seconds must be a positive whole number")
            }
            lifetime = TimeInterval(n)
        }
        return (try SigningRequest(pemOrDER: Array(csr.utf8)), lifetime)
    }

    static func pemResponse(_ text: String) -> Response {
        var r = JSONResponse.raw(.ok, Array(text.utf8), contentType: "application/pem-certificate-chain")
        r.headers[.cacheControl] = "public, max-age=300"
        return r
    }

    static func crlResponse(_ pki: PKIService, authorityID: String? = nil) async throws -> Response {
        var r = JSONResponse.raw(.ok, try await pki.revocationList(authorityID: authorityID), contentType: "application/pkix-crl")
        r.headers[.cacheControl] = "no-cache"
        return r
    }

    static func chainResponse(_ pki: PKIService) throws -> Response {
        let active = try pki.current()
        return Self.pemResponse(try active.chain.map(Authority.pem).joined())
    }

    static func add(to router: Router<GatehouseRequestContext>, pki: PKIService, oidc: OIDCService?, random: any RandomSource, issuances: RateLimiter)
    {
        router.get("/api/pki/ca") { _, _ in try Self.chainResponse(pki) }
        router.get("/api/pki/crl") { _, _ in try await Self.crlResponse(pki) }
        router.get("/api/pki/crl/:authority") { _, context in try await Self.crlResponse(pki, authorityID: context.parameters.get("authority") ?? "")
        }
        guard let oidc else { return }
        router.post("/api/pki/sign") { request, context in
            let caller: BearerCaller
            switch try await SSHRoutes.bearer(request, oidc: oidc, scope: .certificates) {
            case .refused(let response): return response
            case .user(let c): caller = c
            }
            let user = caller.user
            if let wait = issuances.take("user:" + user.id) {
                throw GatehouseError(.rateLimited, "too many certificate requests; try again in \(wait) seconds", retryAfter: wait)
            }
            let (csr, lifetime) = try await Self.signBody(request)
            let address = context.clientAddress
            let issued = try await pki.sign(
                csr, requester: .user(user), lifetime: lifetime, sourceAddress: address, requestID: Identifier.make(using: random),
                grantID: caller.grantID)
            return JSONResponse.make(.created, try IssuedBody(issued, root: try Authority.pem(pki.current().root)))
        }
    }
}
