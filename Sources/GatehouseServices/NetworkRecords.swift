public import Foundation
public import GatehouseCore

/// A person's WireGuard device (migration 9). `addressIndex` numbers the device's address in the
/// device subnet; numbers are handed out in order and never again, so a removed device's address
/// can never reach a new device while some peer still remembers it.
public struct NetworkDeviceRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var username: String
    public var name: String
    public var publicKey: WireGuardKey
    public var addressIndex: Int64
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?
    /// The OIDC grant whose access token registered it: the device dies with that grant's
    /// sign-in session.
    public var grantID: String?

    public init(
        id: String, userID: String, username: String, name: String, publicKey: WireGuardKey, addressIndex: Int64, createdAt: Date, expiresAt: Date,
        revokedAt: Date?,
        grantID: String? = nil
    ) {
        self.grantID = grantID
        self.id = id
        self.userID = userID
        self.username = username
        self.name = name
        self.publicKey = publicKey
        self.addressIndex = addressIndex
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    public func isLive(at time: Date) -> Bool { self.revokedAt == nil && self.expiresAt > time }
}

/// A host's WireGuard identity as its agent registered it, bound to the enrollment the agent
/// proved (`enrolledAt`): after a re-enrollment the old registration no longer counts.
public struct NetworkHostRecord: Sendable, Equatable {
    public var host: String
    public var publicKey: WireGuardKey
    /// `HOST:PORT` where peers reach it.
    public var endpoint: String
    public var enrolledAt: Date
    public var updatedAt: Date

    public init(host: String, publicKey: WireGuardKey, endpoint: String, enrolledAt: Date, updatedAt: Date) {
        self.host = host
        self.publicKey = publicKey
        self.endpoint = endpoint
        self.enrolledAt = enrolledAt
        self.updatedAt = updatedAt
    }
}
