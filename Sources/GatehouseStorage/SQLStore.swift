public import Foundation
public import GatehouseCore
public import GatehouseServices
public import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit

/// The ``Store`` over SQL: one implementation and one set of queries for SQLite (embedded, the
/// default) and PostgreSQL (for several replicas sharing state). Only connection handling and a
/// few types differ per dialect.
///
/// SQLite runs in WAL mode with `synchronous=FULL`, so a commit returns only once it is durable;
/// transactions are serialized over one connection (SQLite has one writer anyway).
/// PostgreSQL uses a pooled `PostgresClient`; each transaction leases one connection.
public final class SQLStore: Store {
    enum Backend: Sendable {
        case sqlite(SQLiteConnection, AsyncGate, SQLiteGroupCommit)
        case postgres(PostgresClient, Task<Void, Never>)
    }

    let backend: Backend
    let logger: Logger
    /// How long a PostgreSQL transaction may wait for a connection before failing with
    /// `store.unreachable`. Only the wait is bounded: once a transaction has begun it runs to
    /// its end, so a timeout never leaves a caller unsure whether a change was made.
    let leaseTimeout: Duration = .seconds(5)
    /// Moves after every write through this process (see ``Store/writeGeneration``).
    let generation = LockedBox<UInt64>(0)

    public var writeGeneration: UInt64? {
        if case .sqlite = self.backend { return self.generation.value }
        return nil
    }

    private init(backend: Backend, logger: Logger) {
        self.backend = backend
        self.logger = logger
    }

    public var kind: String {
        switch self.backend {
        case .sqlite: "sqlite"
        case .postgres: "postgresql"
        }
    }

    var dialect: SQLDialectKind {
        switch self.backend {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    // MARK: opening

    /// Opens (creating if needed) the SQLite file at `path` and brings its schema up to date.
    public static func openSQLite(path: String, logger: Logger, time: any TimeSource) async throws -> SQLStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw GatehouseError(.storeUnreachable, "cannot open SQLite database \(path): \(error)")
        }
        let gate = AsyncGate()
        let store = SQLStore(backend: .sqlite(connection, gate, SQLiteGroupCommit(connection: connection, gate: gate)), logger: logger)
        do {
            let db = connection.sql(queryLogLevel: .trace)
            // WAL with synchronous=FULL: a commit is acknowledged only once it is on disk.
            _ = try await db.raw("PRAGMA journal_mode=WAL").all()
            try await db.raw("PRAGMA synchronous=FULL").run()
            try await db.raw("PRAGMA foreign_keys=ON").run()
            try await db.raw("PRAGMA busy_timeout=5000").run()
            try await store.migrate(time: time)
        } catch {
            try? await connection.close()
            throw store.mapError(error, action: "prepare the SQLite database \(path)")
        }
        return store
    }

    /// Connects to PostgreSQL at `url`, failing within `timeout` when the server cannot be reached,
    /// and brings the schema up to date (serialized across replicas by an advisory lock).
    public static func openPostgres(url: String, logger: Logger, time: any TimeSource, timeout: Duration = .seconds(10)) async throws -> SQLStore {
        let configuration = try PostgresURL.configuration(from: url)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = SQLStore(backend: .postgres(client, runner), logger: logger)
        do {
            try await withTimeout(timeout) { try await store.ping() }
            try await store.migrate(time: time)
        } catch {
            runner.cancel()
            let redacted = (try? DatabaseLocation(parsing: url, dataDir: "")).map(String.init(describing:)) ?? "postgres"
            if let error = error as? GatehouseError, [.storeSchemaTooNew, .configInvalid].contains(error.code) { throw error }
            throw GatehouseError(.storeUnreachable, "cannot reach PostgreSQL at \(redacted): \(Self.describe(error))")
        }
        return store
    }

    public func close() async throws {
        switch self.backend {
        case .sqlite(let connection, let gate, _):
            try await gate.withExclusiveAccess { try await connection.close() }
        case .postgres(_, let runner):
            runner.cancel()
        }
    }

    // MARK: Store

