public import Foundation

/// An invitation to enroll a passkey: who it is for, the role it carries, when it expires and
/// whether it has been used. The token itself is never stored, only ``tokenHash``.
public struct Invitation: Sendable, Equatable, Codable {
    /// Why the invitation exists. Raw values are stored.
    public enum Kind: String, Sendable, Codable {
        /// The first administrator's invitation, printed by `gatehouse serve` on first start.
        case bootstrap
        /// An invitation made by an administrator.
        case invite
        /// Re-enrollment of an existing account that lost its passkeys, issued by an
        /// administrator: enrolling replaces the account's passkeys and ends its sessions.
        case recovery
    }

    /// Lifecycle. Raw values are stored.
    public enum State: String, Sendable, Codable {
        case pending
        case used
        case revoked
    }

    public var id: String
    public var kind: Kind
    public var username: Username
    public var email: EmailAddress?
    public var role: RoleName
    public var tokenHash: String
    public var createdAt: Date
    public var expiresAt: Date
    public var createdBy: String
    public var state: State

    public init(
        id: String, kind: Kind, username: Username, email: EmailAddress?, role: RoleName,
        tokenHash: String, createdAt: Date, expiresAt: Date, createdBy: String, state: State
    ) {
        self.id = id
        self.kind = kind
        self.username = username
        self.email = email
        self.role = role
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.createdBy = createdBy
        self.state = state
    }

    /// Usable means pending and not yet expired at `now`.
    public func isUsable(at now: Date) -> Bool {
        self.state == .pending && now < self.expiresAt
    }
}

/// An enrolled account. Enrollment itself arrives with the identity feature; the foundation
/// needs the record to know whether an administrator exists.
public struct User: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        case locked
        case offboarded
    }

    public var id: String
    public var username: Username
    public var email: EmailAddress?
    public var role: RoleName
    public var status: Status
    public var createdAt: Date

    public init(id: String, username: Username, email: EmailAddress?, role: RoleName, status: Status, createdAt: Date) {
        self.id = id
        self.username = username
        self.email = email
        self.role = role
        self.status = status
        self.createdAt = createdAt
    }
}
