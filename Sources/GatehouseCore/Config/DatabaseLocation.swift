import Foundation

/// Where state lives: an SQLite file (the embedded default) or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Accepts `postgres://…`, `postgresql://…`, `sqlite:PATH`; empty means the default SQLite file.
    public init(parsing text: String?, dataDir: String) throws(GatehouseError) {
        guard let text, !text.isEmpty else {
            self = .sqlite(path: dataDir + "/gatehouse.sqlite")
            return
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let c = URLComponents(string: text), c.host?.isEmpty == false else {
                throw GatehouseError(.configInvalid, "database URL is not a valid postgres:// URL")
            }
            self = .postgres(url: text)
        } else if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw GatehouseError(.configInvalid, "database 'sqlite:' needs a file path") }
            self = .sqlite(path: path)
        } else {
            throw GatehouseError(.configInvalid, "database must be postgres://USER@HOST/DB or sqlite:PATH")
        }
    }

    public var kind: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres: "postgresql"
        }
    }

    /// Safe to log: the password of a PostgreSQL URL is replaced by `***`.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url):
            guard var c = URLComponents(string: url) else { return "postgres://(unparseable)" }
            if c.password != nil { c.password = "***" }
            return c.string ?? "postgres://(unparseable)"
        }
    }
}
