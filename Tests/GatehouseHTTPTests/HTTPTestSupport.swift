import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import GatehouseWebAuthn
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A store that forwards to another but can be told its backend is down.
final class SwitchableStore: Store, @unchecked Sendable {
    // @unchecked: `down` is a LockedBox; `inner` is immutable.
    let inner: InMemoryStore
    let down = LockedBox(false)

    init(_ inner: InMemoryStore = InMemoryStore()) { self.inner = inner }

    var kind: String { "switchable" }

    func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try self.check()
        return try await self.inner.read(body)
    }

    func commit<T: Sendable>(_ body: @escaping @Sendable (any StoreWriter) async throws -> Change<T>) async throws -> T {
        try self.check()
        return try await self.inner.commit(body)
    }

    func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool {
        try self.check()
        return try await self.inner.recordCheckpoint(checkpoint)
    }

    func recordSessionActivity(tokenHash: String, at time: Date) async throws {
        try self.check()
        try await self.inner.recordSessionActivity(tokenHash: tokenHash, at: time)
    }

    func recordDevicePoll(deviceCodeHash: String, at time: Date, interval: Int) async throws {
        try self.check()
        try await self.inner.recordDevicePoll(deviceCodeHash: deviceCodeHash, at: time, interval: interval)
    }

    func recordBastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String> {
        try self.check()
        return try await self.inner.recordBastionHeartbeat(replica: replica, sessions: ids, at: time)
    }

    var writeGeneration: UInt64? { self.inner.writeGeneration }

    func ping() async throws { try self.check() }
    func close() async throws {}

    private func check() throws {
        if self.down.value { throw GatehouseError(.storeUnreachable, "store is down") }
    }
}

enum HTTPTestSupport {
    /// Dependencies over `store`, with keys bootstrapped into it (which appends the
    /// `system.initialized` and five `key.generated` events).
    static func dependencies(_ store: any Store = InMemoryStore()) async throws -> HTTPDependencies {
        let environment = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        let keys = try await KeyBootstrap(environment: environment, rootKey: try RootKey(bytes: Array(repeating: 1, count: 32))).loadOrCreate()
        return HTTPDependencies(
            environment: environment, publicURL: try PublicURL(parsing: "http://localhost:8080"), version: "test",
            startedAt: Date(timeIntervalSince1970: 1_800_000_000), auditLog: try await AuditLog(environment: environment, keys: keys),
            policy: PolicyService(environment: environment),
            passkeys: PasskeyService(
                environment: environment, relyingParty: RelyingParty(id: "localhost", name: "Gatehouse", origins: ["http://localhost:8080"]),
                ceremonies: CeremonyStore(time: environment.time, random: environment.random), decoySecret: Array(repeating: 9, count: 32)
            )
        )
    }

    static let bootstrapEvents: Int64 = 7

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func errorCode(_ buffer: ByteBuffer) -> String? {
        if let errors = object(buffer)["errors"] as? [[String: Any]] {
            return (errors.first?["extensions"] as? [String: Any])?["code"] as? String
        }
        return (object(buffer)["error"] as? [String: Any])?["code"] as? String
    }
}
