import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SQL behind the audit log and its checkpoints.
extension SQLTransaction {
    static func latestSequence(_ db: any SQLDatabase) async throws -> Int64 {
        let rows = try await db.raw("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_events").all()
        return try rows.first?.decode(column: "n", as: Int64.self) ?? 0
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
}
