import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: the private network: devices and host registrations (`SQLTransaction+Network.swift` is the SQL).
extension InMemoryTransaction {
    func networkDevices(userID: String?, liveAt: Date?) async throws -> [NetworkDeviceRecord] {
        self.state.networkDevices.values.filter { d in (userID.map { d.userID == $0 } ?? true) && (liveAt.map { d.isLive(at: $0) } ?? true) }
            .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    func networkDevice(id: String) async throws -> NetworkDeviceRecord? { self.state.networkDevices[id] }

    func networkDevice(publicKey key: WireGuardKey) async throws -> NetworkDeviceRecord? {
        self.state.networkDevices.values.first { $0.publicKey == key }
    }

    func maxNetworkDeviceIndex() async throws -> Int64 { self.state.networkDevices.values.map(\.addressIndex).max() ?? 0 }

    func networkHosts() async throws -> [NetworkHostRecord] { self.state.networkHosts.values.sorted { $0.host < $1.host } }

    func insertNetworkDevice(_ record: NetworkDeviceRecord) async throws {
        guard self.state.networkDevices[record.id] == nil,
            !self.state.networkDevices.values.contains(where: { $0.publicKey == record.publicKey || $0.addressIndex == record.addressIndex })
        else {
            throw GatehouseError(.conflict, "that WireGuard key or device address is taken")
        }
        self.state.networkDevices[record.id] = record
    }

    func revokeNetworkDevice(id: String, at time: Date) async throws -> Bool {
        guard let d = self.state.networkDevices[id], d.revokedAt == nil else { return false }
        self.state.networkDevices[id]?.revokedAt = time
        return true
    }

    func revokeNetworkDevices(userID: String, at time: Date) async throws -> Int {
        var n = 0
        for (id, d) in self.state.networkDevices where d.userID == userID && d.revokedAt == nil && d.expiresAt > time {
            self.state.networkDevices[id]?.revokedAt = time
            n += 1
        }
        return n
    }

    func saveNetworkHost(_ record: NetworkHostRecord) async throws {
        guard !self.state.networkHosts.values.contains(where: { $0.publicKey == record.publicKey && $0.host != record.host }) else {
            throw GatehouseError(.conflict, "another host has that WireGuard key")
        }
        self.state.networkHosts[record.host] = record
    }

    func deleteNetworkHost(name: String) async throws -> Bool { self.state.networkHosts.removeValue(forKey: name) != nil }
}
