public import Foundation
public import GatehouseCore

/// Creates invitations: the first administrator's at bootstrap, and everyone else's on an
/// administrator's request. The token is returned once and only its hash is stored.
public struct InvitationService: Sendable {
    /// How long an invitation link works.
    public static let defaultLifetime: TimeInterval = 24 * 3600
    /// How long an administrator's invitation works (the bootstrap link keeps 24 hours).
    public static let inviteLifetime: TimeInterval = 72 * 3600
    public static let bootstrapUsername = Username(uncheckedStored: "admin")

    let environment: ServiceEnvironment
    let publicURL: PublicURL
    /// What a recovery ends at once: offboarding's hooks (the composition root adds live bastion sessions).
    let recoveryHooks: [any OffboardingHook]

    public init(environment: ServiceEnvironment, publicURL: PublicURL, recoveryHooks: [any OffboardingHook] = OffboardingService.defaultHooks) {
        self.environment = environment
        self.publicURL = publicURL
        self.recoveryHooks = recoveryHooks.filter { !($0 is InvitationOffboardingHook) }
    }

    /// What the caller gets back: the record and the link that carries the secret.
    public struct Issued: Sendable {
        public let invitation: Invitation
        public let enrollmentURL: String
    }

    /// While no active administrator exists, replaces any pending bootstrap invitation with a
    /// fresh one and returns it (the old link stops working: its token was never stored, so it
    /// cannot be printed again). Returns nil once an administrator exists.
    ///
    /// Replicas starting at the same moment may collide on the one pending bootstrap invitation
    /// allowed; the loser retries, so each start prints a link and the last one issued works.
    /// `username`: the first administrator's name (`admin_name`, `admin` by default).
    public func ensureBootstrapInvitation(username: Username = Self.bootstrapUsername) async throws -> Issued? {
        var attempt = 0
        while true {
            do {
                return try await self.replaceBootstrapInvitation(username: username)
            } catch let error as GatehouseError where error.code == .conflict && attempt < 4 {
                attempt += 1
            }
        }
    }

    private func replaceBootstrapInvitation(username: Username) async throws -> Issued? {
        let env = self.environment
        let publicURL = self.publicURL
        let adminCount = try await env.store.read { tx in try await tx.countActiveUsers(role: .admin) }
        guard adminCount == 0 else { return nil }
        return try await env.store.commit { tx -> Change<Issued?> in
            guard try await tx.countActiveUsers(role: .admin) == 0 else {
                throw GatehouseError(.conflict, "an administrator enrolled while the bootstrap invitation was being made")
            }
            let now = env.time.now()
            var revoked: [AuditEvent] = []
            for old in try await tx.invitations(state: .pending) where old.kind == .bootstrap {
                _ = try await tx.finishInvitation(id: old.id, state: .revoked, at: now)
                revoked.append(
                    AuditEvent(
                        code: .invitationRevoked, time: now, actor: .system, subject: .invitation(old.id),
                        reason: "superseded by a new bootstrap invitation at server start")
                )
            }
            let (invitation, token) = Self.make(
                kind: .bootstrap, username: username, email: nil, role: .admin, actor: AuditParty.system.description, env: env, now: now
            )
            try await tx.insertInvitation(invitation)
            let created = Self.createdEvent(invitation, actor: .system, now: now)
            return Change(Issued(invitation: invitation, enrollmentURL: token.enrollmentURL(publicURL: publicURL)), first: created, rest: revoked)
        }
    }

    /// Invites `username`. Refused when the user exists or already has a pending invitation.
    /// `requestID` and `sourceAddress` go into the audit event, to tie it to the request.
    public func invite(
        username: Username, email: EmailAddress?, role: RoleName, actor: String, requestID: String? = nil, sourceAddress: String? = nil
    ) async throws -> Issued {
        guard RoleName.accountRoles.contains(role) else {
            throw GatehouseError(
                .invalidInput,
                "the role is the account's role in Gatehouse itself: admin or member (not \(role.rawValue.prefix(64))). "
                    + "What a person may reach comes from the policy: list them in a group or role there (members = [...])")
        }
        return try await self.issue(kind: .invite, username: username, actor: actor, requestID: requestID, sourceAddress: sourceAddress) { tx in
            if try await tx.user(named: username) != nil { throw GatehouseError(.conflict, "user \(username) already exists") }
            return (email, role, Self.inviteLifetime, [])
        }
    }

