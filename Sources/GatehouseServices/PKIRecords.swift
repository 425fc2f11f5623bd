public import Foundation
public import GatehouseCore

/// The X.509 authority as stored: the root and intermediate certificates (DER, base64) and the
/// intermediate's private key sealed under the root key. `pending` rows hold a key waiting for
/// its certificate from an offline root; the newest `active` row issues.
public struct PKIAuthorityRecord: Sendable, Equatable {
    public enum Status: String, Sendable { case active, pending }

    public var id: String
    public var trustDomain: String
    public var algorithm: KeyAlgorithm
    public var rootDER: [UInt8]
    public var intermediateDER: [UInt8]
    public var sealedIntermediateKey: [UInt8]
    /// True when the root's key is not held by the server (`gatehouse pki init-root`).
    public var rootOffline: Bool
    public var status: Status
    public var createdAt: Date

    public init(
        id: String, trustDomain: String, algorithm: KeyAlgorithm, rootDER: [UInt8], intermediateDER: [UInt8], sealedIntermediateKey: [UInt8],
        rootOffline: Bool, status: Status, createdAt: Date
    ) {
        self.id = id
        self.trustDomain = trustDomain
        self.algorithm = algorithm
        self.rootDER = rootDER
        self.intermediateDER = intermediateDER
        self.sealedIntermediateKey = sealedIntermediateKey
        self.rootOffline = rootOffline
        self.status = status
        self.createdAt = createdAt
    }
}

/// An issued X.509 certificate as the inventory keeps it; also what the admin socket lists
/// (snake_case JSON, decoded as is by the admin client).
public struct PKICertificateRecord: Sendable, Equatable, Codable {
    /// Lower-case hex of the serial.
    public var serial: String
    public var spiffeID: String
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var keyFingerprint: String
    /// Who asked: `user:NAME`, `host:NAME`, or `gatehouse` for the server's own.
    public var requester: String
    /// The user it dies with, for certificates a person obtained.
    public var userID: String?
    /// The authority (intermediate) that signed it: its CRL is the one that lists it.
    public var authorityID: String
    public var notBefore: Date
    public var notAfter: Date
    public var createdAt: Date
    public var revokedAt: Date?
    public var revocationReason: String?
    /// The OIDC grant whose access token asked for it (certificates a person obtained): it dies
    /// with that grant's sign-in session.
    public var grantID: String?

    enum CodingKeys: String, CodingKey {
        case serial, requester
        case grantID = "grant_id"
        case spiffeID = "spiffe_id"
        case dnsNames = "dns_names"
        case ipAddresses = "ip_addresses"
        case keyFingerprint = "key_fingerprint"
        case userID = "user_id"
        case authorityID = "authority_id"
        case notBefore = "not_before"
        case notAfter = "not_after"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
        case revocationReason = "revocation_reason"
    }

    public init(
        serial: String, spiffeID: String, dnsNames: [String], ipAddresses: [String], keyFingerprint: String, requester: String, userID: String?,
        authorityID: String, notBefore: Date, notAfter: Date, createdAt: Date, revokedAt: Date? = nil, revocationReason: String? = nil,
        grantID: String? = nil
    ) {
        self.grantID = grantID
        self.serial = serial
        self.spiffeID = spiffeID
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.keyFingerprint = keyFingerprint
        self.requester = requester
        self.userID = userID
        self.authorityID = authorityID
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
    }
}
