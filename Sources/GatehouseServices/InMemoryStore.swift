public import Foundation
public import GatehouseCore
import GatehouseOIDC

/// A ``Store`` held in memory: for tests and for the conformance suite's reference behaviour.
/// Transactions are serialized and work on a copy that replaces the state only on commit.
public final class InMemoryStore: Store {
    struct State: Sendable {
        var meta: [MetaKey: String] = [:]
        var sealedKeys: [KeyPurpose: SealedKeyRecord] = [:]
        var users: [User] = []
        var invitations: [Invitation] = []
        var audit: [AuditRecord] = []
        var checkpoints: [CheckpointRecord] = []
        var policies: [PolicyVersionRecord] = []
        var credentials: [CredentialRecord] = []
        var sessions: [SessionRecord] = []
        var oidcClients: [String: OIDCClient] = [:]
        var oidcKeys: [OIDCSigningKeyRecord] = []
        var oidcGrants: [String: OIDCGrantRecord] = [:]
        var oidcTokens: [String: OIDCTokenRecord] = [:]
        var oidcConsents: [String: String] = [:]
        var deviceAuthorizations: [String: DeviceAuthorizationRecord] = [:]
        var sshCertificates: [SSHCertificateRecord] = []
        var hosts: [String: HostRecord] = [:]
        var pkiAuthorities: [PKIAuthorityRecord] = []
        var pkiCertificates: [String: PKICertificateRecord] = [:]
        var networkDevices: [String: NetworkDeviceRecord] = [:]
        var networkHosts: [String: NetworkHostRecord] = [:]
        var bastionSessions: [String: BastionSessionRecord] = [:]
        /// Test hook: when set, appending audit events fails, as a full disk would.
        var failAuditAppends = false
    }

    private let gate = AsyncGate()
    private let box = LockedBox(State())

    public init() {}

    public var kind: String { "memory" }

    let generation = LockedBox<UInt64>(0)
    public var writeGeneration: UInt64? { self.generation.value }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try await self.gate.withExclusiveAccess {
            try await body(InMemoryTransaction(state: self.box.value))
        }
    }

    public func commit<T: Sendable>(_ body: @escaping @Sendable (any StoreWriter) async throws -> Change<T>) async throws -> T {
        try await self.gate.withExclusiveAccess {
            let tx = InMemoryTransaction(state: self.box.value)
            let change = try await body(tx)
            var state = tx.state
            guard !state.failAuditAppends else {
                throw GatehouseError(.storeFailure, "the audit log cannot be written; the change was not made")
            }
            for event in change.events {
                state.audit.append(AuditRecord(sequence: Int64(state.audit.count + 1), event: event))
            }
            self.box.value = state
            self.generation.mutate { $0 &+= 1 }
            return change.value
        }
    }

    public func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool {
        try await self.gate.withExclusiveAccess {
            self.box.mutate { state in
                guard !state.checkpoints.contains(where: { $0.size == checkpoint.size }) else { return false }
                state.checkpoints.append(checkpoint)
                state.checkpoints.sort { $0.size < $1.size }
                return true
            }
        }
    }

    public func recordSessionActivity(tokenHash: String, at time: Date) async throws {
        try await self.gate.withExclusiveAccess {
            self.box.mutate { state in
                if let i = state.sessions.firstIndex(where: { $0.tokenHash == tokenHash }) {
                    state.sessions[i].lastSeenAt = max(state.sessions[i].lastSeenAt, time)
                }
            }
        }
    }

    public func recordBastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String> {
        try await self.gate.withExclusiveAccess {
            self.box.mutate { state in
                var open: Set<String> = []
                for id in ids where state.bastionSessions[id]?.replica == replica && state.bastionSessions[id]?.endedAt == nil {
                    state.bastionSessions[id]?.heartbeatAt = time
                    open.insert(id)
                }
                return open
            }
        }
    }

    public func recordDevicePoll(deviceCodeHash: String, at time: Date, interval: Int) async throws {
        try await self.gate.withExclusiveAccess {
            self.box.mutate { state in
                state.deviceAuthorizations[deviceCodeHash]?.lastPolledAt = time
                state.deviceAuthorizations[deviceCodeHash]?.interval = interval
            }
        }
    }

    public func ping() async throws {}

    public func close() async throws {}

    /// Makes every later commit fail at the audit append, for fail-closed tests.
    public func simulateAuditFailure(_ failing: Bool) {
        self.box.mutate { $0.failAuditAppends = failing }
    }
}

