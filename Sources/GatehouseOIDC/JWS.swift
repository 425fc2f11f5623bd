import Foundation
public import GatehouseCore

/// Verification of compact JWS tokens (RFC 7515), strict by construction:
/// - the header must name an algorithm Gatehouse supports (`none`, `HS*`, `RS*` are refused)
///   and a `kid`; the key is looked up by that `kid` only, never by a default or a fallback;
/// - the key's own type decides the algorithm; a header whose `alg` differs is refused
///   (no HS256-with-a-public-key confusion);
/// - `crit`, `jku`, `jwk`, `x5u`, `x5c` and `b64` are refused rather than half-honoured;
/// - sizes are bounded and base64url must be canonical.
public enum JWS {
    public static let maxTokenSize = 16 * 1024

    /// A token whose signature checked out, with its header's `typ` and its payload bytes.
    public struct Verified: Sendable {
        public let kid: String
        public let algorithm: JWSAlgorithm
        public let type: String?
        public let payload: [UInt8]
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
        var typ: String?
        var crit: [String]?
        var jku: String?
        var jwk: JWK?
        var x5u: String?
        var x5c: [String]?
        var b64: Bool?
    }

    /// Verifies `token` against the keys in `keys` (by `kid`).
    public static func verify(_ token: String, keys: [String: JWSVerificationKey]) throws(OAuthError) -> Verified {
        guard token.utf8.count <= Self.maxTokenSize else { throw OAuthError(.invalidToken, "token is too large") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw OAuthError(.invalidToken, "not a compact JWS (expected three parts)") }
        guard let headerBytes = Base64URL.decode(String(parts[0])), let payload = Base64URL.decode(String(parts[1])),
            let signature = Base64URL.decode(String(parts[2]))
        else {
            throw OAuthError(.invalidToken, "token is not canonical base64url")
        }
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)) else {
            throw OAuthError(.invalidToken, "token header is not a JSON object")
        }
        guard let algName = header.alg else { throw OAuthError(.invalidToken, "token header names no algorithm") }
        guard let alg = JWSAlgorithm(rawValue: algName) else {
            throw OAuthError(.invalidToken, "algorithm \(algName.prefix(16)) is not accepted; only ES256 and EdDSA are")
        }
        guard header.crit == nil, header.jku == nil, header.jwk == nil, header.x5u == nil, header.x5c == nil, header.b64 == nil else {
            throw OAuthError(.invalidToken, "token header carries parameters that are not accepted (crit, jku, jwk, x5u, x5c, b64)")
        }
        guard let kid = header.kid, !kid.isEmpty else { throw OAuthError(.invalidToken, "token header names no key (kid)") }
        guard let key = keys[kid] else { throw OAuthError(.invalidToken, "token is signed by an unknown key") }
        guard key.algorithm == alg else { throw OAuthError(.invalidToken, "token algorithm does not match its key") }
        let input = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard key.isValidSignature(signature, for: input) else { throw OAuthError(.invalidToken, "token signature is invalid") }
        return Verified(kid: kid, algorithm: alg, type: header.typ, payload: payload)
    }
}
