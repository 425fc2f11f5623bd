public import Foundation

/// An issued SSH certificate as the inventory keeps it (never the certificate's private key,
/// which Gatehouse never sees).
public struct SSHCertificateRecord: Sendable, Equatable {
    public var serial: UInt64
    public var userID: String
    /// `user` or `host`.
    public var kind: String
    public var keyFingerprint: String
    public var principals: [String]
    public var keyID: String
    public var validAfter: Date
    public var validBefore: Date
    public var createdAt: Date
    public var revokedAt: Date?
    /// When the person last proved their passkey before this certificate was issued (the sign-in
    /// or step-up of the token that asked for it); nil for host and onward certificates.
    public var authTime: Date?
    /// The OIDC grant whose access token asked for it: the certificate dies with that grant's
    /// sign-in session (a revoked session or removed passkey revokes it too).
    public var grantID: String?

    public init(
        serial: UInt64, userID: String, kind: String, keyFingerprint: String, principals: [String], keyID: String, validAfter: Date,
        validBefore: Date,
        createdAt: Date, revokedAt: Date? = nil, authTime: Date? = nil, grantID: String? = nil
    ) {
        self.authTime = authTime
        self.grantID = grantID
        self.serial = serial
        self.userID = userID
        self.kind = kind
        self.keyFingerprint = keyFingerprint
        self.principals = principals
        self.keyID = keyID
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
