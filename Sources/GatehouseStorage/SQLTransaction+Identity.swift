import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SQL behind people, invitations, passkeys and sign-in sessions.
extension SQLTransaction {
    func user(named username: Username) async throws -> User? {
        let rows = try await self.db.raw(
            """
            SELECT id, username, email, role, status, created_at FROM users WHERE username = \(bind: username.rawValue)
            """
        ).all()
        return try rows.first.map(Self.user)
    }

    func user(id: String) async throws -> User? {
        let rows = try await self.db.raw("SELECT id, username, email, role, status, created_at FROM users WHERE id = \(bind: id)").all()
        return try rows.first.map(Self.user)
    }

    func invitation(tokenHash: String) async throws -> Invitation? {
        let rows = try await self.db.raw("SELECT \(unsafeRaw: Self.invitationColumns) FROM invitations WHERE token_hash = \(bind: tokenHash)").all()
        return try rows.first.map(Self.invitation)
    }

    private static let credentialColumns = """
        id, user_id, user_handle, public_key, algorithm, sign_count, backup_eligible, backed_up, aaguid, attestation_format, transports, created_at, last_used_at, name
        """

    func credential(id: [UInt8]) async throws -> CredentialRecord? {
        let rows = try await self.db.raw(
            "SELECT \(unsafeRaw: Self.credentialColumns) FROM webauthn_credentials WHERE id = \(bind: Base64URL.encode(id))"
        ).all()
        return try rows.first.map(Self.credential)
    }

