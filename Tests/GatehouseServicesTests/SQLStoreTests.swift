import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseStorage
import GatehouseTesting
import Logging
import Testing

@Suite("SQL store and data directory")
struct SQLStoreTests {
    var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test func migrationsAreIdempotentAndASchemaFromTheFutureIsRefused() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("g.sqlite")
        let store = try await SQLStore.openSQLite(path: path, logger: self.logger, time: SystemTimeSource())
        #expect(try await store.schemaVersion() == 13)
        try await store.close()
        // Reopening applies nothing twice.
        let again = try await SQLStore.openSQLite(path: path, logger: self.logger, time: SystemTimeSource())
        #expect(try await again.schemaVersion() == 13)
        try await again.execute(unsafeSQL: "INSERT INTO gatehouse_schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
        try await again.close()
        do {
            _ = try await SQLStore.openSQLite(path: path, logger: self.logger, time: SystemTimeSource())
            Issue.record("a newer schema was accepted")
        } catch let error as GatehouseError {
            #expect(error.code == .storeSchemaTooNew)
            #expect(error.message.contains("version 999"))
        }
    }

    /// When the audit append fails inside the database (here a trigger refuses it, as a full disk
    /// would), the state change in the same transaction is rolled back too.
    @Test(arguments: TestStoreKind.sql)
    func aFailedAuditAppendRollsBackTheChange(_ kind: TestStoreKind) async throws {
        try await TestStore.with(kind) { store in
            let sql = try #require(store as? SQLStore)
            switch kind {
            case .postgres:
                try await sql.execute(
                    unsafeSQL: """
                        CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$ LANGUAGE plpgsql
                        """)
                try await sql.execute(unsafeSQL: "CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
            default:
                try await sql.execute(
                    unsafeSQL: """
                        CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END
                        """)
            }
            let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
            let service = InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:8080"))
            do {
                _ = try await service.invite(username: try Username(validating: "dave"), email: nil, role: .member, actor: "test")
                Issue.record("the invitation was issued without its audit event")
            } catch let error as GatehouseError {
                #expect(error.code == .storeFailure)
                #expect(error.message.contains("audit log unavailable"))
            }
            #expect(try await store.read { tx in try await tx.invitations(state: nil) }.isEmpty)
        }
    }

    /// Concurrent commits share SQLite transactions; a caller whose body fails loses only its
    /// own changes, and the log stays gap-free.
    @Test func groupCommitIsolatesFailures() async throws {
        struct Refused: Error {}
        try await TestStore.with(.sqlite) { store in
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        do {
                            try await store.commit { tx in
                                try await tx.insertInvitation(StoreConformanceTests.invitation("u\(i)"))
                                if i % 7 == 0 { throw Refused() }
                                return Change((), event: StoreConformanceTests.event("u\(i)"))
                            }
                            return true
                        } catch is Refused {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            let committed = outcomes.filter { $0 }.count
            #expect(committed == 200 - 29)
            let (invitations, records) = try await store.read { tx in
                (try await tx.invitations(state: nil), try await tx.auditRecords(after: 0, limit: 1000))
            }
            #expect(invitations.count == committed)
            #expect(records.map(\.sequence) == Array(1...Int64(committed)))
            #expect(Set(invitations.map(\.username.rawValue)) == Set(records.map(\.event.subject)))
            #expect(!invitations.contains { Int($0.username.rawValue.dropFirst())! % 7 == 0 })
        }
    }

    @Test func aFileThatIsNotADatabaseIsAClearError() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("junk.sqlite")
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        do {
            _ = try await SQLStore.openSQLite(path: path, logger: self.logger, time: SystemTimeSource())
            Issue.record("junk was opened as a database")
        } catch let error as GatehouseError {
            #expect(error.code == .storeFailure || error.code == .storeUnreachable)
            #expect(error.message.contains("junk.sqlite"))
        }
    }

    @Test func rootKeyFileIsCreatedOnceAndNeverOverwritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("root.key")
        #expect(try DataDirectory.readRootKey(at: path) == nil)
        let created = try DataDirectory.createRootKey(at: path, random: SystemRandomSource())
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        #expect(attributes[.size] as? Int == 32)
        // A second creation (a replica racing) returns the existing key and leaves the file alone.
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let second = try DataDirectory.createRootKey(at: path, random: SystemRandomSource())
        #expect(second.checkValue == created.checkValue)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["root.key"])
    }

    @Test func dataDirectoryIsCreatedPrivate() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let data = try DataDirectory.prepare(dir.file("a/b/data"))
        let mode = try FileManager.default.attributesOfItem(atPath: data.path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        #expect(!data.isGroupOrWorldAccessible)
        #expect(data.rootKeyPath(environment: ["GATEHOUSE_ROOT_KEY_FILE": "/run/secrets/gh"]) == "/run/secrets/gh")
        #expect(data.rootKeyPath(environment: [:]) == dir.file("a/b/data/root.key"))
    }

    @Test func adminSocketPathsThatAreTooLongAreRefused() {
        let long = "/tmp/" + String(repeating: "d", count: 120) + "/admin.sock"
        #expect(throws: GatehouseError.self) { try AdminSocket.prepare(long) }
    }

    @Test func oneServerPerDataDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let data = try DataDirectory.prepare(dir.file("data"))
        var first: DataDirectoryLock? = try DataDirectoryLock.acquire(data)
        do {
            _ = try DataDirectoryLock.acquire(data)
            Issue.record("a second lock on the same data dir was granted")
        } catch {
            #expect(error.code == .serverAlreadyRunning)
        }
        #expect(first != nil)
        first = nil  // released: the next server may take it
        #expect(throws: Never.self) { _ = try DataDirectoryLock.acquire(data) }
    }

    @Test func unsafePermissionsAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let open = dir.file("open")
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        do {
            _ = try DataDirectory.prepare(open)
            Issue.record("a world-writable data dir was accepted")
        } catch {
            #expect(error.message.contains("writable by group or others (mode 777)"))
        }
        let key = dir.file("root.key")
        FileManager.default.createFile(atPath: key, contents: Data(repeating: 1, count: 32), attributes: [.posixPermissions: 0o644])
        do {
            _ = try DataDirectory.readRootKey(at: key)
            Issue.record("a world-readable root key was accepted")
        } catch {
            #expect(error.message.contains("accessible to group or others (mode 644); chmod 600 it"))
        }
    }
}
