import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: installation-wide facts and sealed key material (`SQLTransaction+Installation.swift` is the SQL).
extension InMemoryTransaction {
    func metaValue(_ key: MetaKey) async throws -> String? { self.state.meta[key] }

    func sealedKeys() async throws -> [SealedKeyRecord] {
        KeyPurpose.allCases.compactMap { self.state.sealedKeys[$0] }
    }

    func insertMetaValueIfAbsent(_ key: MetaKey, _ value: String) async throws -> Bool {
        guard self.state.meta[key] == nil else { return false }
        self.state.meta[key] = value
        return true
    }

    func insertSealedKey(_ record: SealedKeyRecord) async throws {
        guard self.state.sealedKeys[record.purpose] == nil else {
            throw GatehouseError(.conflict, "a \(record.purpose.rawValue) key already exists")
        }
        self.state.sealedKeys[record.purpose] = record
    }
}
