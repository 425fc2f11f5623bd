public import Foundation
public import GatehouseCore

/// Pending WebAuthn ceremonies, in memory: each challenge is random (256 bits), works once
/// (taking it removes it, whether verification then succeeds or not) and expires after five
/// minutes.
///
/// The table is bounded, and so is each owner's share of it: an owner is the network a request
/// came from (an IPv4 address or an IPv6 /64) for ceremonies before sign-in, or the account for
/// a signed-in user's. An owner past its share loses its own oldest ceremony; a full table loses
/// the oldest ceremony of the owner holding the most. So a flood from many networks costs the
/// flooders their own ceremonies, and a person from a fresh address still signs in: nobody is
/// refused because others hold the table.
///
/// Held per process: behind several replicas, a ceremony must finish on the replica that began
/// it (route `/api/webauthn/*` with session affinity).
public final class CeremonyStore: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Enrollment from an invitation, for a user id chosen when it began.
        case registration(invitationID: String, userID: String)
        /// Sign-in; `userID` when the user named themselves, nil for a discoverable credential.
        case authentication(userID: String?)
        /// A signed-in user adding another passkey, from the session `sessionHash`.
        case addPasskey(userID: String, sessionHash: String)
        /// A signed-in user proving presence again (step-up) for the session `sessionHash`.
        case stepUp(userID: String, sessionHash: String)
    }

    public struct Pending: Sendable, Equatable {
        public let kind: Kind
        public let challenge: [UInt8]
        public let expiresAt: Date
        /// Whose share it counts against (a network or an account).
        public let owner: String
    }

    struct Table {
        var entries: [String: Pending] = [:]
        /// Each owner's ceremony ids, oldest first.
        var byOwner: [String: [String]] = [:]

        mutating func remove(_ id: String) -> Pending? {
            guard let entry = self.entries.removeValue(forKey: id) else { return nil }
            if var ids = self.byOwner[entry.owner], let i = ids.firstIndex(of: id) {
                ids.remove(at: i)
                self.byOwner[entry.owner] = ids.isEmpty ? nil : ids
            }
            return entry
        }

        mutating func dropExpired(at now: Date) {
            for (id, entry) in self.entries where entry.expiresAt <= now { _ = self.remove(id) }
        }

        /// Removes the oldest ceremony of the owner holding the most; among owners holding as
        /// many, the one whose oldest ceremony is oldest (never an order an attacker could pick
        /// by choosing addresses).
        mutating func evictFromHeaviest() {
            var chosen: (id: String, count: Int, expires: Date)? = nil
            for (_, ids) in self.byOwner {
                guard let first = ids.first, let entry = self.entries[first] else { continue }
                if chosen == nil || ids.count > chosen!.count || (ids.count == chosen!.count && entry.expiresAt < chosen!.expires) {
                    chosen = (first, ids.count, entry.expiresAt)
                }
            }
            if let chosen { _ = self.remove(chosen.id) }
        }
    }

    public static let lifetime: TimeInterval = 300
    /// Pending ceremonies one network or one account may hold (a person needs one or two).
    public static let defaultShare = 32
    public let capacity: Int
    public let share: Int
    let time: any TimeSource
    let random: any RandomSource
    let table = LockedBox(Table())

    public init(time: any TimeSource, random: any RandomSource, capacity: Int = 10_000, share: Int = CeremonyStore.defaultShare) {
        self.time = time
        self.random = random
        self.capacity = max(1, capacity)
        self.share = max(1, min(share, capacity))
    }

    /// Starts a ceremony for `owner` (``networkOwner(_:)`` or ``accountOwner(_:)``); returns its
    /// id and challenge. Never refused: room is made from the owner's own share, or from the
    /// heaviest owner's when the table is full.
    public func begin(_ kind: Kind, owner: String) -> (id: String, challenge: [UInt8]) {
        let now = self.time.now()
        let id = Base64URL.encode(self.random.bytes(16))
        let challenge = self.random.bytes(32)
        self.table.mutate { table in
            if let mine = table.byOwner[owner], mine.count >= self.share {
                for old in mine.prefix(mine.count - self.share + 1) { _ = table.remove(old) }
            }
            if table.entries.count >= self.capacity { table.dropExpired(at: now) }
            while table.entries.count >= self.capacity { table.evictFromHeaviest() }
            table.entries[id] = Pending(kind: kind, challenge: challenge, expiresAt: now.addingTimeInterval(Self.lifetime), owner: owner)
            table.byOwner[owner, default: []].append(id)
        }
        return (id, challenge)
    }

    /// Takes a ceremony out: it cannot be used again. Nil if unknown or expired.
    public func take(_ id: String) -> Pending? {
        let now = self.time.now()
        guard let entry = self.table.mutate({ $0.remove(id) }), entry.expiresAt > now else { return nil }
        return entry
    }

    public var count: Int { self.table.value.entries.count }

    /// The share key of a request from `address` before sign-in: its IPv4 address or IPv6 /64
    /// (`unknown` when the address is not known, one share for all such requests).
    public static func networkOwner(_ address: String?) -> String {
        guard let address else { return "net:unknown" }
        return "net:" + RateLimiter.sourceKey(address)
    }

    /// The share key of a signed-in user's ceremonies.
    public static func accountOwner(_ userID: String) -> String { "user:" + userID }
}
