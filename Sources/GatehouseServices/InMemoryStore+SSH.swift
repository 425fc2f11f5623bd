import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: SSH certificates and enrolled hosts (`SQLTransaction+SSH.swift` is the SQL).
extension InMemoryTransaction {
    func sshCertificates(userID: String) async throws -> [SSHCertificateRecord] {
        self.state.sshCertificates.filter { $0.userID == userID }.sorted { $0.createdAt > $1.createdAt }
    }

    func revokedSSHCertificates(at time: Date) async throws -> [SSHCertificateRecord] {
        self.state.sshCertificates.filter { $0.revokedAt != nil && $0.validBefore > time }
    }

    func insertSSHCertificate(_ record: SSHCertificateRecord) async throws {
        guard !self.state.sshCertificates.contains(where: { $0.serial == record.serial }) else { throw GatehouseError(.conflict, "serial exists") }
        self.state.sshCertificates.append(record)
    }

    func revokeSSHCertificates(userID: String, at time: Date) async throws -> Int {
        var count = 0
        for i in self.state.sshCertificates.indices
        where self.state.sshCertificates[i].userID == userID && self.state.sshCertificates[i].revokedAt == nil
            && self.state.sshCertificates[i].validBefore > time
        {
            self.state.sshCertificates[i].revokedAt = time
            count += 1
        }
        return count
    }

    func host(named name: String) async throws -> HostRecord? { self.state.hosts[name] }

    func host(joinTokenHash: String) async throws -> HostRecord? { self.state.hosts.values.first { $0.joinTokenHash == joinTokenHash } }

    func host(agentTokenHash: String) async throws -> HostRecord? { self.state.hosts.values.first { $0.agentTokenHash == agentTokenHash } }

    func saveHost(_ record: HostRecord) async throws { self.state.hosts[record.name] = record }

    func claimHostJoin(name: String, joinTokenHash: String, hostKeyFingerprint: String, agentTokenHash: String, at time: Date) async throws -> Bool {
        guard var h = self.state.hosts[name], h.joinTokenHash == joinTokenHash, h.joinedAt == nil, h.joinExpiresAt.map { $0 > time } ?? false else {
            return false
        }
        h.joinTokenHash = nil
        h.joinedAt = time
        h.hostKeyFingerprint = hostKeyFingerprint
        h.agentTokenHash = agentTokenHash
        self.state.hosts[name] = h
        return true
    }

    func sshCertificates(keyFingerprint: String) async throws -> [SSHCertificateRecord] {
        self.state.sshCertificates.filter { $0.keyFingerprint == keyFingerprint }.sorted { ($0.createdAt, $0.serial) > ($1.createdAt, $1.serial) }
    }
}
