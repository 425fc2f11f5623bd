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
}
