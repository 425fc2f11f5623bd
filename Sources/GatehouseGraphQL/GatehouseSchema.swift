public import Foundation
public import GatehouseCore
public import GatehouseServices
import GraphQL
import Graphiti

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

/// What resolvers may use during one request. `auditLog` is set only where the caller is
/// authenticated (today: the admin socket); the public schema has no field that reads it.
public struct GraphQLContext: Sendable {
    public let serverInfo: ServerInfo
    public let auditLog: AuditLog?
    public let policy: PolicyService?
    public let offboarding: OffboardingService?
    /// Who is asking, for audit events of mutations (`admin-socket`).
    public let actor: String?
    /// The X.509 inventory and revocation (admin socket only).
    public let pki: PKIService?
    /// Signs a CSR for the person behind the request's bearer token (public schema, when one
    /// with the `certificates` scope came with it).
    public let signCertificate: (@Sendable (String, Int?) async throws -> IssuedCertificateNode)?
    /// The bastion's sessions (admin socket only).
    public let bastion: BastionService?
    /// A session's recording as asciicast v2, its digest checked (admin socket only).
    public let sessionRecording: (@Sendable (String, Int) async throws -> String)?
    /// People's WireGuard devices (admin socket only).
    public let network: NetworkService?
    /// Enrollment and recovery links (admin socket only).
    public let invitations: InvitationService?

    public init(
        serverInfo: ServerInfo, auditLog: AuditLog? = nil, policy: PolicyService? = nil, offboarding: OffboardingService? = nil, actor: String? = nil,
        pki: PKIService? = nil, signCertificate: (@Sendable (String, Int?) async throws -> IssuedCertificateNode)? = nil,
        bastion: BastionService? = nil, sessionRecording: (@Sendable (String, Int) async throws -> String)? = nil, network: NetworkService? = nil,
        invitations: InvitationService? = nil
    ) {
        self.invitations = invitations
        self.network = network
        self.bastion = bastion
        self.sessionRecording = sessionRecording
        self.serverInfo = serverInfo
        self.auditLog = auditLog
        self.policy = policy
        self.offboarding = offboarding
        self.actor = actor
        self.pki = pki
        self.signCertificate = signCertificate
    }
}

struct GatehouseResolver: Sendable {
    func serverInfo(context: GraphQLContext, arguments: NoArguments) -> ServerInfo {
        context.serverInfo
    }

    func auditEvents(context: GraphQLContext, arguments: AuditEventsArguments) async throws -> AuditEventPage {
        guard let log = context.auditLog else {
            throw GraphQLError(message: "audit events need an authenticated caller", extensions: ["code": .string("FORBIDDEN")])
        }
        return try await AuditEventsQuery.run(arguments, log: log)
    }
}

struct OffboardingResult: Codable, Sendable {
    let username: String
    let revoked: [String]

    init(_ result: OffboardingService.Result) {
        self.username = result.user.username.rawValue
        self.revoked = result.revoked.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}

struct OffboardUserArguments: Codable {
    let username: String
    let reason: String?
}

extension GatehouseResolver {
    func offboardUser(context: GraphQLContext, arguments: OffboardUserArguments) async throws -> OffboardingResult {
        let (service, name) = try Self.accountChange(context, arguments, "offboarding")
        return OffboardingResult(try await service.offboard(username: name, actor: context.actor ?? "graphql", reason: arguments.reason))
    }

    func lockUser(context: GraphQLContext, arguments: OffboardUserArguments) async throws -> OffboardingResult {
        let (service, name) = try Self.accountChange(context, arguments, "locking")
        return OffboardingResult(try await service.lock(username: name, actor: context.actor ?? "graphql", reason: arguments.reason))
    }

    func unlockUser(context: GraphQLContext, arguments: OffboardUserArguments) async throws -> String {
        let (service, name) = try Self.accountChange(context, arguments, "unlocking")
        return try await service.unlock(username: name, actor: context.actor ?? "graphql", reason: arguments.reason).username.rawValue
    }

