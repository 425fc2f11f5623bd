import Foundation
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SSH certificate inventory (migration 6).
extension SQLTransaction {
    static let sshColumns =
        "serial, user_id, kind, key_fingerprint, principals, key_id, valid_after, valid_before, created_at, revoked_at, auth_time, grant_id"

    func sshCertificates(userID: String) async throws -> [SSHCertificateRecord] {
        try await self.db.raw(
            "SELECT \(unsafeRaw: Self.sshColumns) FROM ssh_certificates WHERE user_id = \(bind: userID) ORDER BY created_at DESC, serial"
        ).all().map(Self.certificate)
    }

    func revokedSSHCertificates(at time: Date) async throws -> [SSHCertificateRecord] {
        try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.sshColumns) FROM ssh_certificates WHERE revoked_at IS NOT NULL AND valid_before > \(bind: Self.millis(time)) ORDER BY serial
            """
        ).all().map(Self.certificate)
    }

    static func certificate(_ row: any SQLRow) throws -> SSHCertificateRecord {
        guard let serial = UInt64(try row.decode(column: "serial", as: String.self)) else {
            throw GatehouseError(.storeFailure, "stored certificate serial is malformed")
        }
        let principals = try row.decode(column: "principals", as: String.self)
        return SSHCertificateRecord(
            serial: serial, userID: try row.decode(column: "user_id", as: String.self), kind: try row.decode(column: "kind", as: String.self),
            keyFingerprint: try row.decode(column: "key_fingerprint", as: String.self),
            principals: principals.isEmpty ? [] : principals.split(separator: ",").map(String.init),
            keyID: try row.decode(column: "key_id", as: String.self),
            validAfter: Self.date(try row.decode(column: "valid_after", as: Int64.self)),
            validBefore: Self.date(try row.decode(column: "valid_before", as: Int64.self)),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date),
            authTime: try row.decode(column: "auth_time", as: Int64?.self).map(Self.date),
            grantID: try row.decode(column: "grant_id", as: String?.self)
        )
    }

    func insertSSHCertificate(_ r: SSHCertificateRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO ssh_certificates (\(unsafeRaw: Self.sshColumns))
            VALUES (\(bind: String(r.serial)), \(bind: r.userID), \(bind: r.kind), \(bind: r.keyFingerprint), \(bind: r.principals.joined(separator: ",")), \(bind: r.keyID),
                    \(bind: Self.millis(r.validAfter)), \(bind: Self.millis(r.validBefore)), \(bind: Self.millis(r.createdAt)), \(bind: r.revokedAt.map(Self.millis)),
                    \(bind: r.authTime.map(Self.millis)), \(bind: r.grantID))
            ON CONFLICT DO NOTHING RETURNING serial
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "certificate serial \(r.serial) exists") }
    }

    func revokeSSHCertificates(userID: String, at time: Date) async throws -> Int {
        try await self.db.raw(
            """
            UPDATE ssh_certificates SET revoked_at = \(bind: Self.millis(time))
            WHERE user_id = \(bind: userID) AND revoked_at IS NULL AND valid_before > \(bind: Self.millis(time)) RETURNING serial
            """
        ).all().count
    }

    /// Revokes what was issued under these grants (migration 12): SSH certificates, X.509
    /// certificates and WireGuard devices; returns how many of each.
    func revokeIssued(grantIDs: [String], at time: Date) async throws -> IssuedUnderGrants {
        var out = IssuedUnderGrants()
        let now = Self.millis(time)
        for id in grantIDs {
            out.sshCertificates += try await self.db.raw(
                """
                UPDATE ssh_certificates SET revoked_at = \(bind: now) WHERE grant_id = \(bind: id) AND revoked_at IS NULL AND valid_before > \(bind: now) RETURNING serial
                """
            ).all().count
            out.x509Certificates += try await self.db.raw(
                """
                UPDATE pki_certificates SET revoked_at = \(bind: now), revocation_reason = 'session_revoked'
                WHERE grant_id = \(bind: id) AND revoked_at IS NULL AND not_after > \(bind: now) RETURNING serial
                """
            ).all().count
            out.networkDevices += try await self.db.raw(
                """
                UPDATE net_devices SET revoked_at = \(bind: now) WHERE grant_id = \(bind: id) AND revoked_at IS NULL AND expires_at > \(bind: now) RETURNING id
                """
            ).all().count
        }
        return out
    }

    // MARK: hosts (migration 7)

    private static let hostColumns = "name, join_token_hash, join_expires_at, joined_at, host_key_fingerprint, agent_token_hash, created_at"

    private static func host(_ row: any SQLRow) throws -> HostRecord {
        HostRecord(
            name: try row.decode(column: "name", as: String.self), joinTokenHash: try row.decode(column: "join_token_hash", as: String?.self),
            joinExpiresAt: try row.decode(column: "join_expires_at", as: Int64?.self).map(Self.date),
            joinedAt: try row.decode(column: "joined_at", as: Int64?.self).map(Self.date),
            hostKeyFingerprint: try row.decode(column: "host_key_fingerprint", as: String?.self),
            agentTokenHash: try row.decode(column: "agent_token_hash", as: String?.self),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
        )
    }

    func host(named name: String) async throws -> HostRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.hostColumns) FROM hosts WHERE name = \(bind: name)").all().first.map(Self.host)
    }

    func host(joinTokenHash: String) async throws -> HostRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.hostColumns) FROM hosts WHERE join_token_hash = \(bind: joinTokenHash)").all().first.map(
            Self.host)
    }

    func host(agentTokenHash: String) async throws -> HostRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.hostColumns) FROM hosts WHERE agent_token_hash = \(bind: agentTokenHash)").all().first.map(
            Self.host)
    }

    func saveHost(_ r: HostRecord) async throws {
        try await self.db.raw(
            """
            INSERT INTO hosts (\(unsafeRaw: Self.hostColumns))
            VALUES (\(bind: r.name), \(bind: r.joinTokenHash), \(bind: r.joinExpiresAt.map(Self.millis)), \(bind: r.joinedAt.map(Self.millis)),
                    \(bind: r.hostKeyFingerprint), \(bind: r.agentTokenHash), \(bind: Self.millis(r.createdAt)))
            ON CONFLICT (name) DO UPDATE SET join_token_hash = excluded.join_token_hash, join_expires_at = excluded.join_expires_at,
                joined_at = excluded.joined_at, host_key_fingerprint = excluded.host_key_fingerprint, agent_token_hash = excluded.agent_token_hash
            """
        ).run()
    }

    func claimHostJoin(name: String, joinTokenHash: String, hostKeyFingerprint: String, agentTokenHash: String, at time: Date) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE hosts SET join_token_hash = NULL, joined_at = \(bind: Self.millis(time)), host_key_fingerprint = \(bind: hostKeyFingerprint),
                agent_token_hash = \(bind: agentTokenHash)
            WHERE name = \(bind: name) AND join_token_hash = \(bind: joinTokenHash) AND joined_at IS NULL AND join_expires_at > \(bind: Self.millis(time))
            RETURNING name
            """
        ).all().isEmpty)
    }
}
