import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: the OpenID Connect provider: clients, signing keys, grants, tokens, consent, device codes (`SQLTransaction+OIDC.swift` is the SQL).
extension InMemoryTransaction {
    func oidcClient(id: String) async throws -> OIDCClient? { self.state.oidcClients[id] }

    func oidcClients() async throws -> [OIDCClient] { self.state.oidcClients.values.sorted { $0.id < $1.id } }

    func oidcSigningKeys() async throws -> [OIDCSigningKeyRecord] { self.state.oidcKeys }

    func oidcGrant(id: String) async throws -> OIDCGrantRecord? { self.state.oidcGrants[id] }

    func oidcToken(hash: String) async throws -> OIDCTokenView? {
        guard let token = self.state.oidcTokens[hash], let grant = self.state.oidcGrants[token.grantID],
            let user = self.state.users.first(where: { $0.id == grant.userID })
        else { return nil }
        return OIDCTokenView(token: token, grant: grant, user: user)
    }

    func oidcConsent(userID: String, clientID: String) async throws -> String? { self.state.oidcConsents["\(userID) \(clientID)"] }

    func deviceAuthorization(deviceCodeHash: String) async throws -> DeviceAuthorizationRecord? { self.state.deviceAuthorizations[deviceCodeHash] }

    func deviceAuthorization(userCode: String) async throws -> DeviceAuthorizationRecord? {
        self.state.deviceAuthorizations.values.first { $0.userCode == userCode }
    }

    func insertOIDCClient(_ client: OIDCClient) async throws {
        guard self.state.oidcClients[client.id] == nil else { throw GatehouseError(.conflict, "client \(client.id) already exists") }
        self.state.oidcClients[client.id] = client
    }

    func deleteOIDCClient(id: String) async throws -> Bool { self.state.oidcClients.removeValue(forKey: id) != nil }

    func insertOIDCSigningKey(_ record: OIDCSigningKeyRecord) async throws {
        guard !self.state.oidcKeys.contains(where: { $0.kid == record.kid }) else {
            throw GatehouseError(.conflict, "signing key \(record.kid) already exists")
        }
        self.state.oidcKeys.append(record)
    }

    func retireOIDCSigningKeys(keeping kid: String, at time: Date) async throws {
        for i in self.state.oidcKeys.indices where self.state.oidcKeys[i].kid != kid && self.state.oidcKeys[i].retireAt == nil {
            self.state.oidcKeys[i].retireAt = time
        }
    }

    func insertOIDCGrant(_ record: OIDCGrantRecord) async throws {
        guard self.state.oidcGrants[record.id] == nil else { throw GatehouseError(.conflict, "grant exists") }
        self.state.oidcGrants[record.id] = record
    }

    private func revokeGrants(reason: String, at time: Date, where match: (OIDCGrantRecord) -> Bool) -> Int {
        var count = 0
        for (id, grant) in self.state.oidcGrants where grant.revokedAt == nil && match(grant) {
            self.state.oidcGrants[id]?.revokedAt = time
            self.state.oidcGrants[id]?.revokedReason = reason
            count += 1
        }
        return count
    }

    func revokeOIDCGrant(id: String, reason: String, at time: Date) async throws -> Bool {
        self.revokeGrants(reason: reason, at: time) { $0.id == id } == 1
    }

    func revokeOIDCGrants(userID: String, reason: String, at time: Date) async throws -> Int {
        self.revokeGrants(reason: reason, at: time) { $0.userID == userID }
    }

    func revokeOIDCGrants(sessionHash: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String]) {
        let revoked = self.revokeGrants(reason: reason, at: time) { $0.sessionHash == sessionHash }
        return (revoked, self.state.oidcGrants.values.filter { $0.sessionHash == sessionHash }.map(\.id).sorted())
    }

    func revokeIssued(grantIDs: [String], at time: Date) async throws -> IssuedUnderGrants {
        let ids = Set(grantIDs)
        var out = IssuedUnderGrants()
        for i in self.state.sshCertificates.indices {
            let c = self.state.sshCertificates[i]
            guard let g = c.grantID, ids.contains(g), c.revokedAt == nil, c.validBefore > time else { continue }
            self.state.sshCertificates[i].revokedAt = time
            out.sshCertificates += 1
        }
        for (serial, c) in self.state.pkiCertificates {
            guard let g = c.grantID, ids.contains(g), c.revokedAt == nil, c.notAfter > time else { continue }
            self.state.pkiCertificates[serial]?.revokedAt = time
            self.state.pkiCertificates[serial]?.revocationReason = "session_revoked"
            out.x509Certificates += 1
        }
        for (id, d) in self.state.networkDevices {
            guard let g = d.grantID, ids.contains(g), d.revokedAt == nil, d.expiresAt > time else { continue }
            self.state.networkDevices[id]?.revokedAt = time
            out.networkDevices += 1
        }
        return out
    }

    func revokeOIDCGrants(clientID: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String]) {
        let revoked = self.revokeGrants(reason: reason, at: time) { $0.clientID == clientID }
        return (revoked, self.state.oidcGrants.values.filter { $0.clientID == clientID }.map(\.id).sorted())
    }

    func insertOIDCToken(_ record: OIDCTokenRecord) async throws {
        guard self.state.oidcTokens[record.hash] == nil else { throw GatehouseError(.conflict, "token exists") }
        self.state.oidcTokens[record.hash] = record
    }

    func insertOIDCTokens(_ records: [OIDCTokenRecord]) async throws {
        for record in records { try await self.insertOIDCToken(record) }
    }

    func consumeOIDCToken(hash: String, at time: Date) async throws -> Bool {
        guard let t = self.state.oidcTokens[hash], t.usedAt == nil else { return false }
        self.state.oidcTokens[hash]?.usedAt = time
        return true
    }

    func revokeOIDCToken(hash: String, at time: Date) async throws -> Bool {
        guard let t = self.state.oidcTokens[hash], t.revokedAt == nil else { return false }
        self.state.oidcTokens[hash]?.revokedAt = time
        return true
    }

    func saveOIDCConsent(userID: String, clientID: String, scope: String, at time: Date) async throws {
        self.state.oidcConsents["\(userID) \(clientID)"] = scope
    }

    func insertDeviceAuthorization(_ record: DeviceAuthorizationRecord) async throws {
        guard self.state.deviceAuthorizations[record.deviceCodeHash] == nil,
            !self.state.deviceAuthorizations.values.contains(where: { $0.userCode == record.userCode })
        else {
            throw GatehouseError(.conflict, "device code exists")
        }
        self.state.deviceAuthorizations[record.deviceCodeHash] = record
    }

    func consumeDeviceAuthorization(deviceCodeHash: String) async throws -> Bool {
        guard self.state.deviceAuthorizations[deviceCodeHash]?.status == .approved else { return false }
        self.state.deviceAuthorizations[deviceCodeHash]?.status = .used
        return true
    }

    func updateDeviceAuthorization(_ record: DeviceAuthorizationRecord) async throws {
        guard self.state.deviceAuthorizations[record.deviceCodeHash] != nil else { throw GatehouseError(.notFound, "no such device authorization") }
        self.state.deviceAuthorizations[record.deviceCodeHash] = record
    }
}
