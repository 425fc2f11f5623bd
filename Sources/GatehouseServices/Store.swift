public import Foundation
import GatehouseAudit
public import GatehouseCore
public import GatehouseOIDC

/// Gatehouse's state, behind one protocol so that the in-memory, SQLite and PostgreSQL
/// implementations are interchangeable and checked by one conformance suite.
///
/// All access happens inside a transaction. Writes go through ``commit(_:)``, whose body
/// returns a ``Change``: the store appends the change's audit events in the same transaction,
/// so a state change and its audit record are durable together or not at all.
public protocol Store: Sendable {
    /// Which implementation this is (`memory`, `sqlite`, `postgresql`), for status output.
    var kind: String { get }

    /// Runs `body` in a read-only view of a consistent snapshot.
    func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T

    /// Runs `body` in a read-write transaction and commits its value together with its audit
    /// events. If `body` throws, nothing it did is kept.
    func commit<T: Sendable>(_ body: @escaping @Sendable (any StoreWriter) async throws -> Change<T>) async throws -> T

    /// Stores a signed checkpoint of the audit log. The one write without an audit event: a
    /// checkpoint is the log's own signature over its events, not a change of state. A second
    /// checkpoint of the same size (another replica) is not replaced: returns false then.
    func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool

    /// Moves a live session's idle timer forward. Like checkpoints, a write without an audit
    /// event: it records use of an access that was audited when the session opened, and would
    /// otherwise put every page view in the log.
    func recordSessionActivity(tokenHash: String, at time: Date) async throws

    /// Moves the heartbeat of these live bastion sessions of this replica to `time` and returns
    /// those still open in the store. Unaudited like the idle timer: the sessions' start was
    /// audited, and their end will be.
    func recordBastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String>

    /// Records a device-code poll (time and the interval now required). Unaudited for the same
    /// reason: a client asking "approved yet?" every five seconds changes no access.
    func recordDevicePoll(deviceCodeHash: String, at time: Date, interval: Int) async throws

    /// A counter this process moves after every write it makes, when this process is the only
    /// writer (SQLite behind the data dir lock, memory); nil when other processes may write
    /// (PostgreSQL replicas). A value read from the store before reading the counter's current
    /// value again and finding it unchanged is still current, so caches keyed on it are exact.
    var writeGeneration: UInt64? { get }

    /// Fails when the store cannot serve requests (for `/readyz`).
    func ping() async throws

    /// Releases connections. The store is unusable afterwards.
    func close() async throws
}

/// Reads available inside a transaction: one protocol per control, composed. A new read goes
/// in its control's protocol, with its SQL in `SQLTransaction+CONTROL.swift` and its in-memory
/// twin in `InMemoryStore+CONTROL.swift`.
public protocol StoreReader: InstallationReads, IdentityReads, AuditReads, PolicyReads, OIDCReads, SSHReads, PKIReads, NetworkReads, BastionReads {}

/// Writes available inside ``Store/commit(_:)``. Inserts that would duplicate a unique value
/// throw a ``GatehouseError`` with code ``GatehouseError/Code/conflict`` and change nothing.
public protocol StoreWriter: StoreReader, InstallationWrites, IdentityWrites, PolicyWrites, OIDCWrites, SSHWrites, PKIWrites, NetworkWrites,
    BastionWrites
{}

// MARK: Installation

/// Reads of installation-wide facts and sealed key material.
public protocol InstallationReads: Sendable {
    func metaValue(_ key: MetaKey) async throws -> String?
    func sealedKeys() async throws -> [SealedKeyRecord]
}

/// Writes of installation-wide facts and sealed key material.
public protocol InstallationWrites: Sendable {
    /// Sets a value only if the key has none; returns false (and changes nothing) if it had one.
    func insertMetaValueIfAbsent(_ key: MetaKey, _ value: String) async throws -> Bool
    /// Adds a sealed key. Existing key material is never replaced: a second key for the same
    /// purpose is a conflict.
    func insertSealedKey(_ record: SealedKeyRecord) async throws
}

// MARK: Identity

