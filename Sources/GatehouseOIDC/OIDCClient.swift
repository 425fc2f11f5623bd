public import Foundation
public import GatehouseCore

/// A registered OAuth client (relying party). Confidential clients authenticate with a secret
/// (only its SHA-256 is kept) or a signed assertion; public clients (CLIs, single-page apps)
/// have no secret and rely on PKCE alone.
public struct OIDCClient: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case confidential
        case `public`
    }

    /// How the client proves itself at the token, revocation and introspection endpoints.
    public enum AuthMethod: String, Sendable, Equatable, CaseIterable {
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"
        case privateKeyJWT = "private_key_jwt"
        case none
    }

    public enum Source: String, Sendable, Equatable {
        /// Registered with `gatehouse admin oidc-client add`, kept in the store.
        case registered
        /// Declared in the policy file (`app NAME { client_id redirect_uris ... }`): public only.
        case policy
    }

    public var id: String
    public var name: String
    public var kind: Kind
    public var redirectURIs: [String]
    public var postLogoutRedirectURIs: [String]
    /// Hex SHA-256 of the client secret, for confidential clients using a secret.
    public var secretHash: String?
    /// Keys for `private_key_jwt`, for confidential clients using assertions.
    public var jwks: [JWK]
    /// First-party clients are the organization's own apps: no consent page. Third-party clients
    /// show one, once per set of scopes.
    public var firstParty: Bool
    public var source: Source
    public var createdAt: Date

    public init(
        id: String, name: String, kind: Kind, redirectURIs: [String], postLogoutRedirectURIs: [String] = [], secretHash: String? = nil,
        jwks: [JWK] = [], firstParty: Bool, source: Source = .registered, createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.kind = kind
        self.redirectURIs = redirectURIs
        self.postLogoutRedirectURIs = postLogoutRedirectURIs
        self.secretHash = secretHash
        self.jwks = jwks
        self.firstParty = firstParty
        self.source = source
        self.createdAt = createdAt
    }

    /// The authentication methods this client may use.
    public var authMethods: [AuthMethod] {
        switch self.kind {
        case .public: [.none]
        case .confidential: (self.secretHash != nil ? [.clientSecretBasic, .clientSecretPost] : []) + (self.jwks.isEmpty ? [] : [.privateKeyJWT])
        }
    }

    public static let maxRedirectURIs = 16

    /// Client ids are 1–64 characters of `[a-z0-9._-]`, starting with a letter or digit.
    public static func isValidID(_ id: String) -> Bool {
        let b = Array(id.utf8)
        guard (1...64).contains(b.count), (b[0] >= 0x61 && b[0] <= 0x7A) || (b[0] >= 0x30 && b[0] <= 0x39) else { return false }
        return b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    /// Checks a redirect URI for registration (see ``RedirectURI/problem(_:)``).
    public static func redirectURIProblem(_ uri: String) -> String? { RedirectURI.problem(uri) }

    /// The registered redirect URI that `uri` names, compared exactly (RFC 6749 §3.1.2.3,
    /// OAuth 2.1): a single character's difference is a mismatch. The one exception is RFC 8252
    /// §7.3: for a registered loopback IP literal (`http://127.0.0.1/...`, `http://[::1]/...`)
    /// any port is accepted, because a native app picks a free port at run time.
    public func registeredRedirect(matching uri: String) -> String? {
        if let exact = self.redirectURIs.first(where: { $0 == uri }) { return exact }
        guard let presented = URLComponents(string: uri), presented.scheme == "http", let host = presented.host,
            host == "127.0.0.1" || host == "[::1]" || host == "::1"
        else { return nil }
        for registered in self.redirectURIs {
            guard var r = URLComponents(string: registered), r.scheme == "http", r.host == host else { continue }
            var p = presented
            r.port = nil
            p.port = nil
            if r.string == p.string { return uri }
        }
        return nil
    }
}
