import Crypto
import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseStorage
import Logging

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
    static func measure(iterations: Int, rounds: Int = 7, _ body: () throws -> Void) rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<iterations { try body() }
            let elapsed = ContinuousClock.now - start
            samples.append(Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
        }
        return samples.sorted()[samples.count / 2]
    }

    @MainActor static func measureAsync(iterations: Int, rounds: Int = 5, _ body: () async throws -> Void) async rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<iterations { try await body() }
            let elapsed = ContinuousClock.now - start
            samples.append(Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
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
        var results: [Result] = []

        let configBytes = Array(configText.utf8)
        let jsonData = Data(configJSON.utf8)
        results.append(Result(
            name: "config parse (TOML subset)", ours: try measure(iterations: 20_000) { _ = try ConfigParser(fileName: "b").parse(configBytes) },
            baselineName: "JSONSerialization, same content", baseline: try measure(iterations: 20_000) { _ = try JSONSerialization.jsonObject(with: jsonData) }
        ))

        let rootKey = try RootKey(bytes: Array(repeating: 1, count: 32))
        let sealer = KeySealer(rootKey: rootKey)
        let secret = Array(repeating: UInt8(7), count: 32)
        let blob = sealer.seal(secret, purpose: .sshUserCA, random: SystemRandomSource())
        let key = SymmetricKey(data: Array(repeating: UInt8(1), count: 32))
        let box = try AES.GCM.seal(secret, using: key)
        results.append(Result(
            name: "unseal a key (KeySealer.open)", ours: try measure(iterations: 50_000) { _ = try sealer.open(blob, purpose: .sshUserCA) },
            baselineName: "raw AES.GCM.open", baseline: try measure(iterations: 50_000) { _ = try AES.GCM.open(box, using: key) }
        ))

        results.append(Result(
            name: "invitation token (256-bit, hashed)", ours: measure(iterations: 50_000) { _ = InvitationToken.generate(using: SystemRandomSource()).hash },
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
            let service = InvitationService(environment: ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource()), publicURL: publicURL)
            var n = 0
            return try await measureAsync(iterations: 200) {
                n += 1
                _ = try await service.invite(username: try Username(validating: "u\(n)"), email: nil, role: .member, actor: "bench")
            }
        }
        results.append(Result(
            name: "audited invite, SQLite (WAL, synchronous=FULL)", ours: try await inviteLoop(sqlite),
            baselineName: "same use case, in-memory store", baseline: try await inviteLoop(memory)
        ))
        results.append(Result(
            name: "status read, SQLite", ours: try await measureAsync(iterations: 500) { _ = try await sqlite.read { tx in try await tx.countUsers() } },
            baselineName: "in-memory store", baseline: try await measureAsync(iterations: 500) { _ = try await memory.read { tx in try await tx.countUsers() } }
        ))
        try await sqlite.close()

        print("benchmark".padding(toLength: 48, withPad: " ", startingAt: 0), "ours", "      baseline".padding(toLength: 48, withPad: " ", startingAt: 0), "ratio")
        for r in results {
            let line = r.name.padding(toLength: 46, withPad: " ", startingAt: 0)
                + Self.format(r.ours).leftPad(12) + "   " + (r.baselineName.padding(toLength: 34, withPad: " ", startingAt: 0) + Self.format(r.baseline).leftPad(12))
                + String(format: "%9.2fx", r.ours / r.baseline)
            print(line)
        }
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
