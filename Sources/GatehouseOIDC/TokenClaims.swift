public import Foundation

/// The claims of an ID token (OIDC Core §2), of a userinfo answer (§5.3), and of the proxy's
/// identity assertion. Encoded with sorted keys, so the signed bytes for given inputs are fixed.
public struct IDTokenClaims: Sendable, Equatable, Codable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int
    public var iat: Int
    public var authTime: Int
    public var nonce: String?
    /// RFC 8176 values: `hwk` for a device-bound passkey or `swk` for a synced one, and `mfa`
    /// (possession plus user verification).
    public var amr: [String]
    /// OpenID EAP values: `phrh` (phishing-resistant, hardware-bound) or `phr` (phishing-resistant).
    public var acr: String
    public var azp: String?
    public var sid: String?
    public var preferredUsername: String?
    public var email: String?
    public var groups: [String]?
    public var roles: [String]?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, amr, acr, azp, sid, email, groups, roles
        case authTime = "auth_time"
        case preferredUsername = "preferred_username"
    }

    public init(
        iss: String, sub: String, aud: String, exp: Int, iat: Int, authTime: Int, nonce: String?, amr: [String], acr: String,
        azp: String? = nil, sid: String? = nil, preferredUsername: String? = nil, email: String? = nil, groups: [String]? = nil,
        roles: [String]? = nil
    ) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.iat = iat
        self.authTime = authTime
        self.nonce = nonce
        self.amr = amr
        self.acr = acr
        self.azp = azp
        self.sid = sid
        self.preferredUsername = preferredUsername
        self.email = email
        self.groups = groups
        self.roles = roles
    }

    public func encoded() -> [UInt8] { OIDCJSON.encode(self) }

    /// `amr` and `acr` for a passkey sign-in: device-bound unless the passkey is synced.
    public static func authenticationContext(passkeyBackedUp: Bool) -> (amr: [String], acr: String) {
        passkeyBackedUp ? (["mfa", "swk"], "phr") : (["hwk", "mfa"], "phrh")
    }
}

/// The identity assertion the proxy adds to each forwarded request (a short-lived JWT, `typ`
/// `gatehouse-assertion+jwt`), verifiable with the JWKS.
public struct ProxyAssertionClaims: Sendable, Equatable, Codable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int
    public var iat: Int
    public var jti: String
    public var preferredUsername: String
    public var email: String?
    public var groups: [String]
    public var roles: [String]

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, jti, email, groups, roles
        case preferredUsername = "preferred_username"
    }

    public init(
        iss: String, sub: String, aud: String, exp: Int, iat: Int, jti: String, preferredUsername: String, email: String?, groups: [String],
        roles: [String]
    ) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.iat = iat
        self.jti = jti
        self.preferredUsername = preferredUsername
        self.email = email
        self.groups = groups
        self.roles = roles
    }

    public func encoded() -> [UInt8] { OIDCJSON.encode(self) }
}

/// The claims a client sends in a `private_key_jwt` assertion (RFC 7523 §3).
public struct ClientAssertionClaims: Sendable, Decodable {
    public var iss: String
    public var sub: String
    public var aud: Audience
    public var exp: Int
    public var iat: Int?
    public var jti: String

    /// `aud` may be one string or an array of strings.
    public struct Audience: Sendable, Decodable {
        public var values: [String]
        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(String.self) { self.values = [one] } else { self.values = try c.decode([String].self) }
        }
    }
}

/// JSON encoding with sorted keys and no escaped slashes, for signed and served documents.
public enum OIDCJSON {
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}