    /// Issues a recovery link for an existing, active account (lost passkeys). Valid for 24
    /// hours. A lost device keeps nothing from the moment the link is issued: in the same
    /// transaction the account's passkeys are removed (the lost one cannot sign in again) and
    /// everything it holds ends, as a lock would end it (sessions, OIDC grants and tokens, SSH and
    /// X.509 certificates, WireGuard devices, live bastion sessions). The account stays; enrolling
    /// with the link gives it its new passkey.
    public func inviteRecovery(username: Username, actor: String, requestID: String? = nil, sourceAddress: String? = nil) async throws -> Issued {
        let env = self.environment
        let hooks = self.recoveryHooks
        return try await self.issue(kind: .recovery, username: username, actor: actor, requestID: requestID, sourceAddress: sourceAddress) { tx in
            try await tx.lockAccountChanges()
            guard let user = try await tx.user(named: username) else { throw GatehouseError(.notFound, "there is no user \(username)") }
            guard user.status == .active else {
                throw GatehouseError(.conflict, "\(username) is \(user.status.rawValue); only active accounts can be recovered")
            }
            let now = env.time.now()
            if let pending = try await tx.pendingInvitation(for: username), pending.isUsable(at: now) {
                throw GatehouseError(
                    .conflict,
                    "\(username) already has a pending invitation (\(pending.id)); gatehouse admin invitations resend \(username) issues a new link, revoke ends it"
                )
            }
            var details: [String: String] = ["role": user.role.rawValue]
            var removed = 0
            for old in try await tx.credentials(userID: user.id) where try await tx.deleteCredential(id: old.id, userID: user.id) { removed += 1 }
            details["passkeys_removed"] = String(removed)
            for hook in hooks { details[hook.name] = String(try await hook.revoke(user: user, in: tx, at: now)) }
            let cut = AuditEvent(
                code: .userRecoveryStarted, time: now, actor: .stored(actor), subject: .user(username), requestID: requestID,
                sourceAddress: sourceAddress, details: details)
            return (user.email, user.role, Self.recoveryLifetime, [cut])
        }
    }

    /// One invitation of `kind`, in one audited transaction: `check` vets the account and says
    /// the e-mail, role and lifetime; one pending invitation per user name at a time.
    private func issue(
        kind: Invitation.Kind, username: Username, actor: String, requestID: String?, sourceAddress: String?,
        check: @escaping @Sendable (any StoreWriter) async throws -> (EmailAddress?, RoleName, TimeInterval, [AuditEvent])
    ) async throws -> Issued {
        let env = self.environment
        let publicURL = self.publicURL
        return try await env.store.commit { tx in
            var (email, role, lifetime, before) = try await check(tx)
            let now = env.time.now()
            if let pending = try await tx.pendingInvitation(for: username) {
                // An expired link blocks nobody: it is revoked (audited) and a new one issued.
                guard !pending.isUsable(at: now) else {
                    throw GatehouseError(
                        .conflict,
                        "\(username) already has a pending invitation (\(pending.id)); gatehouse admin invitations resend \(username) issues a new link, revoke ends it"
                    )
                }
                _ = try await tx.finishInvitation(id: pending.id, state: .revoked, at: now)
                before.append(
                    Self.revokedEvent(
                        pending, actor: .stored(actor), reason: "expired; superseded by a new link", now: now, requestID: requestID,
                        sourceAddress: sourceAddress))
            }
            let (invitation, token) = Self.make(
                kind: kind, username: username, email: email, role: role, actor: actor, env: env, now: now, lifetime: lifetime)
            try await tx.insertInvitation(invitation)
            var event = Self.createdEvent(invitation, actor: .stored(actor), now: now)
            event.requestID = requestID
            event.sourceAddress = sourceAddress
            let issued = Issued(invitation: invitation, enrollmentURL: token.enrollmentURL(publicURL: publicURL))
            guard let first = before.first else { return Change(issued, event: event) }
            return Change(issued, first: first, rest: Array(before.dropFirst()) + [event])
        }
    }

    /// How long a recovery link works: shorter than an invitation, since it replaces passkeys.
    public static let recoveryLifetime: TimeInterval = 24 * 3600

