import Foundation
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SSH certificate inventory (migration 6).
extension SQLTransaction {
    private static let sshColumns = "serial, user_id, kind, key_fingerprint, principals, key_id, valid_after, valid_before, created_at, revoked_at"

    func sshCertificates(userID: String) async throws -> [SSHCertificateRecord] {
        try await self.db.raw("SELECT \(unsafeRaw: Self.sshColumns) FROM ssh_certificates WHERE user_id = \(bind: userID) ORDER BY created_at DESC, serial").all().map(Self.certificate)
    }

    func revokedSSHCertificates(at time: Date) async throws -> [SSHCertificateRecord] {
        try await self.db.raw("""
            SELECT \(unsafeRaw: Self.sshColumns) FROM ssh_certificates WHERE revoked_at IS NOT NULL AND valid_before > \(bind: Self.millis(time)) ORDER BY serial
            """).all().map(Self.certificate)
    }

    private static func certificate(_ row: any SQLRow) throws -> SSHCertificateRecord {
            guard let serial = UInt64(try row.decode(column: "serial", as: String.self)) else { throw GatehouseError(.storeFailure, "stored certificate serial is malformed") }
            let principals = try row.decode(column: "principals", as: String.self)
            return SSHCertificateRecord(
                serial: serial, userID: try row.decode(column: "user_id", as: String.self), kind: try row.decode(column: "kind", as: String.self),
                keyFingerprint: try row.decode(column: "key_fingerprint", as: String.self),
                principals: principals.isEmpty ? [] : principals.split(separator: ",").map(String.init), keyID: try row.decode(column: "key_id", as: String.self),
                validAfter: Self.date(try row.decode(column: "valid_after", as: Int64.self)), validBefore: Self.date(try row.decode(column: "valid_before", as: Int64.self)),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)), revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date)
            )
    }

    func insertSSHCertificate(_ r: SSHCertificateRecord) async throws {
        let rows = try await self.db.raw("""
            INSERT INTO ssh_certificates (\(unsafeRaw: Self.sshColumns))
            VALUES (\(bind: String(r.serial)), \(bind: r.userID), \(bind: r.kind), \(bind: r.keyFingerprint), \(bind: r.principals.joined(separator: ",")), \(bind: r.keyID),
                    \(bind: Self.millis(r.validAfter)), \(bind: Self.millis(r.validBefore)), \(bind: Self.millis(r.createdAt)), \(bind: r.revokedAt.map(Self.millis)))
            ON CONFLICT DO NOTHING RETURNING serial
            """).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "certificate serial \(r.serial) exists") }
    }

    func revokeSSHCertificates(userID: String, at time: Date) async throws -> Int {
        try await self.db.raw("""
            UPDATE ssh_certificates SET revoked_at = \(bind: Self.millis(time))
            WHERE user_id = \(bind: userID) AND revoked_at IS NULL AND valid_before > \(bind: Self.millis(time)) RETURNING serial
            """).all().count
    }
}
