import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: applied policy versions (`SQLTransaction+Policy.swift` is the SQL).
extension InMemoryTransaction {
    func policyVersion(_ version: Int64?) async throws -> PolicyVersionRecord? {
        guard let version else { return self.state.policies.last }
        return self.state.policies.first { $0.info.version == version }
    }

    func policyHistory(limit: Int) async throws -> [PolicyVersionInfo] {
        Array(self.state.policies.reversed().prefix(max(0, limit)).map(\.info))
    }

    func insertPolicyVersion(_ record: PolicyVersionRecord) async throws {
        guard !self.state.policies.contains(where: { $0.info.version == record.info.version }) else {
            throw GatehouseError(.conflict, "policy version \(record.info.version) already exists")
        }
        self.state.policies.append(record)
        self.state.policies.sort { $0.info.version < $1.info.version }
    }
}
