import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The queries behind ``StoreReader`` and ``StoreWriter``, written once for both dialects.
/// Times are stored as milliseconds since 1970; byte strings as base64 text.
final class SQLTransaction: StoreWriter, @unchecked Sendable {
    // @unchecked: `db` is one connection inside one transaction, used by one task at a time.
    let db: any SQLDatabase
    let dialect: SQLDialectKind
    /// Set inside an SQLite group commit: audit sequence numbers come from here.
    let sequencer: AuditSequencer?

    init(db: any SQLDatabase, dialect: SQLDialectKind, sequencer: AuditSequencer? = nil) {
        self.db = db
        self.dialect = dialect
        self.sequencer = sequencer
    }

    static func latestSequence(_ db: any SQLDatabase) async throws -> Int64 {
        let rows = try await db.raw("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_events").all()
        return try rows.first?.decode(column: "n", as: Int64.self) ?? 0
    }

    // MARK: reader

    func metaValue(_ key: MetaKey) async throws -> String? {
        let rows = try await self.db.raw("SELECT value FROM gatehouse_meta WHERE key = \(bind: key.rawValue)").all()
        return try rows.first?.decode(column: "value", as: String.self)
    }

    func sealedKeys() async throws -> [SealedKeyRecord] {
        let rows = try await self.db.raw(
            """
            SELECT purpose, algorithm, public_key, sealed_private_key, created_at FROM sealed_keys ORDER BY purpose
            """
        ).all()
        return try rows.map { row in
            let purposeText = try row.decode(column: "purpose", as: String.self)
            let algorithmText = try row.decode(column: "algorithm", as: String.self)
            guard let purpose = KeyPurpose(rawValue: purposeText), let algorithm = KeyAlgorithm(rawValue: algorithmText),
                let publicKey = Data(base64Encoded: try row.decode(column: "public_key", as: String.self)),
                let sealed = Data(base64Encoded: try row.decode(column: "sealed_private_key", as: String.self))
            else {
                throw GatehouseError(.keyMaterialCorrupted, "sealed key row '\(purposeText)' is malformed")
            }
            return SealedKeyRecord(
                purpose: purpose, algorithm: algorithm, publicKey: [UInt8](publicKey), sealedPrivateKey: [UInt8](sealed),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
            )
        }
    }

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

    // MARK: passkeys and sessions

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

    func auditRecords(after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        let rows = try await self.db.raw(
            """
            SELECT seq, time, code, actor, subject, outcome, reason, request_id, source_address, details, entry_hash
            FROM audit_events WHERE seq > \(bind: sequence) ORDER BY seq LIMIT \(bind: Int64(max(0, limit)))
            """
        ).all()
        return try rows.map { row in
            let codeText = try row.decode(column: "code", as: String.self)
            let outcomeText = try row.decode(column: "outcome", as: String.self)
            guard let code = AuditCode(rawValue: codeText), let outcome = AuditEvent.Outcome(rawValue: outcomeText),
                let details = try? JSONDecoder().decode([String: String].self, from: Data(try row.decode(column: "details", as: String.self).utf8))
            else {
                throw GatehouseError(.storeFailure, "audit record is malformed")
            }
            let hash = try row.decode(column: "entry_hash", as: String?.self).flatMap(Hex.decode) ?? []
            return AuditRecord(
                sequence: try row.decode(column: "seq", as: Int64.self),
                event: AuditEvent(
                    code: code, time: Self.date(try row.decode(column: "time", as: Int64.self)),
                    actor: try row.decode(column: "actor", as: String.self), subject: try row.decode(column: "subject", as: String.self),
                    outcome: outcome, reason: try row.decode(column: "reason", as: String?.self),
                    requestID: try row.decode(column: "request_id", as: String?.self),
                    sourceAddress: try row.decode(column: "source_address", as: String?.self), details: details
                ),
                entryHash: hash
            )
        }
    }

    func latestAuditSequence() async throws -> Int64 {
        if let sequencer = self.sequencer { return sequencer.next - 1 }
        return try await Self.latestSequence(self.db)
    }

    func checkpoints() async throws -> [CheckpointRecord] {
        let rows = try await self.db.raw("SELECT tree_size, root_hash, created_at, note FROM audit_checkpoints ORDER BY tree_size").all()
        return try rows.map { row in
            CheckpointRecord(
                size: try row.decode(column: "tree_size", as: Int64.self),
                root: Hex.decode(try row.decode(column: "root_hash", as: String.self)) ?? [],
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                note: try row.decode(column: "note", as: String.self)
            )
        }
    }

    func policyVersion(_ version: Int64?) async throws -> PolicyVersionRecord? {
        let query: SQLQueryString =
            version.map {
                "SELECT version, sha256, source, applied_at, applied_by, comment, rule_count FROM policy_versions WHERE version = \(bind: $0)"
            } ?? "SELECT version, sha256, source, applied_at, applied_by, comment, rule_count FROM policy_versions ORDER BY version DESC LIMIT 1"
        guard let row = try await self.db.raw(query).all().first else { return nil }
        return PolicyVersionRecord(info: try Self.policyInfo(row), source: try row.decode(column: "source", as: String.self))
    }