    public func recordCheckpoint(_ checkpoint: CheckpointRecord) async throws -> Bool {
        try await self.withTransaction(readOnly: false) { db in
            try await SQLTransaction(db: db, dialect: self.dialect).recordCheckpoint(checkpoint)
        }
    }

    public func recordSessionActivity(tokenHash: String, at time: Date) async throws {
        try await self.withTransaction(readOnly: false) { db in
            try await SQLTransaction(db: db, dialect: self.dialect).touchSession(tokenHash: tokenHash, at: time, steppedUp: false)
        }
    }

    public func recordBastionHeartbeat(replica: String, sessions ids: [String], at time: Date) async throws -> Set<String> {
        try await self.withTransaction(readOnly: false) { db in
            try await SQLTransaction(db: db, dialect: self.dialect).bastionHeartbeat(replica: replica, sessions: ids, at: time)
        }
    }

    public func recordDevicePoll(deviceCodeHash: String, at time: Date, interval: Int) async throws {
        try await self.withTransaction(readOnly: false) { db in
            try await db.raw(
                """
                UPDATE oidc_device_authorizations SET last_polled_at = \(bind: SQLTransaction.millis(time)), interval_s = \(bind: Int64(interval))
                WHERE device_code_hash = \(bind: deviceCodeHash)
                """
            ).run()
        }
    }

    public func ping() async throws {
        try await self.withTransaction(readOnly: true) { db in
            _ = try await db.raw("SELECT 1 AS one").all()
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try await self.withTransaction(readOnly: true) { db in
            try await body(SQLTransaction(db: db, dialect: self.dialect))
        }
    }

    public func commit<T: Sendable>(_ body: @escaping @Sendable (any StoreWriter) async throws -> Change<T>) async throws -> T {
        // After the commit (or its failure): a reader that saw the old generation re-reads.
        defer { self.generation.mutate { $0 &+= 1 } }
        if case .sqlite(_, _, let group) = self.backend {
            let dialect = self.dialect
            do {
                return try await group.submit { db, sequencer in
                    let tx = SQLTransaction(db: db, dialect: dialect, sequencer: sequencer)
                    let change = try await body(tx)
                    try await tx.appendAudit(change.events)
                    return change.value
                }
            } catch {
                throw self.mapError(error, action: "write to the store")
            }
        }
        return try await self.withTransaction(readOnly: false) { db in
            let tx = SQLTransaction(db: db, dialect: self.dialect)
            let change = try await body(tx)
            try await tx.appendAudit(change.events)
            return change.value
        }
    }

    // MARK: transactions

    func withTransaction<T: Sendable>(readOnly: Bool, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            switch self.backend {
            case .sqlite(let connection, let gate, _):
                return try await gate.withExclusiveAccess {
                    let db = connection.sql(queryLogLevel: .trace)
                    return try await Self.run(db, begin: readOnly ? "BEGIN" : "BEGIN IMMEDIATE", body)
                }
            case .postgres(let client, _):
                // The task group below awaits its children before returning, so `body` does not
                // actually outlive this call.
                return try await withoutActuallyEscaping(body) { body in
                    try await Self.withLeaseDeadline(self.leaseTimeout) { started in
                        try await client.withConnection { connection in
                            try started()
                            let db = connection.sql(queryLogLevel: .trace)
                            return try await Self.run(db, begin: readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", body)
                        }
                    }
                }
            }
        } catch {
            throw self.mapError(error, action: readOnly ? "read from the store" : "write to the store")
        }
    }

    /// Runs `body`, failing with `store.unreachable` if it has not called `started()` within
    /// `timeout`. `started()` throws if the deadline already passed, so the body either runs
    /// entirely or not at all.
    static func withLeaseDeadline<T: Sendable>(
        _ timeout: Duration, _ body: @escaping @Sendable (_ started: @escaping @Sendable () throws -> Void) async throws -> T
    ) async throws -> T {
        let phase = LockedBox(LeasePhase.waiting)
        let started: @Sendable () throws -> Void = {
            let ok = phase.mutate { p -> Bool in
                guard p == .waiting else { return false }
                p = .started
                return true
            }
            if !ok { throw GatehouseError(.storeUnreachable, "the database did not provide a connection within \(timeout)") }
        }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body(started) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                let expired = phase.mutate { p -> Bool in
                    guard p == .waiting else { return false }
                    p = .timedOut
                    return true
                }
                if expired { throw GatehouseError(.storeUnreachable, "the database did not provide a connection within \(timeout)") }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw GatehouseError(.internal, "transaction finished without a result")
        }
    }

