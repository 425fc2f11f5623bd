import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SQL behind installation-wide facts and sealed key material.
extension SQLTransaction {
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
}
