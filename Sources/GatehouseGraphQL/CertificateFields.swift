public import Foundation
import GatehouseCore
import GatehouseServices
import GraphQL
import Graphiti

/// A certificate just issued (the public schema's `signCertificate`).
public struct IssuedCertificateNode: Codable, Sendable {
    public let certificate: String
    public let chain: String
    public let root: String
    public let serial: String
    public let spiffeId: String
    public let notAfter: String

    public init(certificate: String, chain: String, root: String, serial: String, spiffeId: String, notAfter: Date) {
        self.certificate = certificate
        self.chain = chain
        self.root = root
        self.serial = serial
        self.spiffeId = spiffeId
        self.notAfter = ISO8601DateFormatter().string(from: notAfter)
    }
}

/// One row of the X.509 inventory (the admin schema's `certificates`).
struct CertificateNode: Codable, Sendable {
    let serial: String
    let spiffeId: String
    let dnsNames: [String]
    let ipAddresses: [String]
    let requester: String
    let notBefore: String
    let notAfter: String
    let revokedAt: String?
    let revocationReason: String?

    init(_ r: PKICertificateRecord) {
        let iso = ISO8601DateFormatter()
        self.serial = r.serial
        self.spiffeId = r.spiffeID
        self.dnsNames = r.dnsNames
        self.ipAddresses = r.ipAddresses
        self.requester = r.requester
        self.notBefore = iso.string(from: r.notBefore)
        self.notAfter = iso.string(from: r.notAfter)
        self.revokedAt = r.revokedAt.map { iso.string(from: $0) }
        self.revocationReason = r.revocationReason
    }
}

struct SignCertificateArguments: Codable {
    let csr: String
    let lifetimeSeconds: Int?
}

struct CertificatesArguments: Codable {
    let includeExpired: Bool?
    let first: Int?
}

struct RevokeCertificateArguments: Codable {
    let serial: String
    let reason: String?
}

extension GatehouseResolver {
    func signCertificate(context: GraphQLContext, arguments: SignCertificateArguments) async throws -> IssuedCertificateNode {
        guard let sign = context.signCertificate else {
            throw GraphQLError(
                message: "send a live access token with the certificates scope as Authorization: Bearer (gatehouse login)",
                extensions: ["code": .string("UNAUTHENTICATED")])
        }
        guard arguments.csr.utf8.count <= 16 * 1024 else {
            throw GraphQLError(message: "the certificate request is over 16 KiB", extensions: ["code": .string("BAD_USER_INPUT")])
        }
        do {
            return try await sign(arguments.csr, arguments.lifetimeSeconds)
        } catch let error as GatehouseError where [.invalidInput, .inputTooLarge, .forbidden, .unauthenticated, .rateLimited].contains(error.code) {
            let code =
                switch error.code {
                case .forbidden: "FORBIDDEN"
                case .unauthenticated: "UNAUTHENTICATED"
                case .rateLimited: "RATE_LIMITED"
                default: "BAD_USER_INPUT"
                }
            throw GraphQLError(message: error.message, extensions: ["code": .string(code)])
        } catch {
            // Store or internal failures: no details to the caller (they are in the server log).
            throw GraphQLError(message: "certificates cannot be issued right now; try again", extensions: ["code": .string("UNAVAILABLE")])
        }
    }

    func certificates(context: GraphQLContext, arguments: CertificatesArguments) async throws -> [CertificateNode] {
        guard let pki = context.pki else {
            throw GraphQLError(message: "the inventory needs an authenticated administrator", extensions: ["code": .string("FORBIDDEN")])
        }
        return try await pki.inventory(includeExpired: arguments.includeExpired ?? false, limit: min(max(arguments.first ?? 1000, 1), 10_000)).map(
            CertificateNode.init)
    }

    func revokeCertificate(context: GraphQLContext, arguments: RevokeCertificateArguments) async throws -> String {
        guard let pki = context.pki else {
            throw GraphQLError(message: "revocation needs an authenticated administrator", extensions: ["code": .string("FORBIDDEN")])
        }
        do {
            try await pki.revoke(
                serial: arguments.serial, reason: arguments.reason ?? "revoked by an administrator", actor: context.actor ?? "graphql")
        } catch let error as GatehouseError {
            throw GraphQLError(message: error.message, extensions: ["code": .string("BAD_USER_INPUT")])
        }
        return arguments.serial.lowercased()
    }
}

extension GatehouseSchema {
    static func issuedCertificateType() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, IssuedCertificateNode> {
        Type(IssuedCertificateNode.self, as: "IssuedCertificate") {
            Field("certificate", at: \.certificate).description("The leaf, PEM.")
            Field("chain", at: \.chain).description("The leaf and the intermediate, PEM: what a TLS server or client presents.")
            Field("root", at: \.root).description("The Gatehouse root to trust, PEM.")
            Field("serial", at: \.serial).description("Lower-case hex, as the inventory names it.")
            Field("spiffeId", at: \.spiffeId)
            Field("notAfter", at: \.notAfter).description("RFC 3339.")
        }.description("An X.509 certificate Gatehouse just issued.")
    }

    static func certificateType() -> Graphiti.`Type`<GatehouseResolver, GraphQLContext, CertificateNode> {
        Type(CertificateNode.self, as: "Certificate") {
            Field("serial", at: \.serial)
            Field("spiffeId", at: \.spiffeId)
            Field("dnsNames", at: \.dnsNames)
            Field("ipAddresses", at: \.ipAddresses)
            Field("requester", at: \.requester).description("user:NAME, host:NAME, or gatehouse for the server's own.")
            Field("notBefore", at: \.notBefore)
            Field("notAfter", at: \.notAfter)
            Field("revokedAt", at: \.revokedAt)
            Field("revocationReason", at: \.revocationReason)
        }.description("An X.509 certificate in the inventory.")
    }
}
