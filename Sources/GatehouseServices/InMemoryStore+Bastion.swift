import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: the SSH bastion's sessions (`SQLTransaction+Bastion.swift` is the SQL).
extension InMemoryTransaction {
    func bastionSessions(userID: String?, liveOnly: Bool, limit: Int) async throws -> [BastionSessionRecord] {
        Array(
            self.state.bastionSessions.values.filter { s in (userID.map { s.userID == $0 } ?? true) && (!liveOnly || s.endedAt == nil) }
                .sorted { ($0.startedAt, $0.id) > ($1.startedAt, $1.id) }.prefix(limit))
    }

    func bastionSession(id: String) async throws -> BastionSessionRecord? { self.state.bastionSessions[id] }

    func staleBastionSessions(otherThan replica: String, heartbeatBefore cutoff: Date?, includeUnowned: Bool, limit: Int) async throws
        -> [BastionSessionRecord]
    {
        Array(
            self.state.bastionSessions.values.filter { s in
                s.endedAt == nil && (s.replica.map { $0 != replica } ?? includeUnowned) && cutoff.map { (s.heartbeatAt ?? s.startedAt) < $0 } ?? true
            }.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }.prefix(limit))
    }

    func sealInterruptedBastionSession(id: String, sha256: String, bytes: Int64) async throws -> Bool {
        guard let s = self.state.bastionSessions[id], s.endedAt != nil, s.recordingSHA256 == nil, s.endedBy?.hasPrefix("interrupted:") == true else {
            return false
        }
        self.state.bastionSessions[id]?.recordingSHA256 = sha256
        self.state.bastionSessions[id]?.recordingBytes = bytes
        return true
    }

    func finishStaleBastionSession(_ record: BastionSessionRecord) async throws -> Bool {
        guard let stored = self.state.bastionSessions[record.id], stored.endedAt == nil, stored.heartbeatAt == record.heartbeatAt else {
            return false
        }
        return try await self.finishBastionSession(record)
    }

    func insertBastionSession(_ record: BastionSessionRecord) async throws {
        guard self.state.bastionSessions[record.id] == nil else { throw GatehouseError(.conflict, "that session id exists") }
        self.state.bastionSessions[record.id] = record
    }

    func finishBastionSession(_ record: BastionSessionRecord) async throws -> Bool {
        guard var stored = self.state.bastionSessions[record.id], stored.endedAt == nil else { return false }
        stored.endedAt = record.endedAt
        stored.exitStatus = record.exitStatus
        stored.exitSignal = record.exitSignal
        stored.endedBy = record.endedBy
        stored.recordingSHA256 = record.recordingSHA256
        stored.recordingBytes = record.recordingBytes
        stored.bytesIn = record.bytesIn
        stored.bytesOut = record.bytesOut
        self.state.bastionSessions[record.id] = stored
        return true
    }
}