/// Reads of people, invitations, passkeys and sign-in sessions.
public protocol IdentityReads: Sendable {
    func user(named username: Username) async throws -> User?
    func countActiveUsers(role: RoleName) async throws -> Int
    func countUsers() async throws -> Int
    func invitation(id: String) async throws -> Invitation?
    func pendingInvitation(for username: Username) async throws -> Invitation?
    func invitations(state: Invitation.State?) async throws -> [Invitation]
    func user(id: String) async throws -> User?
    /// The invitation whose token hashes to `tokenHash`, in any state.
    func invitation(tokenHash: String) async throws -> Invitation?
    func credential(id: [UInt8]) async throws -> CredentialRecord?
    /// A user's passkeys, oldest first.
    func credentials(userID: String) async throws -> [CredentialRecord]
    func session(tokenHash: String) async throws -> SessionRecord?
    /// A user's sessions, newest first, live or not.
    func sessions(userID: String) async throws -> [SessionRecord]
}

/// Writes of people, invitations, passkeys and sign-in sessions.
public protocol IdentityWrites: Sendable {
    func insertUser(_ user: User) async throws
    func insertInvitation(_ invitation: Invitation) async throws
    /// Moves an invitation out of `pending`. Returns false if it was not pending.
    func finishInvitation(id: String, state: Invitation.State, at time: Date) async throws -> Bool
    /// Adds a passkey. A credential ID that exists (for anyone) is a conflict.
    func insertCredential(_ record: CredentialRecord) async throws
    /// Records a successful assertion: the new counter, backup state and time, but only if the
    /// counter moves forward (or stays 0 for authenticators that keep none). False otherwise:
    /// another sign-in got there first with a count at least as high, a possible clone.
    func updateCredentialUse(id: [UInt8], signCount: UInt32, backedUp: Bool, at time: Date) async throws -> Bool
    /// Names one of `userID`'s passkeys; false when they have no such passkey.
    func renameCredential(id: [UInt8], userID: String, name: String) async throws -> Bool
    /// Serializes account changes (sign-in, enrollment, recovery, passkey changes, offboarding)
    /// until the transaction ends, so checks made inside it stay true until it commits.
    func lockAccountChanges() async throws
    func insertSession(_ record: SessionRecord) async throws
    /// Moves `lastSeenAt` forward (and `steppedUpAt` when given).
    func touchSession(tokenHash: String, at time: Date, steppedUp: Bool) async throws
    /// Ends one session; false if it was already ended or does not exist.
    func revokeSession(tokenHash: String, at time: Date) async throws -> Bool
    /// Ends every live session of a user; returns how many.
    func revokeSessions(userID: String, at time: Date) async throws -> Int
    func updateUserStatus(id: String, status: User.Status) async throws
    /// Removes one of a user's passkeys; false if the user has no such passkey.
    func deleteCredential(id: [UInt8], userID: String) async throws -> Bool
}

// MARK: Audit

/// Reads of the audit log and its checkpoints.
public protocol AuditReads: Sendable {
    /// Audit records with sequence numbers greater than `sequence`, oldest first, at most `limit`.
    func auditRecords(after sequence: Int64, limit: Int) async throws -> [AuditRecord]
    /// The highest audit sequence number, 0 when the log is empty.
    func latestAuditSequence() async throws -> Int64
    /// Published checkpoints, smallest first.
    func checkpoints() async throws -> [CheckpointRecord]
}

// MARK: Policy

/// Reads of applied policy versions.
public protocol PolicyReads: Sendable {
    /// One applied policy version with its text, or the latest when `version` is nil.
    func policyVersion(_ version: Int64?) async throws -> PolicyVersionRecord?
    /// Applied policy versions without their text, newest first, at most `limit`.
    func policyHistory(limit: Int) async throws -> [PolicyVersionInfo]
}

/// Writes of applied policy versions.
public protocol PolicyWrites: Sendable {
    /// Records an applied policy version. A version number that exists already is a conflict
    /// (two applies raced); versions are never replaced.
    func insertPolicyVersion(_ record: PolicyVersionRecord) async throws
}

// MARK: OIDC

