public import Foundation
public import GatehouseCore

/// Pending WebAuthn ceremonies, in memory: each challenge is random (256 bits), works once
/// (taking it removes it, whether verification then succeeds or not) and expires after five
/// minutes. The number pending is bounded, so a flood of option requests cannot grow memory.
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
    }

    public static let lifetime: TimeInterval = 300
    public let capacity: Int
    let time: any TimeSource
    let random: any RandomSource
    let pending = LockedBox([String: Pending]())

    public init(time: any TimeSource, random: any RandomSource, capacity: Int = 10_000) {
        self.time = time
        self.random = random
        self.capacity = capacity
    }

    /// Starts a ceremony; returns its id and challenge. Refused when too many are pending.
    public func begin(_ kind: Kind) throws(GatehouseError) -> (id: String, challenge: [UInt8]) {
        let now = self.time.now()
        let id = Base64URL.encode(self.random.bytes(16))
        let challenge = self.random.bytes(32)
        let admitted = self.pending.mutate { table -> Bool in
            if table.count >= self.capacity { table = table.filter { $0.value.expiresAt > now } }
            guard table.count < self.capacity else { return false }
            table[id] = Pending(kind: kind, challenge: challenge, expiresAt: now.addingTimeInterval(Self.lifetime))
            return true
        }
        guard admitted else { throw GatehouseError(.rateLimited, "too many sign-ins are in progress; try again in a minute") }
        return (id, challenge)
    }

    /// Takes a ceremony out: it cannot be used again. Nil if unknown or expired.
    public func take(_ id: String) -> Pending? {
        let now = self.time.now()
        guard let entry = self.pending.mutate({ $0.removeValue(forKey: id) }), entry.expiresAt > now else { return nil }
        return entry
    }

    public var count: Int { self.pending.value.count }
}
