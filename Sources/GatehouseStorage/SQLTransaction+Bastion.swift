import Foundation
import GatehouseCore
import GatehouseServices
import SQLKit

/// Sessions through the SSH bastion (migration 10), and certificates by key.
extension SQLTransaction {
    private static let sessionColumns = """
        id, user_id, username, login, host, source, mode, command, started_at, ended_at, exit_status, exit_signal, ended_by, \
        recording_sha256, recording_bytes, bytes_in, bytes_out, replica, heartbeat_at
        """

    private static func session(_ row: any SQLRow) throws -> BastionSessionRecord {
        BastionSessionRecord(
            id: try row.decode(column: "id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            username: try row.decode(column: "username", as: String.self), login: try row.decode(column: "login", as: String.self),
            host: try row.decode(column: "host", as: String.self), source: try row.decode(column: "source", as: String?.self),
            mode: try row.decode(column: "mode", as: String.self), command: try row.decode(column: "command", as: String?.self),
            startedAt: Self.date(try row.decode(column: "started_at", as: Int64.self)),
            endedAt: try row.decode(column: "ended_at", as: Int64?.self).map(Self.date),
            exitStatus: try row.decode(column: "exit_status", as: Int64?.self).map { Int($0) },
            exitSignal: try row.decode(column: "exit_signal", as: String?.self),
            endedBy: try row.decode(column: "ended_by", as: String?.self),
            recordingSHA256: try row.decode(column: "recording_sha256", as: String?.self),
            recordingBytes: try row.decode(column: "recording_bytes", as: Int64?.self), bytesIn: try row.decode(column: "bytes_in", as: Int64.self),
            bytesOut: try row.decode(column: "bytes_out", as: Int64.self), replica: try row.decode(column: "replica", as: String?.self),
            heartbeatAt: try row.decode(column: "heartbeat_at", as: Int64?.self).map(Self.date)
        )
    }

    func sshCertificates(keyFingerprint: String) async throws -> [SSHCertificateRecord] {
        try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.sshColumns) FROM ssh_certificates WHERE key_fingerprint = \(bind: keyFingerprint) ORDER BY created_at DESC, serial DESC LIMIT 64
            """
        ).all().map(Self.certificate)
    }

    func bastionSessions(userID: String?, liveOnly: Bool, limit: Int) async throws -> [BastionSessionRecord] {
        try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.sessionColumns) FROM bastion_sessions
            WHERE (\(bind: userID) IS NULL OR user_id = \(bind: userID)) AND (\(bind: liveOnly ? 1 : 0) = 0 OR ended_at IS NULL)
            ORDER BY started_at DESC, id DESC LIMIT \(bind: limit)
            """
        ).all().map(Self.session)
    }

    func bastionSession(id: String) async throws -> BastionSessionRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.sessionColumns) FROM bastion_sessions WHERE id = \(bind: id)").all().first.map(Self.session)
    }

    func staleBastionSessions(otherThan replica: String, heartbeatBefore cutoff: Date?, includeUnowned: Bool, limit: Int) async throws
        -> [BastionSessionRecord]
    {
        try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.sessionColumns) FROM bastion_sessions
            WHERE ended_at IS NULL AND (replica <> \(bind: replica) OR (\(bind: includeUnowned ? 1 : 0) = 1 AND replica IS NULL))
              AND (\(bind: cutoff.map(Self.millis)) IS NULL OR COALESCE(heartbeat_at, started_at) < \(bind: cutoff.map(Self.millis)))
            ORDER BY started_at, id LIMIT \(bind: limit)
            """
        ).all().map(Self.session)
    }

    /// Closes a session found stale, unless it moved on since it was read (a heartbeat, or
    /// another replica's close): the heartbeat must still be the one read.
    func finishStaleBastionSession(_ r: BastionSessionRecord) async throws -> Bool {
        let seen = r.heartbeatAt.map(Self.millis)
        return
            !(try await self.db.raw(
                """
                UPDATE bastion_sessions SET ended_at = \(bind: r.endedAt.map(Self.millis)), ended_by = \(bind: r.endedBy),
                    recording_sha256 = \(bind: r.recordingSHA256), recording_bytes = \(bind: r.recordingBytes)
                WHERE id = \(bind: r.id) AND ended_at IS NULL
                  AND ((\(bind: seen) IS NULL AND heartbeat_at IS NULL) OR heartbeat_at = \(bind: seen)) RETURNING id
                """
            ).all().isEmpty)
    }

    func sealInterruptedBastionSession(id: String, sha256: String, bytes: Int64) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE bastion_sessions SET recording_sha256 = \(bind: sha256), recording_bytes = \(bind: bytes)
            WHERE id = \(bind: id) AND ended_at IS NOT NULL AND recording_sha256 IS NULL AND ended_by LIKE 'interrupted:%' RETURNING id
            """
        ).all().isEmpty)
    }

    /// These sessions of this replica are still running: their heartbeat moves to `time`.
    /// Returns those of them that are still open in the store.
    func bastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String> {
        var open: Set<String> = []
        var rest = ids[...]
        while !rest.isEmpty {
            // A few hundred ids per statement, well inside every bind limit.
            let chunk = Array(rest.prefix(500))
            rest = rest.dropFirst(chunk.count)
            for row in try await self.db.raw(
                """
                UPDATE bastion_sessions SET heartbeat_at = \(bind: Self.millis(time))
                WHERE replica = \(bind: replica) AND ended_at IS NULL AND id IN (\(binds: chunk)) RETURNING id
                """
            ).all() {
                open.insert(try row.decode(column: "id", as: String.self))
            }
        }
        return open
    }

    func insertBastionSession(_ r: BastionSessionRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO bastion_sessions (\(unsafeRaw: Self.sessionColumns))
            VALUES (\(bind: r.id), \(bind: r.userID), \(bind: r.username), \(bind: r.login), \(bind: r.host), \(bind: r.source), \(bind: r.mode), \(bind: r.command),
                    \(bind: Self.millis(r.startedAt)), \(bind: r.endedAt.map(Self.millis)), \(bind: r.exitStatus.map(Int64.init)), \(bind: r.exitSignal), \(bind: r.endedBy),
                    \(bind: r.recordingSHA256), \(bind: r.recordingBytes), \(bind: r.bytesIn), \(bind: r.bytesOut), \(bind: r.replica),
                    \(bind: r.heartbeatAt.map(Self.millis)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "that session id exists") }
    }

    func finishBastionSession(_ r: BastionSessionRecord) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE bastion_sessions SET ended_at = \(bind: r.endedAt.map(Self.millis)), exit_status = \(bind: r.exitStatus.map(Int64.init)),
                exit_signal = \(bind: r.exitSignal), ended_by = \(bind: r.endedBy), recording_sha256 = \(bind: r.recordingSHA256),
                recording_bytes = \(bind: r.recordingBytes), bytes_in = \(bind: r.bytesIn), bytes_out = \(bind: r.bytesOut)
            WHERE id = \(bind: r.id) AND ended_at IS NULL RETURNING id
            """
        ).all().isEmpty)
    }
}
