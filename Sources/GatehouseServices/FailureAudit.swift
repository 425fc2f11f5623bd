public import Foundation
public import GatehouseCore

/// Audits failures that anyone can cause without an account (a sign-in with an unknown or forged
/// passkey, an enrollment with a bad link, a host join with a wrong token) without letting them
/// grow the permanent log without bound. Per kind of failure, subject, reason (a stable error
/// code, so a bounded set) and source network (an IPv4 address or IPv6 /64), and per one-minute
/// window, the first failure is audited as itself, at once; the rest are counted and audited as
/// one `audit.failures_aggregated` event with their number and first and last time, when the
/// window has passed (at the next such failure, or at the periodic ``flush(at:all:)``).
///
/// Held in memory per process: what a crash loses is the count of at most one window's repeats,
/// never a first failure. A table that fills up writes its summaries early rather than drop them.
public final class FailureAudit: Sendable {
    public static let window: TimeInterval = 60
    public let capacity: Int

    struct Key: Hashable {
        let code: AuditCode
        let subject: String
        let reason: String
        let network: String
    }

    struct Tally {
        let started: Date
        var repeats = 0
        var first: Date?
        var last: Date?
        var actor: String
    }

    let tallies = LockedBox([Key: Tally]())

    public init(capacity: Int = 10_000) { self.capacity = max(1, capacity) }

    /// What to write for this failure: the event itself when it is the first of its window, a
    /// summary of an ended window before it, or nothing when it is a repeat (counted).
    public func admit(_ event: AuditEvent) -> [AuditEvent] {
        let now = event.time
        let key = Key(
            code: event.code, subject: event.subject, reason: String((event.reason ?? "").prefix(200)),
            network: CeremonyStore.networkOwner(event.sourceAddress))
        return self.tallies.mutate { table -> [AuditEvent] in
            var out: [AuditEvent] = []
            if var tally = table[key], now.timeIntervalSince(tally.started) < Self.window, now >= tally.started {
                tally.repeats += 1
                tally.first = tally.first ?? now
                tally.last = now
                table[key] = tally
                return []
            } else if let ended = table.removeValue(forKey: key), let summary = Self.summary(key, ended, at: now) {
                out.append(summary)
            }
            if table.count >= self.capacity {
                out += Self.drain(&table, at: now, all: false)
                if table.count >= self.capacity { out += Self.drain(&table, at: now, all: true) }
            }
            table[key] = Tally(started: now, actor: event.actor)
            out.append(event)
            return out
        }
    }

    /// Summaries of every window that has ended (all windows when `all`), for the caller to commit.
    public func flush(at now: Date, all: Bool = false) -> [AuditEvent] {
        self.tallies.mutate { Self.drain(&$0, at: now, all: all) }
    }

    static func drain(_ table: inout [Key: Tally], at now: Date, all: Bool) -> [AuditEvent] {
        var out: [AuditEvent] = []
        for (key, tally) in table where all || now.timeIntervalSince(tally.started) >= Self.window {
            table.removeValue(forKey: key)
            if let summary = Self.summary(key, tally, at: now) { out.append(summary) }
        }
        return out.sorted { ($0.details["first"] ?? "") < ($1.details["first"] ?? "") }
    }

    static func summary(_ key: Key, _ tally: Tally, at now: Date) -> AuditEvent? {
        guard tally.repeats > 0, let first = tally.first, let last = tally.last else { return nil }
        // "net:ip:198.51.100.7" or "net:ip6:2001:db8:1:2::/64" → the address or the /64.
        var network = Substring(key.network.dropFirst(4))
        for prefix in ["ip:", "ip6:"] where network.hasPrefix(prefix) { network = network.dropFirst(prefix.count) }
        return AuditEvent(
            code: .failuresAggregated, time: now, actor: tally.actor, subject: key.subject, outcome: .denied,
            reason: "\(tally.repeats) more \(key.code.rawValue) (\(key.reason)) from \(network) within a minute of the first",
            sourceAddress: String(network),
            details: [
                "code": key.code.rawValue, "count": String(tally.repeats), "network": String(network),
                "first": String(Int64(first.timeIntervalSince1970 * 1000)), "last": String(Int64(last.timeIntervalSince1970 * 1000)),
                "reason": key.reason,
            ]
        )
    }

    /// Commits what ``admit(_:)`` or ``flush(at:all:)`` returned, in one transaction.
    public static func commit(_ events: [AuditEvent], to store: any Store) async throws {
        guard let first = events.first else { return }
        try await store.commit { _ in Change((), first: first, rest: Array(events.dropFirst())) }
    }
}
