public import Crypto
import Foundation
public import GatehouseCore

/// A public key as a JSON Web Key (RFC 7517): EC P-256 for ES256 or OKP Ed25519 for EdDSA
/// (RFC 8037). Only the members those two key types define are kept; anything else a peer sends
/// is ignored, and a key of another type is refused.
public struct JWK: Sendable, Equatable, Codable {
    public var kty: String
    public var crv: String
    public var x: String
    public var y: String?
    public var kid: String?
    public var alg: String?
    public var use: String?

    /// The public half of `key`, named by its RFC 7638 thumbprint.
    public init(publicKeyOf key: SigningKey) {
        switch key {
        case .p256(let k):
            let point = Array(k.publicKey.x963Representation)  // 0x04 || X || Y
            self.init(
                kty: "EC", crv: "P-256", x: Base64URL.encode(point[1..<33]), y: Base64URL.encode(point[33..<65]), kid: nil,
                alg: JWSAlgorithm.es256.rawValue, use: "sig")
        case .ed25519(let k):
            self.init(
                kty: "OKP", crv: "Ed25519", x: Base64URL.encode(k.publicKey.rawRepresentation), y: nil, kid: nil, alg: JWSAlgorithm.edDSA.rawValue,
                use: "sig")
        }
        self.kid = self.thumbprint
    }

    public init(kty: String, crv: String, x: String, y: String?, kid: String?, alg: String?, use: String?) {
        self.kty = kty
        self.crv = crv
        self.x = x
        self.y = y
        self.kid = kid
        self.alg = alg
        self.use = use
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    public var thumbprint: String {
        var json = "{\"crv\":\"\(self.crv)\",\"kty\":\"\(self.kty)\",\"x\":\"\(self.x)\""
        if let y = self.y { json += ",\"y\":\"\(y)\"" }
        json += "}"
        return Base64URL.encode(SHA256.hash(data: Array(json.utf8)))
    }

    /// The algorithm this key verifies, from its type and curve (never from a claim in a token).
    public var algorithm: JWSAlgorithm? {
        switch (self.kty, self.crv) {
        case ("EC", "P-256"): .es256
        case ("OKP", "Ed25519"): .edDSA
        default: nil
        }
    }

    /// The key as a verifier, or an error for a key that is not a well-formed P-256 or Ed25519 key.
    public func verificationKey() throws(OAuthError) -> JWSVerificationKey {
        guard self.use == nil || self.use == "sig" else { throw OAuthError(.invalidClient, "key \(self.kid ?? "") is not a signing key") }
        switch self.algorithm {
        case .es256?:
            guard let x = Base64URL.decode(self.x), let y = self.y.flatMap(Base64URL.decode), x.count == 32, y.count == 32,
                let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + x + y)
            else {
                throw OAuthError(.invalidClient, "malformed P-256 key")
            }
            return .p256(key)
        case .edDSA?:
            guard self.y == nil, let x = Base64URL.decode(self.x), x.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x)
            else {
                throw OAuthError(.invalidClient, "malformed Ed25519 key")
            }
            return .ed25519(key)
        case nil:
            throw OAuthError(.invalidClient, "unsupported key type \(self.kty.prefix(16)) \(self.crv.prefix(16)); use EC P-256 or OKP Ed25519")
        }
    }
}

/// A JWK Set document (`/oauth2/jwks`).
public struct JWKSet: Sendable, Equatable, Codable {
    public var keys: [JWK]
    public init(keys: [JWK]) { self.keys = keys }
}
