import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: the audit log and its checkpoints (`SQLTransaction+Audit.swift` is the SQL).
extension InMemoryTransaction {
    func auditRecords(after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        Array(self.state.audit.filter { $0.sequence > sequence }.prefix(max(0, limit)))
    }

    func latestAuditSequence() async throws -> Int64 { self.state.audit.last?.sequence ?? 0 }

    func checkpoints() async throws -> [CheckpointRecord] { self.state.checkpoints }
}