/// Reads of the OpenID Connect provider: clients, signing keys, grants, tokens, consent, device codes.
public protocol OIDCReads: Sendable {
    func oidcClient(id: String) async throws -> OIDCClient?
    /// Registered clients, by id.
    func oidcClients() async throws -> [OIDCClient]
    /// Token-signing keys, oldest first, retired or not.
    func oidcSigningKeys() async throws -> [OIDCSigningKeyRecord]
    func oidcGrant(id: String) async throws -> OIDCGrantRecord?
    /// The token with this hash, its grant and the grant's user, in one read.
    func oidcToken(hash: String) async throws -> OIDCTokenView?
    /// The scopes the user has approved for a third-party client (space-separated), if any.
    func oidcConsent(userID: String, clientID: String) async throws -> String?
    func deviceAuthorization(deviceCodeHash: String) async throws -> DeviceAuthorizationRecord?
    func deviceAuthorization(userCode: String) async throws -> DeviceAuthorizationRecord?
}

/// Writes of the OpenID Connect provider: clients, signing keys, grants, tokens, consent, device codes.
public protocol OIDCWrites: Sendable {
    /// Registers a client; an id that exists is a conflict.
    func insertOIDCClient(_ client: OIDCClient) async throws
    /// Removes a client; false if there was none.
    func deleteOIDCClient(id: String) async throws -> Bool
    /// Adds a signing key; a kid that exists is a conflict.
    func insertOIDCSigningKey(_ record: OIDCSigningKeyRecord) async throws
    /// Schedules the retirement of every key other than `keeping` that has none yet.
    func retireOIDCSigningKeys(keeping kid: String, at time: Date) async throws
    func insertOIDCGrant(_ record: OIDCGrantRecord) async throws
    /// Revokes one grant (and so its tokens); false if it was already revoked.
    func revokeOIDCGrant(id: String, reason: String, at time: Date) async throws -> Bool
    /// Revokes every live grant of a user; returns how many.
    func revokeOIDCGrants(userID: String, reason: String, at time: Date) async throws -> Int
    /// Revokes every live grant opened from a sign-in session; returns how many it revoked and
    /// the ids of every grant of that session, revoked before or now.
    func revokeOIDCGrants(sessionHash: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String])
    /// Revokes every live SSH certificate, X.509 certificate and WireGuard device issued under
    /// one of these grants.
    func revokeIssued(grantIDs: [String], at time: Date) async throws -> IssuedUnderGrants
    /// Revokes every live grant of a client; returns how many it revoked and the ids of every
    /// grant the client ever held.
    func revokeOIDCGrants(clientID: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String])
    func insertOIDCToken(_ record: OIDCTokenRecord) async throws
    /// Inserts several tokens at once (an access and a refresh token): one statement.
    func insertOIDCTokens(_ records: [OIDCTokenRecord]) async throws
    /// Marks a single-use token used. False if it was used already (or does not exist): the
    /// caller treats that as replay.
    func consumeOIDCToken(hash: String, at time: Date) async throws -> Bool
    /// Revokes one token; false if it was already revoked or does not exist.
    func revokeOIDCToken(hash: String, at time: Date) async throws -> Bool
    /// Records (or widens) the scopes a user approved for a client.
    func saveOIDCConsent(userID: String, clientID: String, scope: String, at time: Date) async throws
    func insertDeviceAuthorization(_ record: DeviceAuthorizationRecord) async throws
    /// Replaces a device authorization's mutable fields (status, poll time, interval, grant).
    func updateDeviceAuthorization(_ record: DeviceAuthorizationRecord) async throws
    /// Moves an approved device authorization to `used`; false if it was not approved (already
    /// redeemed: the caller treats that as replay). Atomic, so two polls cannot both redeem it.
    func consumeDeviceAuthorization(deviceCodeHash: String) async throws -> Bool
}

// MARK: SSH