/// A transaction over a private copy of the state.
final class InMemoryTransaction: StoreWriter, @unchecked Sendable {
    // @unchecked: one transaction is used by one task at a time, inside the store's gate.
    var state: InMemoryStore.State

    init(state: InMemoryStore.State) { self.state = state }

    func metaValue(_ key: MetaKey) async throws -> String? { self.state.meta[key] }

    func sealedKeys() async throws -> [SealedKeyRecord] {
        KeyPurpose.allCases.compactMap { self.state.sealedKeys[$0] }
    }

    func user(named username: Username) async throws -> User? {
        self.state.users.first { $0.username == username }
    }

    func countActiveUsers(role: RoleName) async throws -> Int {
        self.state.users.count { $0.role == role && $0.status == .active }
    }

    func countUsers() async throws -> Int { self.state.users.count }

    func invitation(id: String) async throws -> Invitation? {
        self.state.invitations.first { $0.id == id }
    }

    func pendingInvitation(for username: Username) async throws -> Invitation? {
        self.state.invitations.first { $0.username == username && $0.state == .pending }
    }

    func invitations(state: Invitation.State?) async throws -> [Invitation] {
        self.state.invitations.filter { state == nil || $0.state == state }
    }

    func auditRecords(after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        Array(self.state.audit.filter { $0.sequence > sequence }.prefix(max(0, limit)))
    }

    func latestAuditSequence() async throws -> Int64 { self.state.audit.last?.sequence ?? 0 }

    func checkpoints() async throws -> [CheckpointRecord] { self.state.checkpoints }

    func policyVersion(_ version: Int64?) async throws -> PolicyVersionRecord? {
        guard let version else { return self.state.policies.last }
        return self.state.policies.first { $0.info.version == version }
    }

    func policyHistory(limit: Int) async throws -> [PolicyVersionInfo] {
        Array(self.state.policies.reversed().prefix(max(0, limit)).map(\.info))
    }

    func user(id: String) async throws -> User? { self.state.users.first { $0.id == id } }

    func invitation(tokenHash: String) async throws -> Invitation? { self.state.invitations.first { $0.tokenHash == tokenHash } }

    func credential(id: [UInt8]) async throws -> CredentialRecord? { self.state.credentials.first { $0.id == id } }

    func credentials(userID: String) async throws -> [CredentialRecord] { self.state.credentials.filter { $0.userID == userID } }

    func session(tokenHash: String) async throws -> SessionRecord? { self.state.sessions.first { $0.tokenHash == tokenHash } }

    func sessions(userID: String) async throws -> [SessionRecord] {
        self.state.sessions.filter { $0.userID == userID }.sorted { $0.createdAt > $1.createdAt }
    }

    func revokeSession(tokenHash: String, at time: Date) async throws -> Bool {
        guard let i = self.state.sessions.firstIndex(where: { $0.tokenHash == tokenHash && $0.revokedAt == nil }) else { return false }
        self.state.sessions[i].revokedAt = time
        return true
    }

    func revokeSessions(userID: String, at time: Date) async throws -> Int {
        var count = 0
        for i in self.state.sessions.indices where self.state.sessions[i].userID == userID && self.state.sessions[i].revokedAt == nil {
            self.state.sessions[i].revokedAt = time
            count += 1
        }
        return count
    }

