import Foundation
import GatehouseCore
import GatehouseServices
import SQLKit

/// People's WireGuard devices and hosts' WireGuard registrations (migration 9).
extension SQLTransaction {
    private static let deviceColumns = "id, user_id, username, name, public_key, address_index, created_at, expires_at, revoked_at, grant_id"
    private static let hostColumns = "host, public_key, endpoint, enrolled_at, updated_at"

    private static func key(_ text: String) throws -> WireGuardKey {
        do { return try WireGuardKey(base64: text) } catch { throw GatehouseError(.storeFailure, "stored WireGuard key is malformed") }
    }

    private static func device(_ row: any SQLRow) throws -> NetworkDeviceRecord {
        NetworkDeviceRecord(
            id: try row.decode(column: "id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            username: try row.decode(column: "username", as: String.self), name: try row.decode(column: "name", as: String.self),
            publicKey: try Self.key(try row.decode(column: "public_key", as: String.self)),
            addressIndex: try row.decode(column: "address_index", as: Int64.self),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "expires_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date),
            grantID: try row.decode(column: "grant_id", as: String?.self)
        )
    }

    private static func networkHost(_ row: any SQLRow) throws -> NetworkHostRecord {
        NetworkHostRecord(
            host: try row.decode(column: "host", as: String.self), publicKey: try Self.key(try row.decode(column: "public_key", as: String.self)),
            endpoint: try row.decode(column: "endpoint", as: String.self),
            enrolledAt: Self.date(try row.decode(column: "enrolled_at", as: Int64.self)),
            updatedAt: Self.date(try row.decode(column: "updated_at", as: Int64.self))
        )
    }

    func networkDevices(userID: String?, liveAt: Date?) async throws -> [NetworkDeviceRecord] {
        let live = liveAt.map(Self.millis)
        return try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.deviceColumns) FROM net_devices
            WHERE (\(bind: userID) IS NULL OR user_id = \(bind: userID)) AND (\(bind: live) IS NULL OR (revoked_at IS NULL AND expires_at > \(bind: live)))
            ORDER BY created_at DESC, id DESC
            """
        ).all().map(Self.device)
    }

    func networkDevice(id: String) async throws -> NetworkDeviceRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.deviceColumns) FROM net_devices WHERE id = \(bind: id)").all().first.map(Self.device)
    }

    func networkDevice(publicKey key: WireGuardKey) async throws -> NetworkDeviceRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.deviceColumns) FROM net_devices WHERE public_key = \(bind: key.description)").all().first.map(
            Self.device)
    }

    func maxNetworkDeviceIndex() async throws -> Int64 {
        try await self.db.raw("SELECT COALESCE(MAX(address_index), 0) AS n FROM net_devices").first()?.decode(column: "n", as: Int64.self) ?? 0
    }

    func networkHosts() async throws -> [NetworkHostRecord] {
        try await self.db.raw("SELECT \(unsafeRaw: Self.hostColumns) FROM net_hosts ORDER BY host").all().map(Self.networkHost)
    }

    func insertNetworkDevice(_ r: NetworkDeviceRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO net_devices (\(unsafeRaw: Self.deviceColumns))
            VALUES (\(bind: r.id), \(bind: r.userID), \(bind: r.username), \(bind: r.name), \(bind: r.publicKey.description), \(bind: r.addressIndex),
                    \(bind: Self.millis(r.createdAt)), \(bind: Self.millis(r.expiresAt)), \(bind: r.revokedAt.map(Self.millis)), \(bind: r.grantID))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "that WireGuard key or device address is taken") }
    }

    func revokeNetworkDevice(id: String, at time: Date) async throws -> Bool {
        !(try await self.db.raw(
            "UPDATE net_devices SET revoked_at = \(bind: Self.millis(time)) WHERE id = \(bind: id) AND revoked_at IS NULL RETURNING id"
        ).all().isEmpty)
    }

    func revokeNetworkDevices(userID: String, at time: Date) async throws -> Int {
        try await self.db.raw(
            """
            UPDATE net_devices SET revoked_at = \(bind: Self.millis(time))
            WHERE user_id = \(bind: userID) AND revoked_at IS NULL AND expires_at > \(bind: Self.millis(time)) RETURNING id
            """
        ).all().count
    }

    func saveNetworkHost(_ r: NetworkHostRecord) async throws {
        let other = try await self.db.raw(
            "SELECT host FROM net_hosts WHERE public_key = \(bind: r.publicKey.description) AND host <> \(bind: r.host)"
        ).all()
        guard other.isEmpty else { throw GatehouseError(.conflict, "another host has that WireGuard key") }
        try await self.db.raw(
            """
            INSERT INTO net_hosts (\(unsafeRaw: Self.hostColumns))
            VALUES (\(bind: r.host), \(bind: r.publicKey.description), \(bind: r.endpoint), \(bind: Self.millis(r.enrolledAt)), \(bind: Self.millis(r.updatedAt)))
            ON CONFLICT (host) DO UPDATE SET public_key = excluded.public_key, endpoint = excluded.endpoint, enrolled_at = excluded.enrolled_at, updated_at = excluded.updated_at
            """
        ).run()
    }

    func deleteNetworkHost(name: String) async throws -> Bool {
        !(try await self.db.raw("DELETE FROM net_hosts WHERE host = \(bind: name) RETURNING host").all().isEmpty)
    }
}
