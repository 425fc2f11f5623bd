import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The SQL behind applied policy versions.
extension SQLTransaction {
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
}
