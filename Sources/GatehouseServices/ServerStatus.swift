public import Foundation
public import GatehouseCore

/// A snapshot of the installation for `gatehouse admin status` and GraphQL.
public struct ServerStatus: Sendable, Codable, Equatable {
    public var version: String
    public var publicURL: String
    public var storeKind: String
    public var startedAt: Date
    public var users: Int
    public var administrators: Int
    public var pendingInvitations: Int
    public var auditEvents: Int64
    /// The latest applied policy version, nil before the first apply.
    public var policyVersion: Int64?

    public static func read(environment: ServiceEnvironment, version: String, publicURL: PublicURL, startedAt: Date) async throws -> ServerStatus {
        let store = environment.store
        let now = environment.time.now()
        return try await store.read { tx in
            let pending = try await tx.invitations(state: .pending).count { $0.isUsable(at: now) }
            let lastSequence = try await tx.latestAuditSequence()
            return ServerStatus(
                version: version, publicURL: publicURL.origin, storeKind: store.kind, startedAt: startedAt,
                users: try await tx.countUsers(), administrators: try await tx.countActiveUsers(role: .admin),
                pendingInvitations: pending, auditEvents: lastSequence,
                policyVersion: try await tx.policyHistory(limit: 1).first?.version
            )
        }
    }
}
