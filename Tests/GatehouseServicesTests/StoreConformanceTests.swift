import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseTesting
import Testing

/// One suite, run against every ``Store``: in-memory, SQLite and PostgreSQL.
@Suite("Store conformance")
struct StoreConformanceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func invitation(_ name: String, id: String? = nil, hash: String? = nil, state: Invitation.State = .pending) -> Invitation {
        Invitation(
            id: id ?? "inv-\(name)", kind: .invite, username: Username(uncheckedStored: name),
            email: EmailAddress(uncheckedStored: "\(name)@example.org"), role: .member,
            tokenHash: hash ?? "hash-\(name)", createdAt: t0, expiresAt: t0.addingTimeInterval(3600), createdBy: "test", state: state
        )
    }

    static func event(_ subject: String) -> AuditEvent {
        AuditEvent(code: .invitationCreated, time: t0, actor: "test", subject: subject, details: ["k": "v"])
    }

    func withStore(_ kind: TestStoreKind, _ body: (any Store) async throws -> Void) async throws {
        let test = try await TestStore.make(kind)
        do {
            try await body(test.store)
            await test.close()
        } catch {
            await test.close()
            throw error
        }
    }

    @Test func postgresIsAvailableWhenRequired() {
        if TestStoreKind.postgresRequired {
            #expect(TestStoreKind.postgresURL != nil, "GATEHOUSE_REQUIRE_POSTGRES=1 but GATEHOUSE_TEST_POSTGRES_URL is not set")
        }
    }

    @Test(arguments: TestStoreKind.available)
    func invitationsRoundTrip(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let invitation = Self.invitation("alice")
            try await store.commit { tx in
                try await tx.insertInvitation(invitation)
                return Change((), event: Self.event("invitation:alice"))
            }
            let (byID, pending, all) = try await store.read { tx in
                (
                    try await tx.invitation(id: "inv-alice"), try await tx.pendingInvitation(for: invitation.username),
                    try await tx.invitations(state: nil)
                )
            }
            #expect(byID == invitation)
            #expect(pending == invitation)
            #expect(all == [invitation])
        }
    }

    @Test(arguments: TestStoreKind.available)
    func onePendingInvitationPerUserAndUniqueTokenHashes(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            try await store.commit { tx in
                try await tx.insertInvitation(Self.invitation("alice"))
                return Change((), event: Self.event("a"))
            }
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertInvitation(Self.invitation("alice", id: "inv-2", hash: "other"))
                    return Change((), event: Self.event("b"))
                }
            }
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertInvitation(Self.invitation("bob", hash: "hash-alice"))
                    return Change((), event: Self.event("c"))
                }
            }
            // After the first is finished, a new pending invitation for the same user is fine.
            try await store.commit { tx in
                #expect(try await tx.finishInvitation(id: "inv-alice", state: .revoked, at: Self.t0))
                #expect(try await !tx.finishInvitation(id: "inv-alice", state: .used, at: Self.t0))
                try await tx.insertInvitation(Self.invitation("alice", id: "inv-3", hash: "h3"))
                return Change((), event: Self.event("d"))
            }
            let states = try await store.read { tx in try await tx.invitations(state: nil).map(\.state) }
            #expect(states.sorted { $0.rawValue < $1.rawValue } == [.pending, .revoked])
            // The two refused commits left no audit events behind.
            let audit = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }
            #expect(audit.map(\.event.subject) == ["a", "d"])
        }
    }

    @Test(arguments: TestStoreKind.available)
    func aFailedBodyWritesNothing(_ kind: TestStoreKind) async throws {
        struct Boom: Error {}
        try await self.withStore(kind) { store in
            await #expect(throws: Boom.self) {
                try await store.commit { tx -> Change<Void> in
                    try await tx.insertInvitation(Self.invitation("carol"))
                    _ = try await tx.insertMetaValueIfAbsent(.installationID, "x")
                    throw Boom()
                }
            }
            let (invitations, meta, audit) = try await store.read { tx in
                (try await tx.invitations(state: nil), try await tx.metaValue(.installationID), try await tx.latestAuditSequence())
            }
            #expect(invitations.isEmpty)
            #expect(meta == nil)
            #expect(audit == 0)
        }
    }

    @Test(arguments: TestStoreKind.available)
    func auditSequenceIsGapFreeAndOrdered(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        try await store.commit { _ in Change((), event: Self.event("e\(i)"), Self.event("f\(i)")) }
                    }
                }
                try await group.waitForAll()
            }
            let records = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 1000) }
            #expect(records.map(\.sequence) == Array(1...40))
            // The two events of one change are adjacent.
            for pair in stride(from: 0, to: 40, by: 2) {
                #expect(records[pair].event.subject.dropFirst() == records[pair + 1].event.subject.dropFirst())
            }
            let page = try await store.read { tx in try await tx.auditRecords(after: 35, limit: 3) }
            #expect(page.map(\.sequence) == [36, 37, 38])
            #expect(try await store.read { tx in try await tx.latestAuditSequence() } == 40)
            #expect(records[0].event.details == ["k": "v"])
            #expect(records[0].event.time == Self.t0)
        }
    }

    @Test(arguments: TestStoreKind.available)
    func sealedKeysAreNeverReplaced(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let record = SealedKeyRecord(
                purpose: .sshUserCA, algorithm: .ed25519, publicKey: [1, 2, 3], sealedPrivateKey: [4, 5, 6], createdAt: Self.t0)
            try await store.commit { tx in
                try await tx.insertSealedKey(record)
                return Change((), event: Self.event("key"))
            }
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertSealedKey(
                        SealedKeyRecord(purpose: .sshUserCA, algorithm: .ed25519, publicKey: [9], sealedPrivateKey: [9], createdAt: Self.t0))
                    return Change((), event: Self.event("key2"))
                }
            }
            #expect(try await store.read { tx in try await tx.sealedKeys() } == [record])
        }
    }

    @Test(arguments: TestStoreKind.available)
    func metaValuesAreSetOnce(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let results = try await store.commit { tx in
                let first = try await tx.insertMetaValueIfAbsent(.rootKeyCheck, "one")
                let second = try await tx.insertMetaValueIfAbsent(.rootKeyCheck, "two")
                return Change((first, second), event: Self.event("meta"))
            }
            #expect(results == (true, false))
            #expect(try await store.read { tx in try await tx.metaValue(.rootKeyCheck) } == "one")
        }
    }

    @Test(arguments: TestStoreKind.available)
    func usersAndAdminCounts(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let admin = User(id: "u1", username: Username(uncheckedStored: "root"), email: nil, role: .admin, status: .active, createdAt: Self.t0)
            let locked = User(id: "u2", username: Username(uncheckedStored: "old"), email: nil, role: .admin, status: .locked, createdAt: Self.t0)
            try await store.commit { tx in
                try await tx.insertUser(admin)
                try await tx.insertUser(locked)
                return Change((), event: Self.event("users"))
            }
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertUser(User(id: "u3", username: admin.username, email: nil, role: .member, status: .active, createdAt: Self.t0))
                    return Change((), event: Self.event("dup"))
                }
            }
            let (found, admins, total) = try await store.read { tx in
                (try await tx.user(named: admin.username), try await tx.countActiveUsers(role: .admin), try await tx.countUsers())
            }
            #expect(found == admin)
            #expect(admins == 1)
            #expect(total == 2)
        }
    }

    @Test(arguments: TestStoreKind.available)
    func hostileStringsAreStoredVerbatim(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let nasty = "'; DROP TABLE invitations; -- \u{202E}é\\"
            var event = Self.event(nasty)
            event.details = ["x": nasty]
            let hostile = event
            try await store.commit { _ in Change((), event: hostile) }
            let records = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 10) }
            #expect(records.first?.event.subject == nasty)
            #expect(records.first?.event.details["x"] == nasty)
        }
    }

    @Test(arguments: TestStoreKind.available)
    func policyVersionsAreNumberedKeptAndNeverReplaced(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            @Sendable func record(_ version: Int64, _ text: String) -> PolicyVersionRecord {
                PolicyVersionRecord(
                    info: PolicyVersionInfo(
                        version: version, sha256: ContentDigest.sha256Hex(text), appliedAt: Self.t0.addingTimeInterval(Double(version)),
                        appliedBy: "test", comment: version == 1 ? nil : "second: ünïcode ✓", ruleCount: Int(version)),
                    source: text
                )
            }
            #expect(try await store.read { tx in try await tx.policyVersion(nil) } == nil)
            let first = record(1, "group a {}\n")
            let second = record(2, "# \u{1F512} quoted \"text\"\ngroup b {}\n")
            for r in [first, second] {
                try await store.commit { tx in
                    try await tx.insertPolicyVersion(r)
                    return Change((), event: Self.event("policy:v\(r.info.version)"))
                }
            }
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertPolicyVersion(record(2, "group c {}"))
                    return Change((), event: Self.event("policy:v2"))
                }
            }
            let (latest, one, missing, history) = try await store.read { tx in
                (try await tx.policyVersion(nil), try await tx.policyVersion(1), try await tx.policyVersion(9), try await tx.policyHistory(limit: 10))
            }
            #expect(latest == second)
            #expect(one == first)
            #expect(missing == nil)
            #expect(history == [second.info, first.info])
            #expect(try await store.read { tx in try await tx.policyHistory(limit: 1) } == [second.info])
        }
    }

    @Test(arguments: TestStoreKind.available)
    func passkeysAreUniqueAcrossUsersAndSessionsRoundTrip(_ kind: TestStoreKind) async throws {
        try await self.withStore(kind) { store in
            let alice = User(
                id: "u-alice", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
            let bob = User(id: "u-bob", username: Username(uncheckedStored: "bob"), email: nil, role: .member, status: .active, createdAt: Self.t0)
            let key = CredentialRecord(
                id: [1, 2, 3, 250], userID: "u-alice", userHandle: Array("u-alice".utf8), publicKey: [0xA5, 1, 2], algorithm: -7, signCount: 0,
                backupEligible: true, backedUp: false, aaguid: Array(repeating: 0, count: 16), attestationFormat: "none",
                transports: ["internal", "hybrid"], createdAt: Self.t0, lastUsedAt: nil
            )
            try await store.commit { tx in
                try await tx.insertUser(alice)
                try await tx.insertUser(bob)
                try await tx.insertCredential(key)
                return Change((), event: Self.event("user:alice"))
            }
            // The same credential ID for another user is a conflict, and nothing is kept.
            var copy = key
            copy.userID = "u-bob"
            let stolen = copy
            await #expect(throws: GatehouseError.self) {
                try await store.commit { tx in
                    try await tx.insertCredential(stolen)
                    return Change((), event: Self.event("user:bob"))
                }
            }
            let session = SessionRecord(
                tokenHash: "h1", userID: "u-alice", credentialID: key.id, createdAt: Self.t0, lastSeenAt: Self.t0,
                expiresAt: Self.t0.addingTimeInterval(43200), idleTimeout: 1800, steppedUpAt: Self.t0, revokedAt: nil, sourceAddress: "127.0.0.1"
            )
            try await store.commit { tx in
                #expect(try await tx.updateCredentialUse(id: key.id, signCount: 7, backedUp: true, at: Self.t0.addingTimeInterval(5)))
                // The counter only moves forward: an equal or lower count changes nothing.
                #expect(try await tx.updateCredentialUse(id: key.id, signCount: 7, backedUp: false, at: Self.t0.addingTimeInterval(6)) == false)
                #expect(try await tx.updateCredentialUse(id: key.id, signCount: 3, backedUp: false, at: Self.t0.addingTimeInterval(6)) == false)
                try await tx.lockAccountChanges()
                try await tx.insertSession(session)
                try await tx.touchSession(tokenHash: "h1", at: Self.t0.addingTimeInterval(60), steppedUp: false)
                return Change((), event: Self.event("session"))
            }
            let (byID, mine, theirs, stored, byHandle, byToken) = try await store.read { tx in
                (
                    try await tx.credential(id: key.id), try await tx.credentials(userID: "u-alice"), try await tx.credentials(userID: "u-bob"),
                    try await tx.session(tokenHash: "h1"), try await tx.user(id: "u-alice"), try await tx.invitation(tokenHash: "nope")
                )
            }
            var used = key
            used.signCount = 7
            used.backedUp = true
            used.lastUsedAt = Self.t0.addingTimeInterval(5)
            #expect(byID == used)
            #expect(mine == [used])
            #expect(theirs.isEmpty)
            #expect(stored?.lastSeenAt == Self.t0.addingTimeInterval(60))
            #expect(stored?.steppedUpAt == Self.t0)
            #expect(stored?.isLive(at: Self.t0.addingTimeInterval(60 + 1799)) == true)
            #expect(stored?.isLive(at: Self.t0.addingTimeInterval(60 + 1800)) == false)
            #expect(byHandle == alice)
            #expect(byToken == nil)
        }
    }
}