    func deleteCredential(id: [UInt8], userID: String) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id && $0.userID == userID }) else { return false }
        self.state.credentials.remove(at: i)
        return true
    }

    func updateUserStatus(id: String, status: User.Status) async throws {
        guard let i = self.state.users.firstIndex(where: { $0.id == id }) else { throw GatehouseError(.notFound, "no such user") }
        self.state.users[i].status = status
    }

    func insertCredential(_ record: CredentialRecord) async throws {
        guard !self.state.credentials.contains(where: { $0.id == record.id }) else {
            throw GatehouseError(.conflict, "this passkey is already registered")
        }
        self.state.credentials.append(record)
    }

    func lockAccountChanges() async throws {}  // transactions here are already serialized

    func updateCredentialUse(id: [UInt8], signCount: UInt32, backedUp: Bool, at time: Date) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id }) else { throw GatehouseError(.notFound, "no such passkey") }
        let stored = self.state.credentials[i].signCount
        guard signCount > stored || (signCount == 0 && stored == 0) else { return false }
        self.state.credentials[i].signCount = signCount
        self.state.credentials[i].backedUp = backedUp
        self.state.credentials[i].lastUsedAt = time
        return true
    }

    func renameCredential(id: [UInt8], userID: String, name: String) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id && $0.userID == userID }) else { return false }
        self.state.credentials[i].name = name
        return true
    }

    func insertSession(_ record: SessionRecord) async throws {
        guard !self.state.sessions.contains(where: { $0.tokenHash == record.tokenHash }) else { throw GatehouseError(.conflict, "session exists") }
        self.state.sessions.append(record)
    }

    func touchSession(tokenHash: String, at time: Date, steppedUp: Bool) async throws {
        guard let i = self.state.sessions.firstIndex(where: { $0.tokenHash == tokenHash }) else { throw GatehouseError(.notFound, "no such session") }
        self.state.sessions[i].lastSeenAt = max(self.state.sessions[i].lastSeenAt, time)
        if steppedUp { self.state.sessions[i].steppedUpAt = time }
    }

    func insertPolicyVersion(_ record: PolicyVersionRecord) async throws {
        guard !self.state.policies.contains(where: { $0.info.version == record.info.version }) else {
            throw GatehouseError(.conflict, "policy version \(record.info.version) already exists")
        }
        self.state.policies.append(record)
        self.state.policies.sort { $0.info.version < $1.info.version }
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

    func insertUser(_ user: User) async throws {
        guard !self.state.users.contains(where: { $0.username == user.username || $0.id == user.id }) else {
            throw GatehouseError(.conflict, "user \(user.username) already exists")
        }
        self.state.users.append(user)
    }

    func insertInvitation(_ invitation: Invitation) async throws {
        guard
            !self.state.invitations.contains(where: {
                $0.id == invitation.id || $0.tokenHash == invitation.tokenHash
                    || ($0.username == invitation.username && $0.state == .pending && invitation.state == .pending)
            })
        else {
            throw GatehouseError(.conflict, "a pending invitation for \(invitation.username) already exists")
        }
        self.state.invitations.append(invitation)
    }

    func finishInvitation(id: String, state: Invitation.State, at time: Date) async throws -> Bool {
        guard let index = self.state.invitations.firstIndex(where: { $0.id == id && $0.state == .pending }) else { return false }
        self.state.invitations[index].state = state
        return true
    }

    // MARK: OpenID Connect

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

    // MARK: SSH certificates

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

    // MARK: hosts

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

    // MARK: X.509 authority

    func networkDevices(userID: String?, liveAt: Date?) async throws -> [NetworkDeviceRecord] {
        self.state.networkDevices.values.filter { d in (userID.map { d.userID == $0 } ?? true) && (liveAt.map { d.isLive(at: $0) } ?? true) }
            .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }
    func networkDevice(id: String) async throws -> NetworkDeviceRecord? { self.state.networkDevices[id] }
    func networkDevice(publicKey key: WireGuardKey) async throws -> NetworkDeviceRecord? {
        self.state.networkDevices.values.first { $0.publicKey == key }
    }
    func maxNetworkDeviceIndex() async throws -> Int64 { self.state.networkDevices.values.map(\.addressIndex).max() ?? 0 }
    func networkHosts() async throws -> [NetworkHostRecord] { self.state.networkHosts.values.sorted { $0.host < $1.host } }

    func insertNetworkDevice(_ record: NetworkDeviceRecord) async throws {
        guard self.state.networkDevices[record.id] == nil,
            !self.state.networkDevices.values.contains(where: { $0.publicKey == record.publicKey || $0.addressIndex == record.addressIndex })
        else {
            throw GatehouseError(.conflict, "that WireGuard key or device address is taken")
        }
        self.state.networkDevices[record.id] = record
    }

    func revokeNetworkDevice(id: String, at time: Date) async throws -> Bool {
        guard let d = self.state.networkDevices[id], d.revokedAt == nil else { return false }
        self.state.networkDevices[id]?.revokedAt = time
        return true
    }

    func revokeNetworkDevices(userID: String, at time: Date) async throws -> Int {
        var n = 0
        for (id, d) in self.state.networkDevices where d.userID == userID && d.revokedAt == nil && d.expiresAt > time {
            self.state.networkDevices[id]?.revokedAt = time
            n += 1
        }
        return n
    }

    func saveNetworkHost(_ record: NetworkHostRecord) async throws {
        guard !self.state.networkHosts.values.contains(where: { $0.publicKey == record.publicKey && $0.host != record.host }) else {
            throw GatehouseError(.conflict, "another host has that WireGuard key")
        }
        self.state.networkHosts[record.host] = record
    }

    func deleteNetworkHost(name: String) async throws -> Bool { self.state.networkHosts.removeValue(forKey: name) != nil }

    // MARK: bastion

    func sshCertificates(keyFingerprint: String) async throws -> [SSHCertificateRecord] {
        self.state.sshCertificates.filter { $0.keyFingerprint == keyFingerprint }.sorted { ($0.createdAt, $0.serial) > ($1.createdAt, $1.serial) }
    }

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

    func pkiAuthorities() async throws -> [PKIAuthorityRecord] { self.state.pkiAuthorities.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }
    func pkiCertificate(serial: String) async throws -> PKICertificateRecord? { self.state.pkiCertificates[serial] }

    func pkiCertificates(liveAt: Date?, limit: Int) async throws -> [PKICertificateRecord] {
        Array(
            self.state.pkiCertificates.values.filter { c in liveAt.map { c.notAfter > $0 } ?? true }.sorted {
                ($0.createdAt, $0.serial) > ($1.createdAt, $1.serial)
            }.prefix(limit))
    }

    func revokedPKICertificates(authorityID: String, at time: Date) async throws -> [PKICertificateRecord] {
        self.state.pkiCertificates.values.filter { $0.authorityID == authorityID && $0.revokedAt != nil && $0.notAfter > time }.sorted {
            $0.serial < $1.serial
        }
    }

    func insertPKIAuthority(_ record: PKIAuthorityRecord) async throws {
        guard !self.state.pkiAuthorities.contains(where: { $0.id == record.id }) else {
            throw GatehouseError(.conflict, "authority \(record.id) exists")
        }
        self.state.pkiAuthorities.append(record)
    }

    func activatePKIAuthority(id: String, rootDER: [UInt8], intermediateDER: [UInt8]) async throws -> Bool {
        guard let i = self.state.pkiAuthorities.firstIndex(where: { $0.id == id && $0.status == .pending }) else { return false }
        self.state.pkiAuthorities[i].status = .active
        self.state.pkiAuthorities[i].rootDER = rootDER
        self.state.pkiAuthorities[i].intermediateDER = intermediateDER
        return true
    }

    func insertPKICertificate(_ record: PKICertificateRecord) async throws {
        guard self.state.pkiCertificates[record.serial] == nil else { throw GatehouseError(.conflict, "serial exists") }
        self.state.pkiCertificates[record.serial] = record
    }

    func revokePKICertificate(serial: String, reason: String, at time: Date) async throws -> Bool {
        guard var c = self.state.pkiCertificates[serial], c.revokedAt == nil else { return false }
        c.revokedAt = time
        c.revocationReason = reason
        self.state.pkiCertificates[serial] = c
        return true
    }

    func revokePKICertificates(userID: String?, requester: String?, reason: String, at time: Date) async throws -> Int {
        var n = 0
        for (serial, c) in self.state.pkiCertificates
        where c.revokedAt == nil && c.notAfter > time
            && ((userID != nil && c.userID == userID) || (requester != nil && c.requester == requester))
        {
            self.state.pkiCertificates[serial]?.revokedAt = time
            self.state.pkiCertificates[serial]?.revocationReason = reason
            n += 1
        }
        return n
    }
}
