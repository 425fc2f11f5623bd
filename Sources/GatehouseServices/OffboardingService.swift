public import Foundation
public import GatehouseCore

/// Something a user holds that offboarding must end: sessions and pending links today; OIDC tokens, SSH
/// certificates, WireGuard peers and X.509 certificates register here as they arrive, so that
/// `gatehouse admin offboard` stays one operation that cuts everything at once.
public protocol OffboardingHook: Sendable {
    /// A short name for the audit record (`sessions`, `oidc_tokens`, ...).
    var name: String { get }
    /// Ends what `user` holds, inside the offboarding transaction; returns how many were ended.
    func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int
}

/// Ends every sign-in session of the user.
public struct SessionOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "sessions" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        try await tx.revokeSessions(userID: user.id, at: time)
    }
}

/// Revokes a pending invitation or recovery link for the user, so no link outlives the account.
public struct InvitationOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "invitations" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        guard let pending = try await tx.pendingInvitation(for: user.username) else { return 0 }
        return try await tx.finishInvitation(id: pending.id, state: .revoked, at: time) ? 1 : 0
    }
}

/// Offboarding: disables the account and runs every registered hook in one transaction, with
/// one audit event that says how much each hook ended. Refuses to remove the last active
/// administrator, which would lock everyone out of administration. Locking runs the same hooks
/// but can be undone.
public struct OffboardingService: Sendable {
    let environment: ServiceEnvironment
    let hooks: [any OffboardingHook]

    /// What every offboarding ends; the composition root adds the hooks of live connections (the bastion's sessions).
    public static let defaultHooks: [any OffboardingHook] = [
        SessionOffboardingHook(), InvitationOffboardingHook(), OIDCOffboardingHook(), SSHCertificateOffboardingHook(), PKIOffboardingHook(),
        NetworkOffboardingHook(),
    ]

    /// A reason goes into the audit log whole, or not at all: at most 500 bytes.
    public static func checkReason(_ reason: String?) throws(GatehouseError) {
        if let reason, reason.utf8.count > 500 { throw GatehouseError(.invalidInput, "reason is longer than 500 bytes") }
    }

    public init(environment: ServiceEnvironment, hooks: [any OffboardingHook] = OffboardingService.defaultHooks) {
        self.environment = environment
        self.hooks = hooks
    }

    public struct Result: Sendable, Equatable {
        public let user: User
        /// Hook name → how many it ended.
        public let revoked: [String: Int]
    }

    public func offboard(username: Username, actor: String, reason: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws
        -> Result
    {
        try await self.disable(username, to: .offboarded, actor: actor, reason: reason, requestID: requestID, sourceAddress: sourceAddress)
    }

    /// Locking: the same cut as offboarding (every session, token, certificate and peer ends at
    /// once), but the account and its passkeys stay, so an administrator can unlock it; the
    /// person then signs in again and gets new credentials. Only an active account is locked.
    public func lock(username: Username, actor: String, reason: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws
        -> Result
    {
        try await self.disable(username, to: .locked, actor: actor, reason: reason, requestID: requestID, sourceAddress: sourceAddress)
    }

    /// Lets a locked account sign in again. Nothing it held comes back: it starts from a sign-in.
    public func unlock(username: Username, actor: String, reason: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws
        -> User
    {
        let env = self.environment
        return try await env.store.commit { tx -> Change<User> in
            try await tx.lockAccountChanges()
            guard var user = try await tx.user(named: username) else { throw GatehouseError(.notFound, "there is no user \(username)") }
            guard user.status == .locked else { throw GatehouseError(.conflict, "\(username) is \(user.status.rawValue), not locked") }
            // Locking ends bastion sessions here at once and on other replicas at their next
            // check; until every one of them is closed, unlocking could let one survive the lock.
            let open = try await tx.bastionSessions(userID: user.id, liveOnly: true, limit: 1000)
            guard open.isEmpty else {
                throw GatehouseError(
                    .conflict, "\(username) still has \(open.count) bastion session(s) ending since the lock; try again in a few seconds")
            }
            try await tx.updateUserStatus(id: user.id, status: .active)
            user.status = .active
            let event = AuditEvent(
                code: .userUnlocked, time: env.time.now(), actor: .stored(actor), subject: .user(username),
                reason: reason.map { String($0.prefix(500)) },
                requestID: requestID, sourceAddress: sourceAddress, details: ["role": user.role.rawValue])
            return Change(user, event: event)
        }
    }

    private func disable(_ username: Username, to status: User.Status, actor: String, reason: String?, requestID: String?, sourceAddress: String?)
        async throws -> Result
    {
        let env = self.environment
        let hooks = self.hooks
        return try await env.store.commit { tx -> Change<Result> in
            try await tx.lockAccountChanges()
            guard var user = try await tx.user(named: username) else { throw GatehouseError(.notFound, "there is no user \(username)") }
            guard user.status != .offboarded else { throw GatehouseError(.conflict, "\(username) is already offboarded") }
            if status == .locked, user.status == .locked { throw GatehouseError(.conflict, "\(username) is already locked") }
            if user.role == .admin, user.status == .active, try await tx.countActiveUsers(role: .admin) <= 1 {
                throw GatehouseError(.conflict, "\(username) is the last active administrator; enroll another one first")
            }
            let now = env.time.now()
            try await tx.updateUserStatus(id: user.id, status: status)
            user.status = status
            var revoked: [String: Int] = [:]
            for hook in hooks { revoked[hook.name] = try await hook.revoke(user: user, in: tx, at: now) }
            var details = revoked.mapValues(String.init)
            details["role"] = user.role.rawValue
            let event = AuditEvent(
                code: status == .locked ? .userLocked : .userOffboarded, time: now, actor: .stored(actor), subject: .user(username),
                reason: reason.map { String($0.prefix(500)) },
                requestID: requestID, sourceAddress: sourceAddress, details: details
            )
            return Change(Result(user: user, revoked: revoked), event: event)
        }
    }
}