    /// The service, on the admin schema only, and the checked name.
    static func accountChange(_ context: GraphQLContext, _ arguments: OffboardUserArguments, _ what: String) throws -> (OffboardingService, Username)
    {
        guard let service = context.offboarding else {
            throw GraphQLError(message: "\(what) needs an authenticated administrator", extensions: ["code": .string("FORBIDDEN")])
        }
        try OffboardingService.checkReason(arguments.reason)
        return (service, try Username(validating: arguments.username))
    }
}

struct GatehouseAPI: API {
    let resolver: GatehouseResolver
    let schema: Schema<GatehouseResolver, GraphQLContext>
}

/// Which schema: the public one on `--listen`, or the administrator's on the admin socket.
public enum SchemaVariant: Sendable {
    case `public`
    case admin
}

/// The GraphQL schemas, built in one place so the server and `gatehouse graphql schema` agree.
public enum GatehouseSchema {
    static func makeAPI(_ variant: SchemaVariant = .public) throws -> GatehouseAPI {
        switch variant {
        case .public: try Self.publicAPI()
        case .admin: try Self.adminAPI()
        }
    }

    static func adminAPI() throws -> GatehouseAPI {
        let schema = try Schema<GatehouseResolver, GraphQLContext> {
            Self.serverInfoType()
            Self.certificateType()
            Type(AuditEventNode.Detail.self, as: "AuditDetail") {
                Field("key", at: \.key)
                Field("value", at: \.value)
            }.description("One key/value fact of an audit event.")
            Type(AuditEventNode.self, as: "AuditEvent") {
                Field("sequence", at: \.sequence).description("Position in the log (a 64-bit number, as a string).")
                Field("code", at: \.code).description("Stable event code, e.g. invitation.created.")
                Field("actor", at: \.actor)
                Field("subject", at: \.subject)
                Field("outcome", at: \.outcome).description("allowed, denied or failed.")
                Field("reason", at: \.reason)
                Field("requestId", at: \.requestId)
                Field("sourceAddress", at: \.sourceAddress)
                Field("time", at: \.time).description("UTC, milliseconds (RFC 3339).")
                Field("details", at: \.details)
                Field("canonical", at: \.canonical).description("The canonical entry: the exact bytes hashed into the Merkle tree.")
            }.description("One entry of the tamper-evident audit log.")
            Type(AuditEventPage.self, as: "AuditEventPage") {
                Field("events", at: \.events)
                Field("endCursor", at: \.endCursor).description("The last sequence examined; pass as `after` for the next page.")
                Field("hasNextPage", at: \.hasNextPage)
            }.description("A page of audit events.")
            PolicyFields.versionInfo()
            PolicyFields.version()
            PolicyFields.diagnostic()
            PolicyFields.testResult()
            PolicyFields.check()
            PolicyFields.diff()
            PolicyFields.applyResult()
            PolicyFields.explanation()
            SessionFields.session()
            NetworkFields.device()
            InvitationFields.invitation()
            Type(OffboardingResult.self, as: "OffboardingResult") {
                Field("username", at: \.username)
                Field("revoked", at: \.revoked).description("What was ended, as KIND=COUNT (sessions=2, ...).")
            }.description("An offboarded account and everything offboarding ended.")
            Query {
                Field("serverInfo", at: GatehouseResolver.serverInfo).description("Public facts about this server.")
                Field("auditEvents", at: GatehouseResolver.auditEvents) {
                    Argument("first", at: \.first).description("How many events, 1 to 500 (default 50).")
                    Argument("after", at: \.after).description("Start after this cursor (an endCursor).")
                    Argument("code", at: \.code).description("Only events with this code.")
                    Argument("actor", at: \.actor).description("Only events by this actor.")
                }.description("Audit events, oldest first, filtered and paginated; examines at most 10,000 entries per request.")
                Field("policy", at: GatehouseResolver.policy) {
                    Argument("version", at: \.version).description("A version number (default: the latest).")
                }.description("An applied policy version with its text.")
                Field("policyHistory", at: GatehouseResolver.policyHistory) {
                    Argument("first", at: \.first).description("How many, newest first, 1 to 1000 (default 20).")
                }.description("Applied policy versions, newest first.")
                Field("checkPolicy", at: GatehouseResolver.checkPolicy) {
                    Argument("source", at: \.source)
                    Argument("fileName", at: \.fileName).description("Name used in diagnostics.")
                }.description("Parses, compiles and runs the tests of a policy text; writes nothing.")
                Field("diffPolicy", at: GatehouseResolver.diffPolicy) {
                    Argument("source", at: \.source)
                    Argument("fileName", at: \.fileName)
                }.description("What a policy text would grant and revoke against the active version.")
                Field("explainPolicy", at: GatehouseResolver.explainPolicy) {
                    Argument("user", at: \.user).description("A user name, or host:NAME.")
                    Argument("ssh", at: \.ssh).description("LOGIN@HOST")
                    Argument("reach", at: \.reach).description("HOST:PORT, ADDRESS:PORT or [IPv6]:PORT, with /tcp or /udp.")
                    Argument("app", at: \.app)
                    Argument("request", at: \.request).description("A role to request.")
                    Argument("obtain", at: \.obtain).description("A SPIFFE ID.")
                    Argument("from", at: \.from).description("Source address of the request.")
                    Argument("stepUpAgeSeconds", at: \.stepUpAgeSeconds).description("Seconds since the last passkey check.")
                }.description(
                    "The active policy's decision for one request (give exactly one of ssh, reach, app, request, obtain), with its reasoning.")
                Field("certificates", at: GatehouseResolver.certificates) {
                    Argument("includeExpired", at: \.includeExpired)
                    Argument("first", at: \.first).description("At most this many, newest first (default 1000).")
                }.description("The X.509 certificates Gatehouse issued: serial, SPIFFE ID, names, requester, expiry, revocation.")
                Field("networkDevices", at: GatehouseResolver.networkDevices) {
                    Argument("all", at: \.all).description("Also expired and removed devices (default: live ones only).")
                }.description("People's WireGuard devices, newest first.")
                Field("invitations", at: GatehouseResolver.invitations)
                    .description("Pending enrollment and recovery links, newest first (expired ones too: they say so).")
                Field("sessions", at: GatehouseResolver.sessions) {
                    Argument("live", at: \.live).description("Only sessions still running.")
                    Argument("first", at: \.first).description("At most this many, newest first, 1 to 10000 (default 100).")
                }.description("Sessions through the SSH bastion, newest first.")
                Field("sessionRecording", at: GatehouseResolver.sessionRecording) {
                    Argument("id", at: \.id)
                    Argument("afterEvent", at: \.afterEvent).description(
                        "Skip this many events (the header line is always first): poll with the count seen so far to watch a live session.")
                }.description(
                    "A session's recording as asciicast v2 (at most 16 MiB; larger ones through `gatehouse sessions play --raw`). A sealed one is checked first against the SHA-256 recorded when it was sealed; a live one is what has been written so far."
                )
            }
            Mutation {
                Field("revokeCertificate", at: GatehouseResolver.revokeCertificate) {
                    Argument("serial", at: \.serial)
                    Argument("reason", at: \.reason).description("Recorded in the audit log.")
                }.description("Revokes an X.509 certificate: on the CRL, refused by every mutual-TLS listener at once. Returns the serial.")
                Field("inviteUser", at: GatehouseResolver.inviteUser) {
                    Argument("username", at: \.username)
                    Argument("email", at: \.email)
                    Argument("role", at: \.role).description(
                        "admin or member (default): the account's role in Gatehouse; access comes from the policy.")
                }.description("Invites a person: the answer carries their one-time enrollment link (72 hours); audited.")
                Field("revokeInvitation", at: GatehouseResolver.revokeInvitation) {
                    Argument("username", at: \.username)
                    Argument("reason", at: \.reason).description("Why: recorded in the audit log.")
                }.description("Ends a person's pending link (lost, or sent by mistake); audited.")
                Field("resendInvitation", at: GatehouseResolver.resendInvitation) {
                    Argument("username", at: \.username)
                }.description("A new link in place of a person's pending or expired one (the old one stops working); audited.")
                Field("offboardUser", at: GatehouseResolver.offboardUser) {
                    Argument("username", at: \.username)
                    Argument("reason", at: \.reason).description("Why: recorded in the audit log.")
                }.description("Disables an account and ends every session and credential it holds, at once and audited.")
                Field("lockUser", at: GatehouseResolver.lockUser) {
                    Argument("username", at: \.username)
                    Argument("reason", at: \.reason).description("Why: recorded in the audit log.")
                }.description("Locks an account: ends everything it holds, as offboarding does, but keeps it for unlockUser.")
                Field("unlockUser", at: GatehouseResolver.unlockUser) {
                    Argument("username", at: \.username)
                    Argument("reason", at: \.reason).description("Why: recorded in the audit log.")
                }.description("Lets a locked account sign in again (nothing it held comes back). Returns the username.")
                Field("removeNetworkDevice", at: GatehouseResolver.removeNetworkDevice) {
                    Argument("id", at: \.id)
                }.description("Removes a person's device: its peer leaves the gateway within a second; audited. Returns the id.")
                Field("killSession", at: GatehouseResolver.killSession) {
                    Argument("id", at: \.id)
                    Argument("reason", at: \.reason).description("Shown to the person and recorded in the audit log.")
                }.description("Ends a live bastion session now; its recording is sealed. Returns the id.")
                Field("applyPolicy", at: GatehouseResolver.applyPolicy) {
                    Argument("source", at: \.source)
                    Argument("fileName", at: \.fileName)
                    Argument("expectedVersion", at: \.expectedVersion).description("Refuse unless this is the active version.")
                    Argument("comment", at: \.comment).description("Why: kept with the version and in the audit log.")
                }.description("Applies a policy text as the next version: atomic, audited, refused if it has problems or a test fails.")
            }
        }
        return GatehouseAPI(resolver: GatehouseResolver(), schema: schema)
    }

