public import Foundation

/// A device authorization (RFC 8628): a headless client's pending request, found by the hash of
/// its device code (the client polls) or by its user code (the person approves in a browser).
public struct DeviceAuthorizationRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case pending, approved, denied, used
    }

    public var deviceCodeHash: String
    public var userCode: String
    public var clientID: String
    public var scope: String
    public var createdAt: Date
    public var expiresAt: Date
    /// Seconds the client must wait between polls; raised by `slow_down`.
    public var interval: Int
    public var lastPolledAt: Date?
    public var status: Status
    /// Set on approval: the grant the tokens belong to.
    public var grantID: String?
    /// Where the device's request came from: shown on the approval page, so a person sent
    /// someone else's code can see it did not start on their machine.
    public var sourceAddress: String?

    public init(
        deviceCodeHash: String, userCode: String, clientID: String, scope: String, createdAt: Date, expiresAt: Date, interval: Int,
        lastPolledAt: Date? = nil, status: Status = .pending, grantID: String? = nil, sourceAddress: String? = nil
    ) {
        self.sourceAddress = sourceAddress
        self.deviceCodeHash = deviceCodeHash
        self.userCode = userCode
        self.clientID = clientID
        self.scope = scope
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.interval = interval
        self.lastPolledAt = lastPolledAt
        self.status = status
        self.grantID = grantID
    }
}
