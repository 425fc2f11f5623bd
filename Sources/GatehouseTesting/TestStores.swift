import Foundation
public import GatehouseCore
public import GatehouseServices
import GatehouseStorage
import Logging
import PostgresNIO

/// The store implementations every conformance test runs against.
///
/// PostgreSQL joins when `GATEHOUSE_TEST_POSTGRES_URL` names a server (scripts/test starts a
/// throwaway cluster and sets it); each test then gets a database of its own. When
/// `GATEHOUSE_REQUIRE_POSTGRES=1` is set, a missing URL is a test failure, not a skip.
public enum TestStoreKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case memory
    case sqlite
    case postgres

    public var description: String { self.rawValue }

    public static var postgresURL: String? {
        let value = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_POSTGRES_URL"]
        return value?.isEmpty == false ? value : nil
    }

    public static var postgresRequired: Bool {
        ProcessInfo.processInfo.environment["GATEHOUSE_REQUIRE_POSTGRES"] == "1"
    }

    /// The kinds available in this run.
    public static var available: [TestStoreKind] {
        Self.postgresURL == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres]
    }

    /// The SQL kinds available in this run.
    public static var sql: [TestStoreKind] { Self.available.filter { $0 != .memory } }
}

/// A store made for one test, with whatever it needs to clean up.
public struct TestStore: Sendable {
    public let store: any Store
    let cleanup: @Sendable () async -> Void

    public static func make(_ kind: TestStoreKind, time: any TimeSource = SystemTimeSource()) async throws -> TestStore {
        var logger = Logger(label: "gatehouse.test.store")
        logger.logLevel = .critical
        switch kind {
        case .memory:
            return TestStore(store: InMemoryStore(), cleanup: {})
        case .sqlite:
            let dir = try TemporaryDirectory()
            let store = try await SQLStore.openSQLite(path: dir.file("test.sqlite"), logger: logger, time: time)
            return TestStore(
                store: store,
                cleanup: {
                    try? await store.close()
                    dir.remove()
                })
        case .postgres:
            let url = try await TestPostgres.createDatabase()
            let store = try await SQLStore.openPostgres(url: url.url, logger: logger, time: time)
            return TestStore(
                store: store,
                cleanup: {
                    try? await store.close()
                    await TestPostgres.dropDatabase(url.name)
                })
        }
    }

    public func close() async { await self.cleanup() }

    /// Runs `body` with a fresh store of `kind` and always closes it (dropping a PostgreSQL
    /// test database) before returning.
    public static func with(_ kind: TestStoreKind, time: any TimeSource = SystemTimeSource(), _ body: (any Store) async throws -> Void) async throws {
        let test = try await TestStore.make(kind, time: time)
        do {
            try await body(test.store)
        } catch {
            await test.close()
            throw error
        }
        await test.close()
    }
}

/// Creates and drops throwaway databases on the test PostgreSQL server.
public enum TestPostgres {
    public struct Database: Sendable {
        public let name: String
        public let url: String
    }

    /// A new, empty database; its URL points at it.
    public static func createDatabase() async throws -> Database {
        guard let base = TestStoreKind.postgresURL, var components = URLComponents(string: base) else {
            throw GatehouseError(.configInvalid, "GATEHOUSE_TEST_POSTGRES_URL is not set")
        }
        let name = "gh_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await self.admin("CREATE DATABASE \(name)")
        components.path = "/" + name
        return Database(name: name, url: components.string!)
    }

    public static func dropDatabase(_ name: String) async {
        try? await self.admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs one statement outside a transaction on the server's default database.
    static func admin(_ sql: String) async throws {
        guard let base = TestStoreKind.postgresURL, let c = URLComponents(string: base) else { return }
        let configuration = PostgresClient.Configuration(
            host: c.host ?? "127.0.0.1", port: c.port ?? 5432, username: c.user ?? "postgres", password: c.password,
            database: "postgres", tls: .disable
        )
        let client = PostgresClient(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.query(PostgresQuery(unsafeSQL: sql))
        }
    }
}
