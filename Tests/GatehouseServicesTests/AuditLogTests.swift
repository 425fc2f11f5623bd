import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import GatehouseStorage
import GatehouseTesting
import Testing

@Suite("Audit log service")
struct AuditLogTests {
    static let rootKey = try! RootKey(bytes: Array(repeating: 5, count: 32))

    func setUp(_ store: any Store) async throws -> (ServiceEnvironment, AuditLog) {
        let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        let keys = try await KeyBootstrap(environment: env, rootKey: Self.rootKey).loadOrCreate()
        return (env, try await AuditLog(environment: env, keys: keys))
    }

    @Test(arguments: TestStoreKind.available)
    func publishesVerifiableCheckpointsAndProofs(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in
            let (env, log) = try await self.setUp(store)
            let first = try #require(try await log.publishCheckpoint())
            #expect(first.size == 7)
            // Nothing new: the same checkpoint, not a new signature.
            let again = try #require(try await log.publishCheckpoint())
            #expect(again.size == first.size && again.note == first.note)
            let invitations = InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:1"))
            for name in ["a", "b", "c"] {
                _ = try await invitations.invite(username: try Username(validating: name), email: nil, role: .member, actor: "t")
            }
            let second = try #require(try await log.publishCheckpoint())
            #expect(second.size == 10)

            let bundle = try await log.bundle()
            let result = AuditVerifier.verify(entries: bundle.verifiableEntries, checkpoints: bundle.checkpoints, verifier: log.verifier)
            #expect(result.isValid)
            #expect(result.entries == 10 && result.checkpoints == 2)

            for entry in Int64(1)...10 {
                let proof = try await log.inclusionProof(sequence: entry, size: nil)
                #expect(proof.verifies, "entry \(entry)")
            }
            #expect(try await log.inclusionProof(sequence: 3, size: 7).verifies)
            #expect(try await log.consistencyProof(oldSize: 7, size: 10).verifies)
            await #expect(throws: GatehouseError.self) { _ = try await log.inclusionProof(sequence: 8, size: 7) }
            await #expect(throws: GatehouseError.self) { _ = try await log.consistencyProof(oldSize: 6, size: nil) }
        }
    }

    /// The database is rolled back to an older, consistent state and new entries follow: the
    /// server refuses to sign a checkpoint that would contradict the one it kept outside.
    @Test(arguments: TestStoreKind.sql)
    func refusesToSignOverARollback(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in
            let head = LockedBox<String?>(nil)
            let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
            let keys = try await KeyBootstrap(environment: env, rootKey: Self.rootKey).loadOrCreate()
            let log = try await AuditLog(environment: env, keys: keys, trustedHead: { head.value }, onPublish: { head.value = $0.note })
            let invitations = InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:1"))
            _ = try await log.publishCheckpoint()
            for name in ["a", "b"] {
                _ = try await invitations.invite(username: try Username(validating: name), email: nil, role: .member, actor: "t")
            }
            #expect(try await log.publishCheckpoint()?.size == 9)
            let sql = store as! SQLStore
            try await sql.execute(unsafeSQL: "DELETE FROM invitations")
            try await sql.execute(unsafeSQL: "DELETE FROM audit_events WHERE seq > 7")
            try await sql.execute(unsafeSQL: "DELETE FROM audit_checkpoints WHERE tree_size > 7")
            _ = try await invitations.invite(username: try Username(validating: "c"), email: nil, role: .member, actor: "t")
            do {
                _ = try await log.publishCheckpoint()
                Issue.record("a checkpoint was signed over a rolled-back log")
            } catch let error as GatehouseError {
                #expect(error.message.contains("covers 9 entries but the log has 8"))
            }
            #expect(try await log.checkpoints().map(\.size) == [7])
        }
    }

    @Test(arguments: TestStoreKind.sql)
    func refusesToSignOverAnAlteredEntry(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in
            let (_, log) = try await self.setUp(store)
            try await (store as! SQLStore).execute(unsafeSQL: "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
            do {
                _ = try await log.publishCheckpoint()
                Issue.record("a checkpoint was signed over an altered entry")
            } catch let error as GatehouseError {
                #expect(error.message.contains("audit entry 2 is missing or altered"))
            }
            #expect(try await log.checkpoints().isEmpty)
        }
    }

    /// Checkpoints re-hash only new entries; every ten minutes the whole log again, so an entry
    /// altered after it was first verified stops the signing within that time.
    @Test(arguments: TestStoreKind.sql)
    func periodicFullVerificationCatchesOldTampering(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in
            let time = ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000))
            let env = ServiceEnvironment(store: store, time: time, random: SystemRandomSource())
            let keys = try await KeyBootstrap(environment: env, rootKey: Self.rootKey).loadOrCreate()
            let log = try await AuditLog(environment: env, keys: keys)
            let invitations = InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:1"))
            _ = try await invitations.invite(username: try Username(validating: "a"), email: nil, role: .member, actor: "t")
            let first = try #require(try await log.publishCheckpoint())
            try await (store as! SQLStore).execute(unsafeSQL: "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
            _ = try await invitations.invite(username: try Username(validating: "b"), email: nil, role: .member, actor: "t")
            #expect(try await log.publishCheckpoint()?.size == first.size + 1)  // only entry N+1 was re-hashed
            time.advance(by: 601)
            _ = try await invitations.invite(username: try Username(validating: "c"), email: nil, role: .member, actor: "t")
            do {
                _ = try await log.publishCheckpoint()
                Issue.record("signed over an entry altered after it was verified")
            } catch let error as GatehouseError {
                #expect(error.message.contains("audit entry 2 is missing or altered"))
            }
        }
    }
}