    static func serverInfoType() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, ServerInfo> {
        Type(ServerInfo.self, as: "ServerInfo") {
            Field("name", at: \.name).description("Always \"Gatehouse\".")
            Field("version", at: \.version).description("The server's version.")
            Field("publicUrl", at: \.publicUrl).description("The URL users reach Gatehouse at; also the OIDC issuer.")
            Field("relyingPartyId", at: \.relyingPartyId).description("The WebAuthn relying-party ID passkeys are bound to.")
            Field("startedAt", at: \.startedAt).description("When this server process started (RFC 3339).")
        }.description("Public facts about this Gatehouse server.")
    }

    static func publicAPI() throws -> GatehouseAPI {
        let schema = try Schema<GatehouseResolver, GraphQLContext> {
            Self.serverInfoType()
            Self.issuedCertificateType()
            Query {
                Field("serverInfo", at: GatehouseResolver.serverInfo).description("Public facts about this server.")
            }
            Mutation {
                Field("signCertificate", at: GatehouseResolver.signCertificate) {
                    Argument("csr", at: \.csr).description("A PEM certificate request naming the SPIFFE ID (URI SAN); P-256 or Ed25519.")
                    Argument("lifetimeSeconds", at: \.lifetimeSeconds).description("Default 24 h; at most the policy's.")
                }.description(
                    "An X.509 certificate for a SPIFFE identity the policy lets the caller obtain. Needs a bearer access token with the certificates scope."
                )
            }
        }
        return GatehouseAPI(resolver: GatehouseResolver(), schema: schema)
    }

    /// The schema in GraphQL SDL, as checked in at `schema.graphql` (public) and
    /// `schema.admin.graphql` (admin socket).
    public static func printed(_ variant: SchemaVariant = .public) throws -> String {
        printSchema(schema: try makeAPI(variant).schema.schema) + "\n"
    }
}
