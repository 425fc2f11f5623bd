import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import SQLKit

/// The queries behind ``StoreReader`` and ``StoreWriter``, written once for both dialects.
/// Times are stored as milliseconds since 1970; byte strings as base64 text.
final class SQLTransaction: StoreWriter, @unchecked Sendable {
    // @unchecked: `db` is one connection inside one transaction, used by one task at a time.
    let db: any SQLDatabase
    let dialect: SQLDialectKind
    /// Set inside an SQLite group commit: audit sequence numbers come from here.
    let sequencer: AuditSequencer?

    init(db: any SQLDatabase, dialect: SQLDialectKind, sequencer: AuditSequencer? = nil) {
        self.db = db
        self.dialect = dialect
        self.sequencer = sequencer
    }

    /// The same rounding as the canonical audit encoding, so stored times re-hash identically.
    static func millis(_ date: Date) -> Int64 { CanonicalEntry.milliseconds(date) }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    static func user(_ row: any SQLRow) throws -> User {
        guard let status = User.Status(rawValue: try row.decode(column: "status", as: String.self)) else {
            throw GatehouseError(.storeFailure, "user record has an unknown status")
        }
        return User(
            id: try row.decode(column: "id", as: String.self),
            username: Username(uncheckedStored: try row.decode(column: "username", as: String.self)),
            email: try row.decode(column: "email", as: String?.self).map(EmailAddress.init(uncheckedStored:)),
            role: RoleName(uncheckedStored: try row.decode(column: "role", as: String.self)),
            status: status, createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
        )
    }
}
