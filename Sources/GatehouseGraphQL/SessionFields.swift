import Foundation
import GatehouseCore
import GatehouseServices
import GraphQL
import Graphiti

/// One session through the SSH bastion (the admin schema's `sessions`).
struct BastionSessionNode: Codable, Sendable {
    let id: String
    let username: String
    let login: String
    let host: String
    let source: String?
    let mode: String
    let command: String?
    let startedAt: String
    let endedAt: String?
    let exitStatus: Int?
    let exitSignal: String?
    let endedBy: String?
    let recordingSha256: String?
    let recordingBytes: String?
    let bytesIn: String
    let bytesOut: String

    init(_ r: BastionSessionRecord) {
        let iso = ISO8601DateFormatter()
        self.id = r.id
        self.username = r.username
        self.login = r.login
        self.host = r.host
        self.source = r.source
        self.mode = r.mode
        self.command = r.command
        self.startedAt = iso.string(from: r.startedAt)
        self.endedAt = r.endedAt.map { iso.string(from: $0) }
        self.exitStatus = r.exitStatus
        self.exitSignal = r.exitSignal
        self.endedBy = r.endedBy
        self.recordingSha256 = r.recordingSHA256
        self.recordingBytes = r.recordingBytes.map(String.init)
        self.bytesIn = String(r.bytesIn)
        self.bytesOut = String(r.bytesOut)
    }
}

struct SessionsArguments: Codable {
    let live: Bool?
    let first: Int?
}

struct SessionArguments: Codable {
    let id: String
    let afterEvent: Int?
}

struct KillSessionArguments: Codable {
    let id: String
    let reason: String?
}

extension GatehouseResolver {
    static func forbidden(_ what: String) -> GraphQLError {
        GraphQLError(message: "\(what) needs an authenticated administrator", extensions: ["code": .string("FORBIDDEN")])
    }

    static func userError(_ error: GatehouseError) -> GraphQLError {
        GraphQLError(message: error.message, extensions: ["code": .string(error.code == .notFound ? "NOT_FOUND" : "BAD_USER_INPUT")])
    }

    func sessions(context: GraphQLContext, arguments: SessionsArguments) async throws -> [BastionSessionNode] {
        guard let bastion = context.bastion else { throw Self.forbidden("sessions") }
        return try await bastion.sessions(liveOnly: arguments.live ?? false, limit: min(max(arguments.first ?? 100, 1), 10_000)).map(
            BastionSessionNode.init)
    }

    func sessionRecording(context: GraphQLContext, arguments: SessionArguments) async throws -> String {
        guard let render = context.sessionRecording else { throw Self.forbidden("recordings") }
        guard (arguments.afterEvent ?? 0) >= 0 else {
            throw GraphQLError(message: "afterEvent must not be negative", extensions: ["code": .string("BAD_USER_INPUT")])
        }
        do { return try await render(arguments.id, arguments.afterEvent ?? 0) } catch let error as GatehouseError { throw Self.userError(error) }
    }

    func killSession(context: GraphQLContext, arguments: KillSessionArguments) async throws -> String {
        guard let bastion = context.bastion else { throw Self.forbidden("ending a session") }
        if let reason = arguments.reason, reason.utf8.count > 500 {
            throw GraphQLError(message: "reason is longer than 500 bytes", extensions: ["code": .string("BAD_USER_INPUT")])
        }
        do { try await bastion.kill(id: arguments.id, actor: context.actor ?? "graphql", reason: arguments.reason) } catch let error as GatehouseError
        { throw Self.userError(error) }
        return arguments.id
    }
}

enum SessionFields {
    static func session() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, BastionSessionNode> {
        Type(BastionSessionNode.self, as: "BastionSession") {
            Field("id", at: \.id)
            Field("username", at: \.username).description("The Gatehouse user.")
            Field("login", at: \.login).description("The account on the host.")
            Field("host", at: \.host)
            Field("source", at: \.source).description("Where the person connected from.")
            Field("mode", at: \.mode).description("shell, exec or subsystem.")
            Field("command", at: \.command).description("The command (exec) or subsystem name.")
            Field("startedAt", at: \.startedAt)
            Field("endedAt", at: \.endedAt).description("Null while the session is live.")
            Field("exitStatus", at: \.exitStatus)
            Field("exitSignal", at: \.exitSignal)
            Field("endedBy", at: \.endedBy).description("Set when Gatehouse ended it: an administrator, offboarding, a failed recording.")
            Field("recordingSha256", at: \.recordingSha256).description("SHA-256 of the sealed recording, as in the audit log.")
            Field("recordingBytes", at: \.recordingBytes)
            Field("bytesIn", at: \.bytesIn).description("Bytes from the person (a 64-bit number, as a string).")
            Field("bytesOut", at: \.bytesOut).description("Bytes to the person.")
        }.description("A session through the SSH bastion.")
    }
}