    private static func run<T: Sendable>(_ db: any SQLDatabase, begin: String, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws
        -> T
    {
        try await db.raw(SQLQueryString(begin)).run()
        do {
            let value = try await body(db)
            try await db.raw("COMMIT").run()
            return value
        } catch {
            try? await db.raw("ROLLBACK").run()
            throw error
        }
    }

    /// Our own errors pass through; anything from the database becomes a clear `store.failure`
    /// while the detail goes to the log.
    func mapError(_ error: any Error, action: String) -> any Error {
        if let error = error as? GatehouseError { return error }
        // Errors raised by the caller's own code pass through untouched; only failures of the
        // database drivers and the network below them become `store.failure`.
        let origin = String(reflecting: type(of: error))
        guard
            ["PostgresNIO.", "SQLiteNIO.", "SQLKit.", "SQLiteKit.", "PostgresKit.", "NIOCore.", "NIOPosix.", "_ConnectionPoolModule."]
                .contains(where: origin.hasPrefix)
        else { return error }
        let detail = Self.describe(error)
        self.logger.error("store operation failed", metadata: ["action": "\(action)", "error": "\(detail)"])
        return GatehouseError(.storeFailure, "could not \(action): \(detail)")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        if let error = error as? SQLiteError { return error.message }
        return "\(error)"
    }

    // MARK: migrations

    func migrate(time: any TimeSource) async throws {
        let dialect = self.dialect
        try await self.withTransaction(readOnly: false) { db in
            if dialect == .postgres {
                // Serialize concurrent starts of several replicas; released at commit.
                try await db.raw("SELECT pg_advisory_xact_lock(7424513)").run()
            }
            try await db.raw(
                """
                CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL
                )
                """
            ).run()
            let rows = try await db.raw("SELECT version FROM gatehouse_schema_migrations ORDER BY version").all()
            let applied = Set(try rows.map { try $0.decode(column: "version", as: Int64.self) })
            if let newest = applied.max(), newest > Migrations.latestVersion {
                throw GatehouseError(
                    .storeSchemaTooNew,
                    "the database schema is at version \(newest), newer than this gatehouse knows (\(Migrations.latestVersion)); upgrade gatehouse"
                )
            }
            for migration in Migrations.all where !applied.contains(migration.version) {
                for statement in migration.statements(dialect) {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                let now = Int64(time.now().timeIntervalSince1970 * 1000)
                try await db.raw(
                    """
                    INSERT INTO gatehouse_schema_migrations (version, name, applied_at)
                    VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))
                    """
                ).run()
            }
        }
    }

    /// The schema version currently applied.
    public func schemaVersion() async throws -> Int64 {
        try await self.withTransaction(readOnly: true) { db in
            let rows = try await db.raw("SELECT COALESCE(MAX(version), 0) AS v FROM gatehouse_schema_migrations").all()
            return try rows.first?.decode(column: "v", as: Int64.self) ?? 0
        }
    }

    /// Runs one statement in its own transaction: for tests and maintenance tooling only.
    package func execute(unsafeSQL sql: String) async throws {
        defer { self.generation.mutate { $0 &+= 1 } }
        try await self.withTransaction(readOnly: false) { db in
            try await db.raw(SQLQueryString(sql)).run()
        }
    }
}

/// Where a transaction is in waiting for its connection (see ``SQLStore/withLeaseDeadline(_:_:)``).
enum LeasePhase: Sendable {
    case waiting, started, timedOut
}

/// Runs `body`, failing with a timeout error if it takes longer than `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw GatehouseError(.storeUnreachable, "timed out after \(timeout)")
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