    private static func make(
        kind: Invitation.Kind, username: Username, email: EmailAddress?, role: RoleName, actor: String,
        env: ServiceEnvironment, now: Date, lifetime: TimeInterval = InvitationService.defaultLifetime
    ) -> (Invitation, InvitationToken) {
        let token = InvitationToken.generate(using: env.random)
        let invitation = Invitation(
            id: Identifier.make(using: env.random), kind: kind, username: username, email: email, role: role,
            tokenHash: token.hash, createdAt: now, expiresAt: now.addingTimeInterval(lifetime),
            createdBy: actor, state: .pending
        )
        return (invitation, token)
    }

    static func revokedEvent(_ invitation: Invitation, actor: AuditParty, reason: String, now: Date, requestID: String?, sourceAddress: String?)
        -> AuditEvent
    {
        AuditEvent(
            code: .invitationRevoked, time: now, actor: actor, subject: .invitation(invitation.id), reason: reason, requestID: requestID,
            sourceAddress: sourceAddress, details: ["kind": invitation.kind.rawValue, "username": invitation.username.rawValue])
    }

    // MARK: managing links

    /// Every link not yet used or revoked, newest first; expired ones included (they say so).
    public func pending() async throws -> [Invitation] {
        try await self.environment.store.read { tx in try await tx.invitations(state: .pending) }.sorted { $0.createdAt > $1.createdAt }
    }

    /// Ends the pending link of `username` (a lost or mistaken invitation); audited.
    public func revoke(username: Username, actor: String, reason: String?, requestID: String? = nil, sourceAddress: String? = nil) async throws
        -> Invitation
    {
        try OffboardingService.checkReason(reason)
        let env = self.environment
        return try await env.store.commit { tx -> Change<Invitation> in
            guard var pending = try await tx.pendingInvitation(for: username) else {
                throw GatehouseError(.notFound, "\(username) has no pending invitation")
            }
            let now = env.time.now()
            guard try await tx.finishInvitation(id: pending.id, state: .revoked, at: now) else {
                throw GatehouseError(.conflict, "that invitation was used or revoked meanwhile")
            }
            pending.state = .revoked
            return Change(
                pending,
                event: Self.revokedEvent(
                    pending, actor: .stored(actor), reason: reason ?? "revoked by an administrator", now: now, requestID: requestID,
                    sourceAddress: sourceAddress))
        }
    }

    /// A new link in place of the pending (or expired) one of `username`, of the same kind, for
    /// the same e-mail and role: the old link stops working in the same transaction.
    public func resend(username: Username, actor: String, requestID: String? = nil, sourceAddress: String? = nil) async throws -> Issued {
        let env = self.environment
        let kind = try await env.store.read { tx in try await tx.pendingInvitation(for: username) }?.kind
        guard let kind else { throw GatehouseError(.notFound, "\(username) has no pending invitation to resend; gatehouse admin invite makes one") }
        return try await self.issue(kind: kind, username: username, actor: actor, requestID: requestID, sourceAddress: sourceAddress) { tx in
            guard let pending = try await tx.pendingInvitation(for: username), pending.kind == kind else {
                throw GatehouseError(.conflict, "the invitation of \(username) changed meanwhile; try again")
            }
            let now = env.time.now()
            if kind == .recovery, try await tx.user(named: username)?.status != .active {
                throw GatehouseError(.conflict, "\(username) is not active; only active accounts can be recovered")
            }
            guard try await tx.finishInvitation(id: pending.id, state: .revoked, at: now) else {
                throw GatehouseError(.conflict, "that invitation was used meanwhile")
            }
            let lifetime = kind == .recovery ? Self.recoveryLifetime : kind == .invite ? Self.inviteLifetime : Self.defaultLifetime
            return (
                pending.email, pending.role, lifetime,
                [
                    Self.revokedEvent(
                        pending, actor: .stored(actor), reason: "replaced by a new link (resend)", now: now, requestID: requestID,
                        sourceAddress: sourceAddress
                    )
                ]
            )
        }
    }

    private static func createdEvent(_ invitation: Invitation, actor: AuditParty, now: Date) -> AuditEvent {
        AuditEvent(
            code: .invitationCreated, time: now, actor: actor, subject: .invitation(invitation.id),
            details: [
                "kind": invitation.kind.rawValue, "username": invitation.username.rawValue, "role": invitation.role.rawValue,
                "expires_at": invitation.expiresAt.formatted(.iso8601),
            ]
        )
    }
}
