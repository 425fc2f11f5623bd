import Crypto
import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import GatehouseStorage
import Logging
import SQLKit
import SQLiteKit

/// Micro-benchmarks for the foundation, each printed beside a baseline measured in the same run:
/// what we do, next to the cheapest comparable thing the platform offers.
@main
enum Bench {
    struct Result {
        let name: String
        let ours: Double
        let baselineName: String
        let baseline: Double
    }

    /// Median nanoseconds per operation over `rounds` rounds of `iterations` calls.
    /// Operations per second, best of 5 rounds of `n` calls of `body(i)`.
    static func bestRate(_ n: Int, _ body: (Int) throws -> Void) rethrows -> Double {
        var best = 0.0
        for _ in 0..<5 {
            let start = ContinuousClock.now
            for i in 0..<n { try body(i) }
            best = max(best, Double(n) / Self.seconds(ContinuousClock.now - start))
        }
        return best
    }

    static func measure(iterations: Int, rounds: Int = 7, _ body: () throws -> Void) rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<iterations { try body() }
            let elapsed = ContinuousClock.now - start
            samples.append(
                Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
        }
        return samples.sorted()[samples.count / 2]
    }

    @MainActor static func measureAsync(iterations: Int, rounds: Int = 5, _ body: () async throws -> Void) async rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<iterations { try await body() }
            let elapsed = ContinuousClock.now - start
            samples.append(
                Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
        }
        return samples.sorted()[samples.count / 2]
    }

    static let configText = """
        # A production-like configuration.
        data_dir = "/var/lib/gatehouse"
        listen = "0.0.0.0:8443"
        public_url = "https://gatehouse.example.org"
        database = "postgres://gatehouse@db.internal/gatehouse?sslmode=verify-full"
        log_format = "json"
        log_level = "info"

        [tls]
        cert = "/etc/gatehouse/tls/cert.pem"
        key = "/etc/gatehouse/tls/key.pem"
        """
    static let configJSON = """
        {"data_dir": "/var/lib/gatehouse", "listen": "0.0.0.0:8443", "public_url": "https://gatehouse.example.org",
         "database": "postgres://gatehouse@db.internal/gatehouse?sslmode=verify-full", "log_format": "json", "log_level": "info",
         "tls": {"cert": "/etc/gatehouse/tls/cert.pem", "key": "/etc/gatehouse/tls/key.pem"}}
        """

    static func main() async throws {
        let args = CommandLine.arguments
        if args.count == 7, args[1] == "signin-load" {
            // gatehouse-bench signin-load URL ORIGIN TOKEN CONCURRENCY SECONDS (scripts/bench runs it).
            try await SignInLoad.run(url: args[2], origin: args[3], token: args[4], concurrency: Int(args[5]) ?? 8, seconds: Double(args[6]) ?? 10)
            return
        }
        if args.count == 2, args[1] == "ssh" {
            try SSHBench.run()
            return
        }
        if args.count == 3, args[1] == "network" {
            try NetworkBench.run(out: args[2])
            return
        }
        if args.count == 2, args[1] == "pki" {
            try PKIBench.run()
            return
        }
        var results: [Result] = []

        let configBytes = Array(configText.utf8)
        let jsonData = Data(configJSON.utf8)
        results.append(
            Result(
                name: "config parse (TOML subset)", ours: try measure(iterations: 20_000) { _ = try ConfigParser(fileName: "b").parse(configBytes) },
                baselineName: "JSONSerialization, same content",
                baseline: try measure(iterations: 20_000) { _ = try JSONSerialization.jsonObject(with: jsonData) }
            ))

        let rootKey = try RootKey(bytes: Array(repeating: 1, count: 32))
        let sealer = KeySealer(rootKey: rootKey)
        let secret = Array(repeating: UInt8(7), count: 32)
        let blob = sealer.seal(secret, purpose: .sshUserCA, random: SystemRandomSource())
        let key = SymmetricKey(data: Array(repeating: UInt8(1), count: 32))
        let box = try AES.GCM.seal(secret, using: key)
        results.append(
            Result(
                name: "unseal a key (KeySealer.open)", ours: try measure(iterations: 50_000) { _ = try sealer.open(blob, purpose: .sshUserCA) },
                baselineName: "raw AES.GCM.open", baseline: try measure(iterations: 50_000) { _ = try AES.GCM.open(box, using: key) }
            ))

        results.append(
            Result(
                name: "invitation token (256-bit, hashed)",
                ours: measure(iterations: 50_000) { _ = InvitationToken.generate(using: SystemRandomSource()).hash },
                baselineName: "UUID().uuidString", baseline: measure(iterations: 50_000) { _ = UUID().uuidString }
            ))

        // Store: one audited commit (an invitation plus its event) on SQLite with synchronous=FULL.
        let dir = NSTemporaryDirectory() + "gatehouse-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let sqlite = try await SQLStore.openSQLite(path: dir + "/bench.sqlite", logger: logger, time: SystemTimeSource())
        let memory = InMemoryStore()
        let publicURL = try PublicURL(parsing: "http://localhost:8080")
        func inviteLoop(_ store: any Store) async throws -> Double {
            let service = InvitationService(
                environment: ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource()), publicURL: publicURL)
            var n = 0
            return try await measureAsync(iterations: 200) {
                n += 1
                _ = try await service.invite(username: try Username(validating: "u\(n)"), email: nil, role: .member, actor: "bench")
            }
        }
        results.append(
            Result(
                name: "audited invite, SQLite (WAL, synchronous=FULL)", ours: try await inviteLoop(sqlite),
                baselineName: "same use case, in-memory store", baseline: try await inviteLoop(memory)
            ))
        results.append(
            Result(
                name: "status read, SQLite",
                ours: try await measureAsync(iterations: 500) { _ = try await sqlite.read { tx in try await tx.countUsers() } },
                baselineName: "in-memory store",
                baseline: try await measureAsync(iterations: 500) { _ = try await memory.read { tx in try await tx.countUsers() } }
            ))
        try await sqlite.close()

        // Durable audit appends on SQLite: 64 concurrent writers through group commit, against a
        // plain loop of single-row INSERT transactions at the same durability (WAL, synchronous=FULL).
        let appends = 20_000
        let grouped = try await SQLStore.openSQLite(path: dir + "/append.sqlite", logger: logger, time: SystemTimeSource())
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    for i in 0..<(appends / 64) {
                        try await grouped.commit { _ in
                            Change((), event: AuditEvent(code: .invitationCreated, time: Date(), actor: "bench", subject: "w\(worker)/\(i)"))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let groupedRate = Double(appends / 64 * 64) / Self.seconds(ContinuousClock.now - started)
        try await grouped.close()
        let plainRate = try await Self.plainSQLiteInsertRate(path: dir + "/plain.sqlite", count: 2_000)
        results.append(
            Result(
                name: "durable audit appends/s, SQLite group commit", ours: 1e9 / groupedRate,
                baselineName: "plain INSERT+COMMIT loop, same fsync", baseline: 1e9 / plainRate
            ))

        // Offline verification: canonical encoding, leaf hashes, tree and a signed checkpoint.
        let count = 500_000
        var entries: [VerifiableEntry] = []
        entries.reserveCapacity(count)
        var accumulator = MerkleAccumulator()
        for i in 1...count {
            let event = AuditEvent(
                code: .invitationCreated, time: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)), actor: "admin-socket",
                subject: "invitation:\(i)", details: ["username": "user\(i)", "role": "member"])
            let canonical = CanonicalEntry.encode(sequence: Int64(i), event: event)
            let leaf = Merkle.leafHash(canonical)
            accumulator.append(leaf)
            entries.append(VerifiableEntry(sequence: Int64(i), canonical: canonical, recordedHash: leaf))
        }
        let auditKey = Curve25519.Signing.PrivateKey()
        let note = try Checkpoint(origin: "bench", size: count, root: accumulator.root, time: Date()).signed(with: auditKey)
        let noteVerifier = NoteVerifier(name: "bench", publicKey: Array(auditKey.publicKey.rawRepresentation))
        let verifyStart = ContinuousClock.now
        let verification = AuditVerifier.verify(entries: entries, checkpoints: [note], verifier: noteVerifier)
        let verifyTime = ContinuousClock.now - verifyStart
        precondition(verification.isValid && verification.entries == count)
        let hashStart = ContinuousClock.now
        var sink: UInt8 = 0
        for entry in entries { sink ^= Array(SHA256.hash(data: entry.canonical))[0] }
        let hashTime = ContinuousClock.now - hashStart
        results.append(
            Result(
                name: "offline verify, per entry (\(count / 1000)k entries)", ours: Self.seconds(verifyTime) * 1e9 / Double(count),
                baselineName: "one plain SHA-256 per entry\(sink == 0 ? "" : "")", baseline: Self.seconds(hashTime) * 1e9 / Double(count)
            ))
        print(
            "durable appends: \(Int(groupedRate))/s with group commit vs \(Int(plainRate))/s plain; verification: \(Int(Double(count) / Self.seconds(verifyTime))) entries/s"
        )

        print(
            "benchmark".padding(toLength: 48, withPad: " ", startingAt: 0), "ours",
            "      baseline".padding(toLength: 48, withPad: " ", startingAt: 0), "ratio")
        for r in results {
            let line =
                r.name.padding(toLength: 46, withPad: " ", startingAt: 0)
                + Self.format(r.ours).leftPad(12) + "   "
                + (r.baselineName.padding(toLength: 34, withPad: " ", startingAt: 0) + Self.format(r.baseline).leftPad(12))
                + String(format: "%9.2fx", r.ours / r.baseline)
            print(line)
        }
        PolicyBench.run()
        try await WebAuthnBench.run()
        try SSHBench.run()
        try PKIBench.run()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Single-row INSERT transactions, each committed on its own, with the store's durability.
    static func plainSQLiteInsertRate(path: String, count: Int) async throws -> Double {
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        let db = connection.sql(queryLogLevel: nil)
        _ = try await db.raw("PRAGMA journal_mode=WAL").all()
        try await db.raw("PRAGMA synchronous=FULL").run()
        try await db.raw("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)").run()
        let start = ContinuousClock.now
        for i in 0..<count {
            try await db.raw("BEGIN IMMEDIATE").run()
            try await db.raw("INSERT INTO t (seq, body) VALUES (\(bind: i), \(bind: "entry \(i)"))").run()
            try await db.raw("COMMIT").run()
        }
        let rate = Double(count) / Self.seconds(ContinuousClock.now - start)
        try await connection.close()
        return rate
    }

    static func format(_ ns: Double) -> String {
        if ns >= 1e6 { return String(format: "%.2f ms", ns / 1e6) }
        if ns >= 1e3 { return String(format: "%.2f µs", ns / 1e3) }
        return String(format: "%.0f ns", ns)
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        self.count >= width ? self : String(repeating: " ", count: width - self.count) + self
    }
}
