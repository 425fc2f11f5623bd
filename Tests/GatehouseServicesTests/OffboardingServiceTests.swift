import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseTesting
import Testing

@Suite("Offboarding")
struct OffboardingServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A stand-in for a later feature's credentials, to show hooks run in the one transaction.
    struct CountingHook: OffboardingHook {
        var name: String { "widgets" }
        func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int { user.username.rawValue.count }
    }

    struct FailingHook: OffboardingHook {
        var name: String { "broken" }
        func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int { throw GatehouseError(.storeFailure, "hook failed") }
    }

    func seed(_ store: any Store) async throws {
        try await store.commit { tx in
            for (id, name, role) in [("u1", "root", RoleName.admin), ("u2", "alice", RoleName.member)] {
                try await tx.insertUser(
                    User(id: id, username: Username(uncheckedStored: name), email: nil, role: role, status: .active, createdAt: Self.t0))
            }
            for (hash, user) in [("s1", "u2"), ("s2", "u2"), ("s3", "u1")] {
                try await tx.insertSession(
                    SessionRecord(
                        tokenHash: hash, userID: user, credentialID: [1], createdAt: Self.t0, lastSeenAt: Self.t0,
                        expiresAt: Self.t0.addingTimeInterval(3600), idleTimeout: 1800, steppedUpAt: Self.t0, revokedAt: nil, sourceAddress: nil))
            }
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
    }

    @Test(arguments: TestStoreKind.available)
    func offboardingEndsEverythingInOneTransaction(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        try await self.seed(test.store)
        let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 3))

        // A failing hook rolls back the whole offboarding: the account stays as it was.
        let broken = OffboardingService(environment: env, hooks: [SessionOffboardingHook(), FailingHook()])
        await #expect(throws: GatehouseError.self) {
            try await broken.offboard(username: Username(uncheckedStored: "alice"), actor: "test", reason: nil)
        }
        #expect(try await test.store.read { tx in try await tx.user(named: Username(uncheckedStored: "alice")) }?.status == .active)
        #expect(try await test.store.read { tx in try await tx.sessions(userID: "u2") }.allSatisfy { $0.revokedAt == nil })

        let service = OffboardingService(environment: env, hooks: [SessionOffboardingHook(), CountingHook()])
        let result = try await service.offboard(username: Username(uncheckedStored: "alice"), actor: "admin-socket", reason: "left")
        #expect(result.revoked == ["sessions": 2, "widgets": 5])
        let (alice, sessions, rootSessions, last) = try await test.store.read { tx in
            (
                try await tx.user(named: Username(uncheckedStored: "alice")), try await tx.sessions(userID: "u2"),
                try await tx.sessions(userID: "u1"),
                try await tx.auditRecords(after: 0, limit: 10).last?.event
            )
        }
        #expect(alice?.status == .offboarded)
        #expect(sessions.allSatisfy { $0.revokedAt == Self.t0 })
        #expect(rootSessions.allSatisfy { $0.revokedAt == nil })
        #expect(last?.code == .userOffboarded && last?.details == ["sessions": "2", "widgets": "5", "role": "member"] && last?.reason == "left")
        await #expect(throws: GatehouseError(.conflict, "root is the last active administrator; enroll another one first")) {
            try await service.offboard(username: Username(uncheckedStored: "root"), actor: "test", reason: nil)
        }
    }

    @Test("offboarding also revokes a pending invitation or recovery link")
    func revokesPendingLinks() async throws {
        let store = InMemoryStore()
        try await self.seed(store)
        let env = ServiceEnvironment(store: store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 4))
        let issued = try await InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:8080"))
            .inviteRecovery(username: Username(uncheckedStored: "alice"), actor: "test")
        let result = try await OffboardingService(environment: env).offboard(username: Username(uncheckedStored: "alice"), actor: "test", reason: nil)
        // The recovery link already ended alice's two sessions; offboarding revokes the link.
        #expect(
            result.revoked == [
                "sessions": 0, "invitations": 1, "oidc_grants": 0, "ssh_certificates": 0, "x509_certificates": 0, "wireguard_devices": 0,
            ])
        #expect(try await store.read { tx in try await tx.invitation(id: issued.invitation.id) }?.state == .revoked)
    }
}
