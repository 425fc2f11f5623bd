public import Foundation
public import GatehouseCore

/// The bastion's live sessions in this process, with a way to end each: what `sessions kill`,
/// offboarding and the watchdog reach. Sessions register when their program starts and leave
/// when they end.
public final class BastionSessionRegistry: Sendable {
    public struct Entry: Sendable {
        public let id: String
        public let userID: String
        /// The key the person authenticated with: the session ends when every certificate of that
        /// key is revoked (a session cut, a recovery on another replica), not only at offboarding.
        public let keyFingerprint: String?
        /// Ends the session (on its own event loop) with `reason` shown to the person and recorded.
        public let end: @Sendable (_ reason: String) -> Void

        public init(id: String, userID: String, keyFingerprint: String? = nil, end: @escaping @Sendable (_ reason: String) -> Void) {
            self.id = id
            self.userID = userID
            self.keyFingerprint = keyFingerprint
            self.end = end
        }
    }

    private let entries = LockedBox<[String: Entry]>([:])
    /// This process among the replicas, in its sessions' rows (random, new at every start).
    public let replica: String

    public init(replica: String) { self.replica = replica }

    public func register(_ entry: Entry) { self.entries.mutate { $0[entry.id] = entry } }
    public func unregister(id: String) { self.entries.mutate { _ = $0.removeValue(forKey: id) } }

    public var live: [Entry] { self.entries.mutate { Array($0.values) } }

    /// Seals the store could not take (it was unreachable when the session ended), by session:
    /// retried with every heartbeat, which keeps their rows open meanwhile.
    private let deferred = LockedBox<[String: @Sendable () async throws -> Void]>([:])
    public var deferredSeals: [String] { self.deferred.value.keys.sorted() }
    public func deferSeal(id: String, _ retry: @escaping @Sendable () async throws -> Void) { self.deferred.mutate { $0[id] = retry } }
    /// Takes every deferred seal out (each retry defers itself again if the store is still down).
    public func takeDeferredSeals() -> [(id: String, retry: @Sendable () async throws -> Void)] {
        self.deferred.mutate { d in
            defer { d = [:] }
            return d.map { ($0.key, $0.value) }
        }
    }

    /// Sessions that have ended here but whose recording is still being synced and recorded as
    /// sealed: a graceful stop waits for them too.
    private let sealingCount = LockedBox(0)
    public var sealing: Int { self.sealingCount.value }
    public func beginSealing() { self.sealingCount.mutate { $0 += 1 } }
    public func endSealing() { self.sealingCount.mutate { $0 -= 1 } }

    public func isLive(id: String) -> Bool { self.entries.mutate { $0[id] != nil } }

    /// Entries for whole connections (`connection:ID`), so that offboarding and the periodic
    /// check also end connections that carry only port forwardings; they are not sessions.
    public static let connectionPrefix = "connection:"

    /// Ends one session; false when it is not live here.
    @discardableResult
    public func end(id: String, reason: String) -> Bool {
        guard let entry = self.entries.mutate({ $0[id] }) else { return false }
        entry.end(reason)
        return true
    }

    /// Ends every live session and connection of a person; returns how many sessions.
    @discardableResult
    public func end(userID: String, reason: String) -> Int {
        let matching = self.entries.mutate { $0.values.filter { $0.userID == userID } }
        for entry in matching { entry.end(reason) }
        return matching.filter { !$0.id.hasPrefix(Self.connectionPrefix) }.count
    }
}

/// Offboarding ends every live bastion session of the person at once (the certificate hook
/// revokes what would let them start another).
public struct BastionOffboardingHook: OffboardingHook {
    let registry: BastionSessionRegistry
    public init(registry: BastionSessionRegistry) { self.registry = registry }
    public var name: String { "ssh_sessions" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        self.registry.end(userID: user.id, reason: "\(user.username) was \(user.status.rawValue)")
    }
}