/// Reads of SSH certificates and enrolled hosts.
public protocol SSHReads: Sendable {
    /// A user's certificates, newest first, revoked or not.
    func sshCertificates(userID: String) async throws -> [SSHCertificateRecord]
    /// Revoked certificates that have not expired at `time` (what a revocation list must name).
    func revokedSSHCertificates(at time: Date) async throws -> [SSHCertificateRecord]
    func host(named name: String) async throws -> HostRecord?
    func host(joinTokenHash: String) async throws -> HostRecord?
    func host(agentTokenHash: String) async throws -> HostRecord?
    /// Certificates issued for the key with this fingerprint (`SHA256:...`), newest first.
    func sshCertificates(keyFingerprint: String) async throws -> [SSHCertificateRecord]
}

/// Writes of SSH certificates and enrolled hosts.
public protocol SSHWrites: Sendable {
    /// Records an issued certificate; a serial that exists is a conflict.
    func insertSSHCertificate(_ record: SSHCertificateRecord) async throws
    /// Revokes every unrevoked certificate of a user that has not expired; returns how many.
    func revokeSSHCertificates(userID: String, at time: Date) async throws -> Int
    /// Adds a host, or replaces a host's record (a new join token).
    func saveHost(_ record: HostRecord) async throws
    /// Spends a join token in one conditional update: true only for the one caller that finds it
    /// unused and unexpired (two racing joins cannot both succeed).
    func claimHostJoin(name: String, joinTokenHash: String, hostKeyFingerprint: String, agentTokenHash: String, at time: Date) async throws -> Bool
}

// MARK: PKI

/// Reads of the X.509 authority and its certificates.
public protocol PKIReads: Sendable {
    /// Authority records, newest first.
    func pkiAuthorities() async throws -> [PKIAuthorityRecord]
    func pkiCertificate(serial: String) async throws -> PKICertificateRecord?
    /// Issued certificates, newest first, at most `limit`; only unexpired ones at `liveAt` when given.
    func pkiCertificates(liveAt: Date?, limit: Int) async throws -> [PKICertificateRecord]
    /// Revoked certificates of one authority that have not expired at `time` (what its CRL must name).
    func revokedPKICertificates(authorityID: String, at time: Date) async throws -> [PKICertificateRecord]
}

/// Writes of the X.509 authority and its certificates.
public protocol PKIWrites: Sendable {
    func insertPKIAuthority(_ record: PKIAuthorityRecord) async throws
    /// Turns a pending authority active with its certificates; false if it was not pending.
    func activatePKIAuthority(id: String, rootDER: [UInt8], intermediateDER: [UInt8]) async throws -> Bool
    /// Records an issued certificate; a serial that exists is a conflict.
    func insertPKICertificate(_ record: PKICertificateRecord) async throws
    /// Revokes one certificate; false if it was revoked already or does not exist.
    func revokePKICertificate(serial: String, reason: String, at time: Date) async throws -> Bool
    /// Revokes every unexpired, unrevoked certificate of a user (`userID`) or of a requester
    /// (`requester`, e.g. `host:web-1`); returns how many.
    func revokePKICertificates(userID: String?, requester: String?, reason: String, at time: Date) async throws -> Int
}

// MARK: Network

/// Reads of the private network: devices and host registrations.
public protocol NetworkReads: Sendable {
    /// Devices, newest first: one person's (`userID`) or everyone's; only live ones at `liveAt`.
    func networkDevices(userID: String?, liveAt: Date?) async throws -> [NetworkDeviceRecord]
    func networkDevice(id: String) async throws -> NetworkDeviceRecord?
    /// The device ever registered with `key` (keys are never registered twice), if any.
    func networkDevice(publicKey key: WireGuardKey) async throws -> NetworkDeviceRecord?
    /// The highest device number ever handed out (0 for none).
    func maxNetworkDeviceIndex() async throws -> Int64
    func networkHosts() async throws -> [NetworkHostRecord]
}

/// Writes of the private network: devices and host registrations.
public protocol NetworkWrites: Sendable {
    /// Fails with `.conflict` if the key or the device number is taken.
    func insertNetworkDevice(_ record: NetworkDeviceRecord) async throws
    func revokeNetworkDevice(id: String, at time: Date) async throws -> Bool
    func revokeNetworkDevices(userID: String, at time: Date) async throws -> Int
    /// Inserts or replaces the host's registration; `.conflict` if another host has the key.
    func saveNetworkHost(_ record: NetworkHostRecord) async throws
    func deleteNetworkHost(name: String) async throws -> Bool
}

