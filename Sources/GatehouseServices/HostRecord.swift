public import Foundation

/// A server enrolled (or being enrolled) with Gatehouse: its one-time join token (hashed), and
/// once joined, its SSH host key and the agent's own token (hashed) for renewals.
public struct HostRecord: Sendable, Equatable {
    public var name: String
    public var joinTokenHash: String?
    public var joinExpiresAt: Date?
    public var joinedAt: Date?
    public var hostKeyFingerprint: String?
    public var agentTokenHash: String?
    public var createdAt: Date

    public init(
        name: String, joinTokenHash: String?, joinExpiresAt: Date?, joinedAt: Date? = nil, hostKeyFingerprint: String? = nil,
        agentTokenHash: String? = nil, createdAt: Date
    ) {
        self.name = name
        self.joinTokenHash = joinTokenHash
        self.joinExpiresAt = joinExpiresAt
        self.joinedAt = joinedAt
        self.hostKeyFingerprint = hostKeyFingerprint
        self.agentTokenHash = agentTokenHash
        self.createdAt = createdAt
    }
}
