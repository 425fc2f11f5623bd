/// The scopes Gatehouse knows. An unknown scope is an error (`invalid_scope`) rather than
/// silently dropped, so a client learns at once that it asked for something that does not exist.
public enum Scope: String, Sendable, Hashable, CaseIterable, Comparable {
    case openid
    case profile
    case email
    /// Adds the user's groups and roles (from the policy) to the ID token and userinfo.
    case groups
    /// Issues a refresh token.
    case offlineAccess = "offline_access"
    /// Lets the access token ask for SSH certificates (`POST /api/ssh/certificates`).
    case ssh
    /// Lets the access token ask for X.509 certificates for the SPIFFE identities the policy
    /// grants (`POST /api/pki/sign`).
    case certificates
    /// Lets the access token register WireGuard devices on the private network
    /// (`POST /api/network/devices`, `gatehouse wg up`).
    case network

    public static func < (a: Scope, b: Scope) -> Bool { a.rawValue < b.rawValue }

    /// Parses a space-separated scope list (RFC 6749 §3.3). Duplicates collapse.
    public static func parse(_ text: String?) throws(OAuthError) -> Set<Scope> {
        guard let text, !text.isEmpty else { return [] }
        guard text.utf8.count <= 512 else { throw OAuthError(.invalidScope, "scope is too long") }
        var out: Set<Scope> = []
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            guard let s = Scope(rawValue: String(word)) else { throw OAuthError(.invalidScope, "unknown scope \(word.prefix(40))") }
            out.insert(s)
        }
        return out
    }

    /// Scopes that act as the person on Gatehouse's own APIs (not claims for an app): only the
    /// clients the policy names may obtain them (see `gatehouse_scopes` in docs/policy.md).
    public var reachesGatehouse: Bool { self == .ssh || self == .certificates || self == .network }

    /// What a person is told a client will be able to do with each scope, on the consent and
    /// device pages: in words that say what it acts as, not only what it sees.
    public var consentText: String {
        switch self {
        case .openid: "sign you in (your account id)"
        case .profile: "see your user name"
        case .email: "see your email address"
        case .groups: "see your groups and roles"
        case .offlineAccess: "stay signed in for up to 12 hours without asking again"
        case .ssh: "obtain SSH certificates as you, for every server the policy lets you reach"
        case .certificates: "obtain X.509 certificates for the identities the policy grants you"
        case .network: "add devices as you to the private WireGuard network"
        }
    }

    public static func format(_ scopes: Set<Scope>) -> String { scopes.sorted().map(\.rawValue).joined(separator: " ") }
}