    func policyHistory(limit: Int) async throws -> [PolicyVersionInfo] {
        let rows = try await self.db.raw(
            """
            SELECT version, sha256, applied_at, applied_by, comment, rule_count FROM policy_versions
            ORDER BY version DESC LIMIT \(bind: Int64(max(0, limit)))
            """
        ).all()
        return try rows.map(Self.policyInfo)
    }

    private static func policyInfo(_ row: any SQLRow) throws -> PolicyVersionInfo {
        PolicyVersionInfo(
            version: try row.decode(column: "version", as: Int64.self),
            sha256: try row.decode(column: "sha256", as: String.self),
            appliedAt: Self.date(try row.decode(column: "applied_at", as: Int64.self)),
            appliedBy: try row.decode(column: "applied_by", as: String.self),
            comment: try row.decode(column: "comment", as: String?.self),
            ruleCount: Int(try row.decode(column: "rule_count", as: Int64.self))
        )
    }

    func insertPolicyVersion(_ record: PolicyVersionRecord) async throws {
        let i = record.info
        let rows = try await self.db.raw(
            """
            INSERT INTO policy_versions (version, sha256, source, applied_at, applied_by, comment, rule_count)
            VALUES (\(bind: i.version), \(bind: i.sha256), \(bind: record.source), \(bind: Self.millis(i.appliedAt)),
                    \(bind: i.appliedBy), \(bind: i.comment), \(bind: Int64(i.ruleCount)))
            ON CONFLICT DO NOTHING RETURNING version
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "policy version \(i.version) already exists") }
    }

    func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            INSERT INTO audit_checkpoints (tree_size, root_hash, created_at, note)
            VALUES (\(bind: checkpoint.size), \(bind: Hex.encode(checkpoint.root)), \(bind: Self.millis(checkpoint.createdAt)), \(bind: checkpoint.note))
            ON CONFLICT DO NOTHING RETURNING tree_size
            """
        ).all()
        return !rows.isEmpty
    }

    // MARK: writer

    func insertMetaValueIfAbsent(_ key: MetaKey, _ value: String) async throws -> Bool {
        let rows = try await self.db.raw(
            """
            INSERT INTO gatehouse_meta (key, value) VALUES (\(bind: key.rawValue), \(bind: value))
            ON CONFLICT DO NOTHING RETURNING key
            """
        ).all()
        return !rows.isEmpty
    }

    func insertSealedKey(_ record: SealedKeyRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO sealed_keys (purpose, algorithm, public_key, sealed_private_key, created_at)
            VALUES (\(bind: record.purpose.rawValue), \(bind: record.algorithm.rawValue), \(bind: Data(record.publicKey).base64EncodedString()),
                    \(bind: Data(record.sealedPrivateKey).base64EncodedString()), \(bind: Self.millis(record.createdAt)))
            ON CONFLICT DO NOTHING RETURNING purpose
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "a \(record.purpose.rawValue) key already exists") }
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

    /// Appends events with gap-free, commit-ordered sequence numbers. On PostgreSQL the table
    /// lock makes concurrent writers take turns, so numbers follow commit order.
    func appendAudit(_ events: [AuditEvent]) async throws {
        if self.dialect == .postgres {
            try await self.db.raw("LOCK TABLE audit_events IN EXCLUSIVE MODE").run()
        }
        var next = try await self.latestAuditSequence() + 1
        defer { self.sequencer?.next = next }
        for event in events {
            let record = AuditRecord(sequence: next, event: event)
            try await self.db.raw(
                """
                INSERT INTO audit_events (seq, time, code, actor, subject, outcome, reason, request_id, source_address, details, entry_hash)
                VALUES (\(bind: next), \(bind: Self.millis(event.time)), \(bind: event.code.rawValue), \(bind: event.actor),
                        \(bind: event.subject), \(bind: event.outcome.rawValue), \(bind: event.reason), \(bind: event.requestID),
                        \(bind: event.sourceAddress), \(bind: event.detailsJSON), \(bind: Hex.encode(record.entryHash)))
                """
            ).run()
            next += 1
        }
    }

    // MARK: helpers

    private func count(_ query: SQLQueryString) async throws -> Int {
        let rows = try await self.db.raw(query).all()
        return Int(try rows.first?.decode(column: "n", as: Int64.self) ?? 0)
    }

    /// The same rounding as the canonical audit encoding, so stored times re-hash identically.
    static func millis(_ date: Date) -> Int64 { CanonicalEntry.milliseconds(date) }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    static func user(_ row: any SQLRow) throws -> User {
        guard let status = User.Status(rawValue: try row.decode(column: "status", as: String.self)) else {
            throw GatehouseError(.storeFailure, "user record has an unknown status")
        }
        return User(
            id: try row.decode(column: "id", as: String.self),
            username: Username(uncheckedStored: try row.decode(column: "username", as: String.self)),
            email: try row.decode(column: "email", as: String?.self).map(EmailAddress.init(uncheckedStored:)),
            role: RoleName(uncheckedStored: try row.decode(column: "role", as: String.self)),
            status: status, createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
        )
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
