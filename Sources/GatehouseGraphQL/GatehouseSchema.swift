public import Foundation
public import GatehouseCore
import Graphiti
import GraphQL

/// Public facts about this server, the first thing a client asks.
public struct ServerInfo: Sendable, Codable {
    public var name: String
    public var version: String
    public var publicUrl: String
    public var relyingPartyId: String
    public var startedAt: String

    public init(version: String, publicURL: PublicURL, startedAt: Date) {
        self.name = "Gatehouse"
        self.version = version
        self.publicUrl = publicURL.origin
        self.relyingPartyId = publicURL.relyingPartyID
        let formatter = ISO8601DateFormatter()
        self.startedAt = formatter.string(from: startedAt)
    }
}

/// What resolvers may use during one request.
public struct GraphQLContext: Sendable {
    public let serverInfo: ServerInfo

    public init(serverInfo: ServerInfo) {
        self.serverInfo = serverInfo
    }
}

struct GatehouseResolver: Sendable {
    func serverInfo(context: GraphQLContext, arguments: NoArguments) -> ServerInfo {
        context.serverInfo
    }
}

struct GatehouseAPI: API {
    let resolver: GatehouseResolver
    let schema: Schema<GatehouseResolver, GraphQLContext>
}

/// The GraphQL schema, built in one place so the server and `gatehouse graphql schema` agree.
public enum GatehouseSchema {
    static func makeAPI() throws -> GatehouseAPI {
        let schema = try Schema<GatehouseResolver, GraphQLContext> {
            Type(ServerInfo.self, as: "ServerInfo") {
                Field("name", at: \.name).description("Always \"Gatehouse\".")
                Field("version", at: \.version).description("The server's version.")
                Field("publicUrl", at: \.publicUrl).description("The URL users reach Gatehouse at; also the OIDC issuer.")
                Field("relyingPartyId", at: \.relyingPartyId).description("The WebAuthn relying-party ID passkeys are bound to.")
                Field("startedAt", at: \.startedAt).description("When this server process started (RFC 3339).")
            }.description("Public facts about this Gatehouse server.")
            Query {
                Field("serverInfo", at: GatehouseResolver.serverInfo).description("Public facts about this server.")
            }
        }
        return GatehouseAPI(resolver: GatehouseResolver(), schema: schema)
    }

    /// The schema in GraphQL SDL, as checked in at `schema.graphql`.
    public static func printed() throws -> String {
        printSchema(schema: try makeAPI().schema.schema) + "\n"
    }
}
