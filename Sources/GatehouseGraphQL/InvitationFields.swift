import Foundation
import GatehouseCore
import GatehouseServices
import GraphQL
import Graphiti

/// A pending enrollment or recovery link (the admin schema's `invitations`): what
/// `gatehouse admin invitations` lists. The link's secret is never stored; only a new link
/// (`inviteUser`, `resendInvitation`) carries one, once.
struct InvitationNode: Codable, Sendable {
    let username: String
    let kind: String
    let email: String?
    let role: String
    let createdAt: String
    let expiresAt: String
    let createdBy: String
    let expired: Bool
    /// Only on the answer that made the link.
    let enrollmentUrl: String?

    init(_ i: Invitation, now: Date, url: String? = nil) {
        let iso = ISO8601DateFormatter()
        self.username = i.username.rawValue
        self.kind = i.kind.rawValue
        self.email = i.email?.rawValue
        self.role = i.role.rawValue
        self.createdAt = iso.string(from: i.createdAt)
        self.expiresAt = iso.string(from: i.expiresAt)
        self.createdBy = i.createdBy
        self.expired = i.expiresAt <= now
        self.enrollmentUrl = url
    }
}

struct InviteUserArguments: Codable {
    let username: String
    let email: String?
    let role: String?
}

struct InvitationArguments: Codable {
    let username: String
    let reason: String?
}

struct ResendInvitationArguments: Codable {
    let username: String
}

extension GatehouseResolver {
    static func invitationService(_ context: GraphQLContext, _ what: String) throws -> InvitationService {
        guard let service = context.invitations else { throw Self.forbidden(what) }
        return service
    }

    static func name(_ text: String) throws -> Username {
        do { return try Username(validating: text) } catch { throw Self.userError(error) }
    }

    func invitations(context: GraphQLContext, arguments: NoArguments) async throws -> [InvitationNode] {
        let service = try Self.invitationService(context, "invitations")
        let now = Date()
        return try await service.pending().map { InvitationNode($0, now: now) }
    }

    func inviteUser(context: GraphQLContext, arguments: InviteUserArguments) async throws -> InvitationNode {
        let service = try Self.invitationService(context, "inviting")
        let username = try Self.name(arguments.username)
        do {
            let email = try arguments.email.map { try EmailAddress(validating: $0) }
            let role = try RoleName(validating: arguments.role ?? RoleName.member.rawValue)
            let issued = try await service.invite(username: username, email: email, role: role, actor: context.actor ?? "graphql")
            return InvitationNode(issued.invitation, now: Date(), url: issued.enrollmentURL)
        } catch let error as GatehouseError {
            throw Self.userError(error)
        }
    }

    func revokeInvitation(context: GraphQLContext, arguments: InvitationArguments) async throws -> InvitationNode {
        let service = try Self.invitationService(context, "revoking an invitation")
        let username = try Self.name(arguments.username)
        do {
            return InvitationNode(
                try await service.revoke(username: username, actor: context.actor ?? "graphql", reason: arguments.reason), now: Date())
        } catch let error as GatehouseError {
            throw Self.userError(error)
        }
    }

    func resendInvitation(context: GraphQLContext, arguments: ResendInvitationArguments) async throws -> InvitationNode {
        let service = try Self.invitationService(context, "resending an invitation")
        let username = try Self.name(arguments.username)
        do {
            let issued = try await service.resend(username: username, actor: context.actor ?? "graphql")
            return InvitationNode(issued.invitation, now: Date(), url: issued.enrollmentURL)
        } catch let error as GatehouseError {
            throw Self.userError(error)
        }
    }
}

enum InvitationFields {
    static func invitation() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, InvitationNode> {
        Type(InvitationNode.self, as: "Invitation") {
            Field("username", at: \.username).description("The account the link enrolls (or recovers).")
            Field("kind", at: \.kind).description("invite, recovery or bootstrap.")
            Field("email", at: \.email)
            Field("role", at: \.role).description("The account's role in Gatehouse: admin or member.")
            Field("createdAt", at: \.createdAt)
            Field("expiresAt", at: \.expiresAt)
            Field("createdBy", at: \.createdBy).description("The actor who made it.")
            Field("expired", at: \.expired).description("Past expiresAt: resendInvitation makes a new link.")
            Field("enrollmentUrl", at: \.enrollmentUrl).description(
                "The link, with its one-time secret: only in the answer that made it; send it over a channel you trust.")
        }.description("A pending enrollment or recovery link.")
    }
}
