import Foundation
import GatehouseCore
import NIOSSL
import PostgresNIO

/// Turns a `postgres://user:password@host:port/database?sslmode=...` URL into a client configuration.
/// `sslmode` is `disable`, `prefer` (the default: TLS when the server offers it), `require`
/// (TLS, certificate not checked, as libpq does) or `verify-full` (TLS with the system trust store
/// and host name check).
enum PostgresURL {
    static func configuration(from url: String) throws(GatehouseError) -> PostgresClient.Configuration {
        guard let c = URLComponents(string: url), let host = c.host, !host.isEmpty else {
            throw GatehouseError(.configInvalid, "database URL is not a valid postgres:// URL")
        }
        // Decode percent-escapes exactly once (`user`/`password` would decode them already).
        let username = c.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = c.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        let database = path.isEmpty ? nil : path
        var tls: PostgresClient.Configuration.TLS = .prefer(.makeClientConfiguration())
        for item in c.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", "disable"): tls = .disable
            case ("sslmode", "prefer"): tls = .prefer(.makeClientConfiguration())
            case ("sslmode", "require"):
                var config = TLSConfiguration.makeClientConfiguration()
                config.certificateVerification = .none
                tls = .require(config)
            case ("sslmode", "verify-full"): tls = .require(.makeClientConfiguration())
            case ("sslmode", let other):
                throw GatehouseError(.configInvalid, "database URL: sslmode '\(other)' is not one of disable, prefer, require, verify-full")
            case (let name, _):
                throw GatehouseError(.configInvalid, "database URL: unknown parameter '\(name)'")
            }
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: c.port ?? 5432, username: username, password: password, database: database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        // Server-side bounds, so a stuck statement or an abandoned transaction cannot hold a
        // connection (and the locks it took) forever.
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "15000"),
            ("idle_in_transaction_session_timeout", "30000"),
        ]
        configuration.options.maximumConnections = 10
        return configuration
    }
}
