import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseTesting
import Testing

@Suite("Key bootstrap")
struct KeyBootstrapTests {
    static let rootKey = try! RootKey(bytes: Array(repeating: 0x42, count: 32))

    func environment(_ store: any Store, seed: UInt64 = 1) -> ServiceEnvironment {
        ServiceEnvironment(store: store, time: ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000)), random: SeededRandomSource(seed: seed))
    }

    @Test(arguments: TestStoreKind.available)
    func firstStartGeneratesEveryKeyOnceAndAuditsIt(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in try await self.firstStart(store) }
    }

    func firstStart(_ store: any Store) async throws {
        let env = self.environment(store)
        let ring = try await KeyBootstrap(environment: env, rootKey: Self.rootKey).loadOrCreate()
        let records = try await store.read { tx in try await tx.sealedKeys() }
        #expect(Set(records.map(\.purpose)) == Set(KeyPurpose.allCases.filter(\.isInKeyRing)))
        for record in records {
            #expect(record.algorithm == record.purpose.algorithm)
            #expect(record.publicKey == ring[record.purpose].publicKeyBytes)
            // The private key is not stored in clear.
            #expect(!Data(record.sealedPrivateKey).contains(Data(ring[record.purpose].rawPrivate)))
        }
        let audit = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }
        #expect(
            audit.map(\.event.code) == [.systemInitialized] + Array(repeating: .keyGenerated, count: KeyPurpose.allCases.filter(\.isInKeyRing).count))

        // A restart with the same root key loads the same keys and writes nothing.
        let again = try await KeyBootstrap(environment: self.environment(store, seed: 99), rootKey: Self.rootKey).loadOrCreate()
        for purpose in KeyPurpose.allCases.filter(\.isInKeyRing) {
            #expect(again[purpose].publicKeyBytes == ring[purpose].publicKeyBytes)
        }
        #expect(try await store.read { tx in try await tx.latestAuditSequence() } == Int64(audit.count))
    }

    @Test(arguments: TestStoreKind.available)
    func aDifferentRootKeyIsRefusedAndWritesNothing(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in try await self.wrongRootKey(store) }
    }

    func wrongRootKey(_ store: any Store) async throws {
        _ = try await KeyBootstrap(environment: self.environment(store), rootKey: Self.rootKey).loadOrCreate()
        let before = try await store.read { tx in try await tx.latestAuditSequence() }
        let wrong = try RootKey(bytes: Array(repeating: 0x43, count: 32))
        do {
            _ = try await KeyBootstrap(environment: self.environment(store), rootKey: wrong).loadOrCreate()
            Issue.record("a different root key was accepted")
        } catch let error as GatehouseError {
            #expect(error.code == .rootKeyMismatch)
        }
        #expect(try await store.read { tx in try await tx.latestAuditSequence() } == before)
        // Nothing was replaced.
        let purposes = try await store.read { tx in try await tx.sealedKeys().map(\.purpose) }
        #expect(purposes.count == KeyPurpose.allCases.filter(\.isInKeyRing).count)
    }

    @Test func corruptedOrSwappedBlobsAreNamed() async throws {
        let store = InMemoryStore()
        let env = self.environment(store)
        _ = try await KeyBootstrap(environment: env, rootKey: Self.rootKey).loadOrCreate()
        let records = try await store.read { tx in try await tx.sealedKeys() }

        // Rebuild a store where one blob is flipped, another where two purposes swapped blobs.
        for mutate in [
            { (r: inout [SealedKeyRecord]) in r[0].sealedPrivateKey[20] ^= 1 },
            { (r: inout [SealedKeyRecord]) in
                let first = r[0].sealedPrivateKey
                r[0].sealedPrivateKey = r[1].sealedPrivateKey
                r[1].sealedPrivateKey = first
            },
            { (r: inout [SealedKeyRecord]) in r[2].publicKey[0] ^= 1 },
        ] {
            var copy = records
            mutate(&copy)
            let tampered = InMemoryStore()
            let check = Self.rootKey.checkValue
            let rows = copy
            try await tampered.commit { tx in
                _ = try await tx.insertMetaValueIfAbsent(.rootKeyCheck, check)
                for record in rows { try await tx.insertSealedKey(record) }
                return Change((), event: AuditEvent(code: .systemInitialized, time: Date(), actor: "test", subject: "x"))
            }
            do {
                _ = try await KeyBootstrap(environment: self.environment(tampered), rootKey: Self.rootKey).loadOrCreate()
                Issue.record("tampered key material was accepted")
            } catch let error as GatehouseError {
                #expect(error.code == .keyMaterialCorrupted)
            }
        }
    }

    @Test func concurrentFirstStartsSettleOnOneSetOfKeys() async throws {
        for kind in TestStoreKind.available {
            let test = try await TestStore.make(kind)
            let store = test.store
            let rings = try await withThrowingTaskGroup(of: KeyRing.self) { group in
                for seed in 1...4 {
                    group.addTask {
                        try await KeyBootstrap(environment: self.environment(store, seed: UInt64(seed)), rootKey: Self.rootKey).loadOrCreate()
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let keys = Set(rings.map { Hex.encode($0[.auditSigning].publicKeyBytes) })
            #expect(keys.count == 1, "\(kind): replicas disagree on the audit key")
            await test.close()
        }
    }

    @Test func auditFailureRefusesTheWholeBootstrap() async throws {
        let store = InMemoryStore()
        store.simulateAuditFailure(true)
        await #expect(throws: GatehouseError.self) {
            _ = try await KeyBootstrap(environment: self.environment(store), rootKey: Self.rootKey).loadOrCreate()
        }
        #expect(try await store.read { tx in try await tx.sealedKeys() }.isEmpty)
        #expect(try await !KeyBootstrap.storeHasKeyMaterial(store))
    }
}

@Suite("Invitations")
struct InvitationServiceTests {
    let publicURL = try! PublicURL(parsing: "http://localhost:8080")

    @Test(arguments: TestStoreKind.available)
    func bootstrapInvitationUntilAnAdminExists(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in try await self.bootstrap(store) }
    }

    func bootstrap(_ store: any Store) async throws {
        let clock = ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000))
        let env = ServiceEnvironment(store: store, time: clock, random: SystemRandomSource())
        let service = InvitationService(environment: env, publicURL: self.publicURL)

        let first = try #require(try await service.ensureBootstrapInvitation())
        #expect(first.invitation.kind == .bootstrap)
        #expect(first.invitation.role == .admin)
        #expect(first.enrollmentURL.hasPrefix("http://localhost:8080/enroll#token="))
        #expect(first.invitation.expiresAt == clock.now().addingTimeInterval(24 * 3600))
        let secret = String(first.enrollmentURL.split(separator: "=").last!)
        #expect(InvitationToken.matches(presented: secret, storedHash: first.invitation.tokenHash))

        // A restart before enrollment replaces the link; the old one is revoked.
        let second = try #require(try await service.ensureBootstrapInvitation())
        #expect(second.invitation.id != first.invitation.id)
        let old = try await store.read { tx in try await tx.invitation(id: first.invitation.id) }
        #expect(old?.state == .revoked)

        // Once an administrator exists, no new link.
        try await store.commit { tx in
            try await tx.insertUser(
                User(id: "u", username: Username(uncheckedStored: "admin"), email: nil, role: .admin, status: .active, createdAt: clock.now()))
            return Change((), event: AuditEvent(code: .userCreated, time: clock.now(), actor: "test", subject: "user:admin"))
        }
        #expect(try await service.ensureBootstrapInvitation() == nil)
    }

    @Test(arguments: TestStoreKind.available)
    func invitesAreAuditedAndRefuseDuplicates(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in try await self.invites(store) }
    }

    func invites(_ store: any Store) async throws {
        let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        let service = InvitationService(environment: env, publicURL: self.publicURL)
        let alice = try Username(validating: "alice")
        let issued = try await service.invite(
            username: alice, email: try EmailAddress(validating: "alice@example.org"), role: try RoleName(validating: "admin"), actor: "admin-socket")
        #expect(issued.invitation.role.rawValue == "admin")
        do {
            _ = try await service.invite(username: alice, email: nil, role: .member, actor: "admin-socket")
            Issue.record("a second pending invitation was accepted")
        } catch let error as GatehouseError {
            #expect(error.code == .conflict)
        }
        let audit = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 10) }
        #expect(audit.count == 1)
        #expect(audit[0].event.code == .invitationCreated)
        #expect(audit[0].event.actor == "admin-socket")
        #expect(audit[0].event.details["username"] == "alice")
        // The secret is in no audit record.
        let secret = String(issued.enrollmentURL.split(separator: "=").last!)
        #expect(!audit[0].event.detailsJSON.contains(secret))
    }

    @Test func inviteFailsClosedWhenTheAuditLogCannotBeWritten() async throws {
        let store = InMemoryStore()
        store.simulateAuditFailure(true)
        let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        let service = InvitationService(environment: env, publicURL: self.publicURL)
        await #expect(throws: GatehouseError.self) {
            _ = try await service.invite(username: try Username(validating: "bob"), email: nil, role: .member, actor: "t")
        }
        #expect(try await store.read { tx in try await tx.invitations(state: nil) }.isEmpty)
    }
}
