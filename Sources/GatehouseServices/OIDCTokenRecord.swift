public import Foundation
public import GatehouseCore
public import GatehouseOIDC

/// An issued authorization code, access token or refresh token, stored by the SHA-256 of its
/// value. Codes and refresh tokens are single-use: `usedAt` records the one use, and a second
/// presentation revokes the whole grant.
public struct OIDCTokenRecord: Sendable, Equatable {
    public var hash: String
    public var kind: OIDCTokenKind
    public var grantID: String
    public var createdAt: Date
    public var expiresAt: Date
    public var usedAt: Date?
    public var revokedAt: Date?
    /// For codes: the redirect URI of the request and its PKCE challenge.
    public var redirectURI: String?
    public var codeChallenge: String?
    /// For access and refresh tokens: their scope when narrower than the grant's (a refresh may
    /// narrow it); nil means the grant's.
    public var scope: String?

    public init(
        hash: String, kind: OIDCTokenKind, grantID: String, createdAt: Date, expiresAt: Date, usedAt: Date? = nil, revokedAt: Date? = nil,
        redirectURI: String? = nil, codeChallenge: String? = nil, scope: String? = nil
    ) {
        self.hash = hash
        self.kind = kind
        self.grantID = grantID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
        self.revokedAt = revokedAt
        self.redirectURI = redirectURI
        self.codeChallenge = codeChallenge
        self.scope = scope
    }
}

/// A token together with its grant and the grant's user: everything introspection needs, read
/// in one query.
public struct OIDCTokenView: Sendable, Equatable {
    public var token: OIDCTokenRecord
    public var grant: OIDCGrantRecord
    public var user: User

    public init(token: OIDCTokenRecord, grant: OIDCGrantRecord, user: User) {
        self.token = token
        self.grant = grant
        self.user = user
    }

    /// The scope this token carries.
    public var scope: String { self.token.scope ?? self.grant.scope }

    /// Live: the token unexpired, unrevoked (and unused, for single-use kinds), the grant live,
    /// the user active.
    public func isActive(at time: Date) -> Bool {
        self.token.revokedAt == nil && time < self.token.expiresAt && self.grant.isLive(at: time) && self.user.status == .active
            && (self.token.kind == .accessToken || self.token.usedAt == nil)
    }
}
