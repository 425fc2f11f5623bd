public import Foundation

/// A registered passkey as stored: the public key and what the relying party must remember
/// about it. Credential IDs are unique across all users.
public struct CredentialRecord: Sendable, Equatable {
    public var id: [UInt8]
    public var userID: String
    /// The WebAuthn user handle the credential was created for (the user's id, as bytes).
    public var userHandle: [UInt8]
    /// COSE key bytes.
    public var publicKey: [UInt8]
    public var algorithm: Int64
    public var signCount: UInt32
    public var backupEligible: Bool
    public var backedUp: Bool
    public var aaguid: [UInt8]
    public var attestationFormat: String
    public var transports: [String]
    public var createdAt: Date
    public var lastUsedAt: Date?
    /// The name its owner gave it; nil until renamed (pages show the authenticator's model).
    public var name: String?

    public init(
        id: [UInt8], userID: String, userHandle: [UInt8], publicKey: [UInt8], algorithm: Int64, signCount: UInt32,
        backupEligible: Bool, backedUp: Bool, aaguid: [UInt8], attestationFormat: String, transports: [String], createdAt: Date, lastUsedAt: Date?,
        name: String? = nil
    ) {
        self.name = name
        self.id = id
        self.userID = userID
        self.userHandle = userHandle
        self.publicKey = publicKey
        self.algorithm = algorithm
        self.signCount = signCount
        self.backupEligible = backupEligible
        self.backedUp = backedUp
        self.aaguid = aaguid
        self.attestationFormat = attestationFormat
        self.transports = transports
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A sign-in session as stored: only the SHA-256 of its token, never the token.
public struct SessionRecord: Sendable, Equatable {
    public var tokenHash: String
    public var userID: String
    public var credentialID: [UInt8]
    public var createdAt: Date
    public var lastSeenAt: Date
    /// The absolute end; the idle timeout is judged from `lastSeenAt`.
    public var expiresAt: Date
    public var idleTimeout: TimeInterval
    /// The last passkey assertion in this session (sign-in or step-up).
    public var steppedUpAt: Date
    public var revokedAt: Date?
    public var sourceAddress: String?
    /// The browser it was opened in, summarized (``BrowserSummary``).
    public var userAgent: String?

    public init(
        tokenHash: String, userID: String, credentialID: [UInt8], createdAt: Date, lastSeenAt: Date, expiresAt: Date,
        idleTimeout: TimeInterval, steppedUpAt: Date, revokedAt: Date?, sourceAddress: String?, userAgent: String? = nil
    ) {
        self.userAgent = userAgent
        self.tokenHash = tokenHash
        self.userID = userID
        self.credentialID = credentialID
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.expiresAt = expiresAt
        self.idleTimeout = idleTimeout
        self.steppedUpAt = steppedUpAt
        self.revokedAt = revokedAt
        self.sourceAddress = sourceAddress
    }

    /// Live at `now`: not revoked, before the absolute end, and used within the idle timeout.
    public func isLive(at now: Date) -> Bool {
        self.revokedAt == nil && now < self.expiresAt && now.timeIntervalSince(self.lastSeenAt) < self.idleTimeout
    }
}
