import Foundation
import GatehouseCore
import GatehouseServices
import Testing

/// Anonymous failures are audited without unbounded growth: the first of each kind, subject and
/// network per minute as itself, the repeats as one counted event; nothing is dropped.
@Suite("Failure audit aggregation")
struct FailureAuditTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func failure(
        _ at: TimeInterval, from address: String?, subject: String = "unknown", code: AuditCode = .signInFailed,
        reason: String = "webauthn.bad_signature"
    ) -> AuditEvent {
        AuditEvent(
            code: code, time: Self.t0.addingTimeInterval(at), actor: subject, subject: subject, outcome: .denied, reason: reason,
            sourceAddress: address)
    }

    @Test func theFirstIsAuditedAtOnceAndRepeatsAreCountedOnce() {
        let audit = FailureAudit()
        #expect(audit.admit(self.failure(0, from: "198.51.100.7")) == [self.failure(0, from: "198.51.100.7")])
        for i in 1...500 { #expect(audit.admit(self.failure(Double(i) / 10, from: "198.51.100.7")).isEmpty) }
        // Another network, another subject or another kind is its own first.
        #expect(audit.admit(self.failure(1, from: "198.51.100.8")).count == 1)
        #expect(audit.admit(self.failure(1, from: "198.51.100.7", subject: "user:alice")).count == 1)
        #expect(audit.admit(self.failure(1, from: "198.51.100.7", code: .hostJoinRefused)).count == 1)
        // Another reason is its own first too (reasons are stable codes: a bounded set).
        #expect(audit.admit(self.failure(1, from: "198.51.100.7", reason: "webauthn.user_not_verified")).count == 1)
        // One IPv6 /64 is one network.
        #expect(audit.admit(self.failure(2, from: "2001:db8:1:2::1")).count == 1)
        #expect(audit.admit(self.failure(3, from: "2001:db8:1:2:ffff::2")).isEmpty)
        // Nothing ends before the minute is up; then one summary per window with repeats.
        #expect(audit.flush(at: Self.t0.addingTimeInterval(59)).isEmpty)
        let summaries = audit.flush(at: Self.t0.addingTimeInterval(63))
        #expect(summaries.count == 2)
        let first = summaries.first { $0.details["network"] == "198.51.100.7" }
        #expect(
            first?.code == .failuresAggregated && first?.details["count"] == "500" && first?.details["code"] == "signin.failed",
            "\(String(describing: first))")
        #expect(first?.details["reason"] == "webauthn.bad_signature" && first?.outcome == .denied)
        #expect(summaries.contains { $0.details["network"] == "2001:db8:1:2::/64" && $0.details["count"] == "1" })
        #expect(audit.flush(at: Self.t0.addingTimeInterval(200), all: true).isEmpty)
        // After its window, the next failure is a first again.
        #expect(audit.admit(self.failure(300, from: "198.51.100.7")).count == 1)
    }

    @Test func aRepeatAfterTheWindowWritesTheSummaryAndItself() {
        let audit = FailureAudit()
        _ = audit.admit(self.failure(0, from: "203.0.113.1"))
        _ = audit.admit(self.failure(5, from: "203.0.113.1"))
        let next = audit.admit(self.failure(70, from: "203.0.113.1"))
        #expect(next.map(\.code) == [.failuresAggregated, .signInFailed] && next.first?.details["count"] == "1")
    }

    @Test func aFullTableWritesSummariesEarlyAndDropsNothing() {
        let audit = FailureAudit(capacity: 100)
        var events: [AuditEvent] = []
        for n in 0..<1000 {
            let address = "10.0.\(n / 250).\(n % 250)"
            for k in 0..<3 { events += audit.admit(self.failure(Double(n) / 1000 + Double(k) / 10_000, from: address)) }
        }
        events += audit.flush(at: Self.t0.addingTimeInterval(1), all: true)
        // Every failure is in the log: 1000 as themselves, 2000 as counts in summaries.
        #expect(events.filter { $0.code == .signInFailed }.count == 1000)
        #expect(events.filter { $0.code == .failuresAggregated }.compactMap { Int($0.details["count"] ?? "") }.reduce(0, +) == 2000)
        #expect(audit.flush(at: Self.t0.addingTimeInterval(2), all: true).isEmpty)
    }
}
