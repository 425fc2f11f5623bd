import Foundation
import GatehouseCore
import GatehouseServices
import GraphQL
import Graphiti

/// A person's WireGuard device (the admin schema's `networkDevices`): what
/// `gatehouse admin network devices` lists.
struct NetworkDeviceNode: Codable, Sendable {
    let id: String
    let username: String
    let name: String
    let publicKey: String
    let address: String
    let createdAt: String
    let expiresAt: String
    let revokedAt: String?

    init(_ d: NetworkDevice) {
        let iso = ISO8601DateFormatter()
        self.id = d.id
        self.username = d.username
        self.name = d.name
        self.publicKey = d.publicKey.description
        self.address = d.address
        self.createdAt = iso.string(from: d.createdAt)
        self.expiresAt = iso.string(from: d.expiresAt)
        self.revokedAt = d.revokedAt.map { iso.string(from: $0) }
    }
}

struct NetworkDevicesArguments: Codable {
    let all: Bool?
}

struct RemoveNetworkDeviceArguments: Codable {
    let id: String
}

extension GatehouseResolver {
    func networkDevices(context: GraphQLContext, arguments: NetworkDevicesArguments) async throws -> [NetworkDeviceNode] {
        guard let network = context.network else { throw Self.forbidden("network devices") }
        return try await network.devices(userID: nil, liveOnly: !(arguments.all ?? false)).map(NetworkDeviceNode.init)
    }

    func removeNetworkDevice(context: GraphQLContext, arguments: RemoveNetworkDeviceArguments) async throws -> String {
        guard let network = context.network else { throw Self.forbidden("removing a device") }
        do { try await network.removeDevice(id: arguments.id, owner: nil, actor: context.actor ?? "graphql") } catch let error as GatehouseError {
            throw Self.userError(error)
        }
        return arguments.id
    }
}

enum NetworkFields {
    static func device() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, NetworkDeviceNode> {
        Type(NetworkDeviceNode.self, as: "NetworkDevice") {
            Field("id", at: \.id)
            Field("username", at: \.username).description("Whose device it is.")
            Field("name", at: \.name).description("The name given at `gatehouse wg up`.")
            Field("publicKey", at: \.publicKey).description("The WireGuard public key (base64); the private key never left the device.")
            Field("address", at: \.address).description("Its address on the private network.")
            Field("createdAt", at: \.createdAt)
            Field("expiresAt", at: \.expiresAt).description("When it stops working: with the sign-in it was registered under.")
            Field("revokedAt", at: \.revokedAt).description("When it was removed (offboarding, locking, `wg remove`), or null.")
        }.description("A person's device on the private network.")
    }
}
