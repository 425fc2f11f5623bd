public import Foundation
public import GatehouseCore
public import GatehouseServices

/// A store that forwards to another but can be told its backend is down.
public final class SwitchableStore: Store, @unchecked Sendable {
    // @unchecked: `down` is a LockedBox; `inner` is immutable.
    public let inner: any Store
    public let down = LockedBox(false)

    public init(_ inner: any Store = InMemoryStore()) { self.inner = inner }

    public var kind: String { "switchable" }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try self.check()
        return try await self.inner.read(body)
    }

    public func commit<T: Sendable>(_ body: @escaping @Sendable (any StoreWriter) async throws -> Change<T>) async throws -> T {
        try self.check()
        return try await self.inner.commit(body)
    }

    public func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool {
        try self.check()
        return try await self.inner.recordCheckpoint(checkpoint)
    }

    public func recordSessionActivity(tokenHash: String, at time: Date) async throws {
        try self.check()
        try await self.inner.recordSessionActivity(tokenHash: tokenHash, at: time)
    }

    public func recordDevicePoll(deviceCodeHash: String, at time: Date, interval: Int) async throws {
        try self.check()
        try await self.inner.recordDevicePoll(deviceCodeHash: deviceCodeHash, at: time, interval: interval)
    }

    public func recordBastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String> {
        try self.check()
        return try await self.inner.recordBastionHeartbeat(replica: replica, sessions: ids, at: time)
    }

    public var writeGeneration: UInt64? { self.inner.writeGeneration }

    public func ping() async throws { try self.check() }
    public func close() async throws {}  // the inner store is its owner's to close

    private func check() throws {
        if self.down.value { throw GatehouseError(.storeUnreachable, "store is down") }
    }
}
