import Foundation
import GatehouseCore
import GatehousePolicy
import GatehouseServices
import GatehouseTesting
import Testing

@Suite("Policy service")
struct PolicyServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static let v1 = """
        group sre { members = [alice] }
        host web-1 { addresses = [10.0.0.1] }
        allow ssh sre-root { who = [sre] logins = [root] hosts = [web-1] }
        tests {
          alice can ssh root@web-1
          user:bob cannot ssh root@web-1
        }
        """
    static let v2 = v1.replacingOccurrences(of: "members = [alice]", with: "members = [alice, bob]")
        .replacingOccurrences(of: "user:bob cannot", with: "bob can")

    func environment(_ store: any Store) -> ServiceEnvironment {
        ServiceEnvironment(store: store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 7))
    }

    func auditCodes(_ store: any Store) async throws -> [(AuditCode, AuditEvent.Outcome, [String: String])] {
        try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.map { ($0.event.code, $0.event.outcome, $0.event.details) }
    }

    @Test(arguments: TestStoreKind.available)
    func applyVersionsAuditsAndActivates(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let service = PolicyService(environment: self.environment(test.store))
        #expect(service.active.info == nil)
        #expect(
            !service.active.policy.evaluate(
                .ssh(login: "root", host: "web-1"), subject: service.active.policy.subject(user: "alice", now: Self.t0),
                context: PolicyContext(now: Self.t0)
            ).isAllowed)

        let first = try await service.apply(source: Self.v1, fileName: "p", actor: "admin-socket", comment: "first")
        #expect(first.info.version == 1)
        #expect(!first.unchanged)
        #expect(first.diff.added == ["member group:sre user:alice", "ssh web-1 group:sre root allow [sre-root] lifetime=8h permit-pty"])
        let p = service.active.policy
        #expect(
            p.evaluate(.ssh(login: "root", host: "web-1"), subject: p.subject(user: "alice", now: Self.t0), context: PolicyContext(now: Self.t0))
                .isAllowed)

        let again = try await service.apply(source: Self.v1, fileName: "p", actor: "admin-socket")
        #expect(again.unchanged)
        #expect(again.info.version == 1)

        let diff = try await service.diff(source: Self.v2, fileName: "p")
        #expect(diff.added == ["member group:sre user:bob"], "bob joining a group is a change in access")
        #expect(diff.removed.isEmpty)
        let second = try await service.apply(source: Self.v2, fileName: "p", actor: "admin-socket", expectedVersion: 1)
        #expect(second.info.version == 2)
        await #expect(throws: GatehouseError(.conflict, "the active policy is version 2, not 1; run policy diff again")) {
            try await service.apply(source: Self.v1, fileName: "p", actor: "admin-socket", expectedVersion: 1)
        }
        let history = try await service.history(limit: 10)
        #expect(history.map(\.version) == [2, 1])
        #expect(history.last?.comment == "first")
        #expect(try await service.version(1).source == Self.v1)
        await #expect(throws: GatehouseError.self) { try await service.version(7) }

        let events = try await self.auditCodes(test.store)
        #expect(events.map(\.0) == [.policyApplied, .policyApplied])
        #expect(events[0].2["sha256"] == ContentDigest.sha256Hex(Self.v1))
        #expect(events[1].2["previous_version"] == "1")
    }

    @Test(arguments: TestStoreKind.available)
    func invalidOrFailingPoliciesAreRefusedAuditedAndNotApplied(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let service = PolicyService(environment: self.environment(test.store))
        _ = try await service.apply(source: Self.v1, fileName: "p", actor: "admin-socket")

        do {
            _ = try await service.apply(source: Self.v1 + "\ngroup x { color = red }", fileName: "new.policy", actor: "admin-socket")
            Issue.record("an invalid policy was applied")
        } catch let error as GatehouseError {
            #expect(error.code == .policyInvalid)
            #expect(error.message.hasPrefix("new.policy:8:11: unknown field 'color'"))
        }
        let failing = Self.v1.replacingOccurrences(of: "user:bob cannot", with: "user:bob can")
        do {
            _ = try await service.apply(source: failing, fileName: "new.policy", actor: "admin-socket")
            Issue.record("a policy with a failing test was applied")
        } catch let error as GatehouseError {
            #expect(error.code == .policyTestsFailed)
            #expect(error.message.contains("1 of 2 policy tests failed"))
            #expect(error.message.contains("user:bob can ssh root@web-1"))
        }
        #expect(service.active.info?.version == 1)
        #expect(try await service.history(limit: 10).count == 1)
        let events = try await self.auditCodes(test.store)
        #expect(events.map(\.0) == [.policyApplied, .policyRejected, .policyRejected])
        #expect(events[1].1 == .denied)
    }

    @Test("a replica picks up a version another one applied; a stored version that no longer compiles denies everything")
    func refreshAcrossReplicas() async throws {
        let store = InMemoryStore()
        let a = PolicyService(environment: self.environment(store))
        let b = PolicyService(environment: self.environment(store))
        _ = try await a.apply(source: Self.v1, fileName: "p", actor: "admin-socket")
        #expect(b.active.info == nil)
        try await b.refresh()
        #expect(b.active.info?.version == 1)
        let diff = try await b.diff(source: Self.v1, fileName: "p")
        #expect(diff.isEmpty)

        // Simulate a stored text the current compiler refuses (as after a stricter upgrade).
        try await store.commit { tx in
            try await tx.insertPolicyVersion(
                PolicyVersionRecord(
                    info: PolicyVersionInfo(version: 2, sha256: "x", appliedAt: Self.t0, appliedBy: "old", comment: nil, ruleCount: 0),
                    source: "frobnicate {}"
                ))
            return Change((), event: AuditEvent(code: .policyApplied, time: Self.t0, actor: "old", subject: "policy:v2"))
        }
        let active = try await b.refresh()
        #expect(active.info?.version == 2)
        #expect(active.loadError?.contains("policy@v2:1:1: unknown block 'frobnicate'") == true)
        #expect(active.policy.rules.isEmpty)
    }

    @Test("explain runs against the active policy for users and hosts")
    func explain() async throws {
        let service = PolicyService(environment: self.environment(InMemoryStore()))
        _ = try await service.apply(source: Self.v1, fileName: "p", actor: "admin-socket")
        let yes = try await service.explain(user: "alice", request: .ssh(login: "root", host: "web-1"))
        #expect(yes.decision.isAllowed)
        let no = try await service.explain(user: "bob", request: .ssh(login: "root", host: "web-1"))
        #expect(!no.decision.isAllowed)
        #expect(no.text.contains("not for you"))
        await #expect(throws: GatehouseError.self) { try await service.explain(user: "Bob!", request: .app("x")) }
    }
}
