public import Foundation

/// One authorization of one client by one user: what a code, or a device approval, starts.
/// Every access and refresh token belongs to a grant, so revoking the grant (code reuse,
/// refresh-token reuse, sign-out, offboarding) ends all of them at once.
public struct OIDCGrantRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var clientID: String
    /// Granted scopes, space-separated as in OAuth.
    public var scope: String
    public var nonce: String?
    public var authTime: Date
    public var amr: [String]
    public var acr: String
    /// Hash of the sign-in session the grant came from (RP-initiated logout ends it with the session).
    public var sessionHash: String?
    public var createdAt: Date
    /// Absolute end: no refresh extends a grant past it.
    public var expiresAt: Date
    public var revokedAt: Date?
    /// Why it was revoked (`code_reuse`, `refresh_reuse`, `revoked`, `logout`, `offboarded`, `client_removed`).
    public var revokedReason: String?

    public init(
        id: String, userID: String, clientID: String, scope: String, nonce: String?, authTime: Date, amr: [String], acr: String,
        sessionHash: String?, createdAt: Date, expiresAt: Date, revokedAt: Date? = nil, revokedReason: String? = nil
    ) {
        self.id = id
        self.userID = userID
        self.clientID = clientID
        self.scope = scope
        self.nonce = nonce
        self.authTime = authTime
        self.amr = amr
        self.acr = acr
        self.sessionHash = sessionHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.revokedReason = revokedReason
    }

    public func isLive(at time: Date) -> Bool { self.revokedAt == nil && time < self.expiresAt }
}