    func credentials(userID: String) async throws -> [CredentialRecord] {
        let rows = try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.credentialColumns) FROM webauthn_credentials WHERE user_id = \(bind: userID) ORDER BY created_at, id
            """
        ).all()
        return try rows.map(Self.credential)
    }

    private static func credential(_ row: any SQLRow) throws -> CredentialRecord {
        func bytes(_ column: String) throws -> [UInt8] {
            guard let value = Base64URL.decode(try row.decode(column: column, as: String.self)) else {
                throw GatehouseError(.storeFailure, "stored passkey has a corrupt \(column)")
            }
            return value
        }
        let transports = try row.decode(column: "transports", as: String.self)
        return CredentialRecord(
            id: try bytes("id"), userID: try row.decode(column: "user_id", as: String.self), userHandle: try bytes("user_handle"),
            publicKey: try bytes("public_key"), algorithm: try row.decode(column: "algorithm", as: Int64.self),
            signCount: UInt32(clamping: try row.decode(column: "sign_count", as: Int64.self)),
            backupEligible: try row.decode(column: "backup_eligible", as: Bool.self), backedUp: try row.decode(column: "backed_up", as: Bool.self),
            aaguid: try bytes("aaguid"), attestationFormat: try row.decode(column: "attestation_format", as: String.self),
            transports: transports.isEmpty ? [] : transports.split(separator: ",").map(String.init),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self).map(Self.date),
            name: try row.decode(column: "name", as: String?.self)
        )
    }

    func insertCredential(_ r: CredentialRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO webauthn_credentials (\(unsafeRaw: Self.credentialColumns))
            VALUES (\(bind: Base64URL.encode(r.id)), \(bind: r.userID), \(bind: Base64URL.encode(r.userHandle)), \(bind: Base64URL.encode(r.publicKey)),
                    \(bind: r.algorithm), \(bind: Int64(r.signCount)), \(bind: r.backupEligible), \(bind: r.backedUp), \(bind: Base64URL.encode(r.aaguid)),
                    \(bind: r.attestationFormat), \(bind: r.transports.joined(separator: ",")), \(bind: Self.millis(r.createdAt)),
                    \(bind: r.lastUsedAt.map(Self.millis)), \(bind: r.name))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "this passkey is already registered") }
    }

    func updateCredentialUse(id: [UInt8], signCount: UInt32, backedUp: Bool, at time: Date) async throws -> Bool {
        let count = Int64(signCount)
        let rows = try await self.db.raw(
            """
            UPDATE webauthn_credentials SET sign_count = \(bind: count), backed_up = \(bind: backedUp), last_used_at = \(bind: Self.millis(time))
            WHERE id = \(bind: Base64URL.encode(id)) AND (sign_count < \(bind: count) OR (sign_count = 0 AND \(bind: count) = 0)) RETURNING id
            """
        ).all()
        return !rows.isEmpty
    }

    func renameCredential(id: [UInt8], userID: String, name: String) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            UPDATE webauthn_credentials SET name = \(bind: name) WHERE id = \(bind: Base64URL.encode(id)) AND user_id = \(bind: userID) RETURNING id
            """
        ).all()
        return !rows.isEmpty
    }

    /// A transaction-scoped advisory lock on PostgreSQL (released at commit or rollback); on
    /// SQLite every write transaction already runs alone.
    func lockAccountChanges() async throws {
        guard self.dialect == .postgres else { return }
        _ = try await self.db.raw("SELECT pg_advisory_xact_lock(7473736) AS locked").all()
    }

    private static let sessionColumns = """
        token_hash, user_id, credential_id, created_at, last_seen_at, expires_at, idle_timeout_ms, stepped_up_at, revoked_at, source_address, user_agent
        """

    func session(tokenHash: String) async throws -> SessionRecord? {
        let rows = try await self.db.raw("SELECT \(unsafeRaw: Self.sessionColumns) FROM sessions WHERE token_hash = \(bind: tokenHash)").all()
        return try rows.first.map(Self.session)
    }

    func sessions(userID: String) async throws -> [SessionRecord] {
        let rows = try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.sessionColumns) FROM sessions WHERE user_id = \(bind: userID) ORDER BY created_at DESC, token_hash
            """
        ).all()
        return try rows.map(Self.session)
    }

    private static func session(_ row: any SQLRow) throws -> SessionRecord {
        SessionRecord(
            tokenHash: try row.decode(column: "token_hash", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            credentialID: Base64URL.decode(try row.decode(column: "credential_id", as: String.self)) ?? [],
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            lastSeenAt: Self.date(try row.decode(column: "last_seen_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "expires_at", as: Int64.self)),
            idleTimeout: Double(try row.decode(column: "idle_timeout_ms", as: Int64.self)) / 1000,
            steppedUpAt: Self.date(try row.decode(column: "stepped_up_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date),
            sourceAddress: try row.decode(column: "source_address", as: String?.self),
            userAgent: try row.decode(column: "user_agent", as: String?.self)
        )
    }

    func revokeSession(tokenHash: String, at time: Date) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            UPDATE sessions SET revoked_at = \(bind: Self.millis(time)) WHERE token_hash = \(bind: tokenHash) AND revoked_at IS NULL RETURNING token_hash
            """
        ).all()
        return !rows.isEmpty
    }

    func revokeSessions(userID: String, at time: Date) async throws -> Int {
        let rows = try await self.db.raw(
            """
            UPDATE sessions SET revoked_at = \(bind: Self.millis(time)) WHERE user_id = \(bind: userID) AND revoked_at IS NULL RETURNING token_hash
            """
        ).all()
        return rows.count
    }

    func deleteCredential(id: [UInt8], userID: String) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            DELETE FROM webauthn_credentials WHERE id = \(bind: Base64URL.encode(id)) AND user_id = \(bind: userID) RETURNING id
            """
        ).all()
        return !rows.isEmpty
    }

    func updateUserStatus(id: String, status: User.Status) async throws {
        let rows = try await self.db.raw("UPDATE users SET status = \(bind: status.rawValue) WHERE id = \(bind: id) RETURNING id").all()
        guard !rows.isEmpty else { throw GatehouseError(.notFound, "no such user") }
    }

    func insertSession(_ r: SessionRecord) async throws {
        try await self.db.raw(
            """
            INSERT INTO sessions (\(unsafeRaw: Self.sessionColumns))
            VALUES (\(bind: r.tokenHash), \(bind: r.userID), \(bind: Base64URL.encode(r.credentialID)), \(bind: Self.millis(r.createdAt)),
                    \(bind: Self.millis(r.lastSeenAt)), \(bind: Self.millis(r.expiresAt)), \(bind: Int64(r.idleTimeout * 1000)),
                    \(bind: Self.millis(r.steppedUpAt)), \(bind: r.revokedAt.map(Self.millis)), \(bind: r.sourceAddress), \(bind: r.userAgent))
            """
        ).run()
    }

    func touchSession(tokenHash: String, at time: Date, steppedUp: Bool) async throws {
        let t = Self.millis(time)
        let rows =
            try await
            (steppedUp
            ? self.db.raw(
                "UPDATE sessions SET last_seen_at = \(bind: t), stepped_up_at = \(bind: t) WHERE token_hash = \(bind: tokenHash) RETURNING token_hash"
            ).all()
            : self.db.raw(
                "UPDATE sessions SET last_seen_at = \(bind: t) WHERE token_hash = \(bind: tokenHash) AND last_seen_at < \(bind: t) RETURNING token_hash"
            ).all())
        _ = rows
    }

    func countActiveUsers(role: RoleName) async throws -> Int {
        try await self.count("SELECT COUNT(*) AS n FROM users WHERE role = \(bind: role.rawValue) AND status = 'active'")
    }

    func countUsers() async throws -> Int {
        try await self.count("SELECT COUNT(*) AS n FROM users")
    }

    private static let invitationColumns = "id, kind, username, email, role, token_hash, created_at, expires_at, created_by, state"

    func invitation(id: String) async throws -> Invitation? {
        let rows = try await self.db.raw("SELECT \(unsafeRaw: Self.invitationColumns) FROM invitations WHERE id = \(bind: id)").all()
        return try rows.first.map(Self.invitation)
    }

    func pendingInvitation(for username: Username) async throws -> Invitation? {
        let rows = try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.invitationColumns) FROM invitations WHERE username = \(bind: username.rawValue) AND state = 'pending'
            """
        ).all()
        return try rows.first.map(Self.invitation)
    }

    func invitations(state: Invitation.State?) async throws -> [Invitation] {
        let rows: [any SQLRow]
        if let state {
            rows = try await self.db.raw(
                """
                SELECT \(unsafeRaw: Self.invitationColumns) FROM invitations WHERE state = \(bind: state.rawValue) ORDER BY created_at, id
                """
            ).all()
        } else {
            rows = try await self.db.raw("SELECT \(unsafeRaw: Self.invitationColumns) FROM invitations ORDER BY created_at, id").all()
        }
        return try rows.map(Self.invitation)
    }

    func insertUser(_ user: User) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO users (id, username, email, role, status, created_at)
            VALUES (\(bind: user.id), \(bind: user.username.rawValue), \(bind: user.email?.rawValue), \(bind: user.role.rawValue),
                    \(bind: user.status.rawValue), \(bind: Self.millis(user.createdAt)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "user \(user.username) already exists") }
    }

    func insertInvitation(_ invitation: Invitation) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO invitations (id, kind, username, email, role, token_hash, created_at, expires_at, created_by, state)
            VALUES (\(bind: invitation.id), \(bind: invitation.kind.rawValue), \(bind: invitation.username.rawValue),
                    \(bind: invitation.email?.rawValue), \(bind: invitation.role.rawValue), \(bind: invitation.tokenHash),
                    \(bind: Self.millis(invitation.createdAt)), \(bind: Self.millis(invitation.expiresAt)),
                    \(bind: invitation.createdBy), \(bind: invitation.state.rawValue))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else {
            throw GatehouseError(.conflict, "a pending invitation for \(invitation.username) already exists")
        }
    }

    func finishInvitation(id: String, state: Invitation.State, at time: Date) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            UPDATE invitations SET state = \(bind: state.rawValue), finished_at = \(bind: Self.millis(time))
            WHERE id = \(bind: id) AND state = 'pending' RETURNING id
            """
        ).all()
        return !rows.isEmpty
    }

    private func count(_ query: SQLQueryString) async throws -> Int {
        let rows = try await self.db.raw(query).all()
        return Int(try rows.first?.decode(column: "n", as: Int64.self) ?? 0)
    }

    private static func invitation(_ row: any SQLRow) throws -> Invitation {
        guard let kind = Invitation.Kind(rawValue: try row.decode(column: "kind", as: String.self)),
            let state = Invitation.State(rawValue: try row.decode(column: "state", as: String.self))
        else {
            throw GatehouseError(.storeFailure, "invitation record has an unknown kind or state")
        }
        return Invitation(
            id: try row.decode(column: "id", as: String.self), kind: kind,
            username: Username(uncheckedStored: try row.decode(column: "username", as: String.self)),
            email: try row.decode(column: "email", as: String?.self).map(EmailAddress.init(uncheckedStored:)),
            role: RoleName(uncheckedStored: try row.decode(column: "role", as: String.self)),
            tokenHash: try row.decode(column: "token_hash", as: String.self),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "expires_at", as: Int64.self)),
            createdBy: try row.decode(column: "created_by", as: String.self), state: state
        )
    }
}