// MARK: Bastion

/// Reads of the SSH bastion's sessions.
public protocol BastionReads: Sendable {
    /// Bastion sessions, newest first: one person's (`userID`) or everyone's, only those not
    /// ended when `liveOnly`, at most `limit`.
    func bastionSessions(userID: String?, liveOnly: Bool, limit: Int) async throws -> [BastionSessionRecord]
    func bastionSession(id: String) async throws -> BastionSessionRecord?
    /// Live sessions of other replicas (and, with `includeUnowned`, of none recorded: rows from
    /// before heartbeats) whose last heartbeat, or start when none, is before `cutoff` (any,
    /// when nil), oldest first.
    func staleBastionSessions(otherThan replica: String, heartbeatBefore cutoff: Date?, includeUnowned: Bool, limit: Int) async throws
        -> [BastionSessionRecord]
}

/// Writes of the SSH bastion's sessions.
public protocol BastionWrites: Sendable {
    /// Fails with `.conflict` if the id exists.
    func insertBastionSession(_ record: BastionSessionRecord) async throws
    /// Records how a session ended (its `ended*`, exit, byte and recording fields); false if it
    /// had ended already or does not exist.
    func finishBastionSession(_ record: BastionSessionRecord) async throws -> Bool
    /// Closes a session found stale, only if its heartbeat is still the one read and it is
    /// still open; false otherwise.
    func finishStaleBastionSession(_ record: BastionSessionRecord) async throws -> Bool
    /// Fills in the recording digest of a session closed as interrupted without one; false when
    /// it was not closed that way or already has a digest.
    func sealInterruptedBastionSession(id: String, sha256: String, bytes: Int64) async throws -> Bool
}

/// Keys of the small key/value table for installation-wide facts. Raw values are stored.
public enum MetaKey: String, Sendable, CaseIterable {
    /// ``RootKey/checkValue`` of the root key the sealed keys were made under.
    case rootKeyCheck = "root_key_check"
    /// A random identifier of this installation, set once.
    case installationID = "installation_id"
}

/// A sealed private key as stored: purpose, algorithm, public key in clear, private key sealed.
public struct SealedKeyRecord: Sendable, Equatable {
    public var purpose: KeyPurpose
    public var algorithm: KeyAlgorithm
    public var publicKey: [UInt8]
    public var sealedPrivateKey: [UInt8]
    public var createdAt: Date

    public init(purpose: KeyPurpose, algorithm: KeyAlgorithm, publicKey: [UInt8], sealedPrivateKey: [UInt8], createdAt: Date) {
        self.purpose = purpose
        self.algorithm = algorithm
        self.publicKey = publicKey
        self.sealedPrivateKey = sealedPrivateKey
        self.createdAt = createdAt
    }
}

/// An audit event as stored, with the sequence number the store assigned and the Merkle leaf
/// hash of its canonical encoding, recorded when it was appended.
public struct AuditRecord: Sendable, Equatable {
    public var sequence: Int64
    public var event: AuditEvent
    public var entryHash: [UInt8]

    public init(sequence: Int64, event: AuditEvent, entryHash: [UInt8]) {
        self.sequence = sequence
        self.event = event
        self.entryHash = entryHash
    }

    /// Makes the record for `event` at `sequence`, hashing its canonical encoding.
    public init(sequence: Int64, event: AuditEvent) {
        self.init(sequence: sequence, event: event, entryHash: Merkle.leafHash(CanonicalEntry.encode(sequence: sequence, event: event)))
    }
}

/// A published checkpoint as stored: its size and root, and the signed note itself.
public struct CheckpointRecord: Sendable, Equatable {
    public var size: Int64
    public var root: [UInt8]
    public var createdAt: Date
    public var note: String

    public init(size: Int64, root: [UInt8], createdAt: Date, note: String) {
        self.size = size
        self.root = root
        self.createdAt = createdAt
        self.note = note
    }
}
