import Crypto
public import Foundation
public import GatehouseCore
import GatehousePKI
import GatehouseSSH
public import GatehouseServices
public import Hummingbird
import HummingbirdCore
public import HummingbirdTLS
import Logging
public import NIOCore
import NIOSSL
public import ServiceLifecycle
import X509

/// The mutual-TLS listener's request context: the connection, to read the peer's certificate.
public struct MTLSRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// The server's own certificate on the mutual-TLS listener (`spiffe://TD/gatehouse/server`), from
/// its own authority, short-lived and replaced in place: each handshake takes the current one.
public final class MTLSServerIdentity: Service, Sendable {
    public static let lifetime: TimeInterval = 24 * 3600

    struct Current: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let notBefore: Date
        let notAfter: Date
        /// The authority it was issued under; nil for the stand-in used while none is ready.
        let authorityID: String?
    }

    let pki: PKIService
    let dnsNames: [String]
    let ipAddresses: [IPPrefix]
    let box = LockedBox<Current?>(nil)
    let logger = Logger(label: "gatehouse.mtls")

    public init(pki: PKIService, dnsNames: [String], ipAddresses: [IPPrefix]) {
        self.pki = pki
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
    }

    /// Before the listener opens: a certificate from the authority, or, while the authority
    /// waits for an intermediate from an offline root, a self-signed stand-in that no client
    /// trusts (and every client is refused, as no chain can verify yet). The stand-in is
    /// replaced within seconds of the import, without a restart.
    public func prepare() async throws {
        if (try? self.pki.current()) != nil {
            try await self.renew()
            return
        }
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let name = try DistinguishedName { CommonName("Gatehouse (waiting for its intermediate)") }
        let standIn = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(Self.lifetime), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.uniformResourceIdentifier(self.pki.serverID)]) },
            issuerPrivateKey: Certificate.PrivateKey(key))
        let nio = try NIOSSLCertificate(bytes: try Authority.der(standIn), format: .der)
        self.box.mutate {
            $0 = Current(
                chain: [nio], key: try! NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem),
                notBefore: standIn.notValidBefore, notAfter: standIn.notValidAfter, authorityID: nil)
        }
    }

    /// Issues a fresh certificate (a new key each time) and puts it in use.
    public func renew() async throws {
        let key = P256.Signing.PrivateKey()
        let authority = try self.pki.current().id
        let issued = try await self.pki.issueInternal(
            publicKey: Certificate.PublicKey(key.publicKey), spiffeID: self.pki.serverID, dnsNames: self.dnsNames,
            ipAddresses: self.ipAddresses, lifetime: Self.lifetime, requester: "gatehouse")
        let chain = try issued.chain.map { try NIOSSLCertificate(bytes: try Authority.der($0), format: .der) }
        let nioKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        self.box.mutate {
            $0 = Current(
                chain: chain, key: nioKey, notBefore: issued.certificate.notValidBefore, notAfter: issued.certificate.notValidAfter,
                authorityID: authority)
        }
        self.logger.info(
            "mTLS listener certificate in use", metadata: ["authority": "\(authority)", "not_after": "\(issued.certificate.notValidAfter)"])
    }

    var current: Current? { self.box.value }

    /// Renews when two thirds of the lifetime have passed, or at once when the authority
    /// changed (an intermediate imported from an offline root); retries every few seconds on
    /// failure while the old certificate lasts.
    public func run() async throws {
        // Ends at once on graceful shutdown (the sleep is cancelled), so SIGTERM stops the server.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var wait: TimeInterval = 5
                let authority = try? self.pki.current().id
                if let c = self.current {
                    let renewAt = c.notBefore.addingTimeInterval(c.notAfter.timeIntervalSince(c.notBefore) * 2 / 3)
                    if authority != nil && (Date() >= renewAt || c.authorityID != authority) {
                        do { try await self.renew() } catch {
                            self.logger.error("could not renew the mTLS listener's certificate", metadata: ["error": "\(error)"])
                        }
                    } else if authority != nil {
                        wait = min(5, renewAt.timeIntervalSinceNow)
                    }
                }
                try? await Task.sleep(for: .seconds(max(1, wait)))
            }
        }
    }
}

/// The listener agents and services reach with their certificates: TLS 1.3 only, a client
/// certificate required, its chain checked against our root with RFC 5280 plus our EKU, key
/// usage and trust domain policy, and Gatehouse's live check (not revoked, person active, host
/// enrolled) at the handshake and again on every request.
public enum MTLSListener {
    public static func tlsConfiguration(identity: MTLSServerIdentity, pki: PKIService) throws -> TLSChannelConfiguration {
        guard let current = identity.current else { throw GatehouseError(.internal, "the mTLS listener has no certificate yet") }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: current.chain.map { .certificate($0) }, privateKey: .privateKey(current.key))
        tls.minimumTLSVersion = .tlsv13
        tls.maximumTLSVersion = .tlsv13
        tls.certificateVerification = .noHostnameVerification
        tls.sslContextCallback = { _, promise in
            var override = NIOSSLContextConfigurationOverride()
            if let c = identity.current {
                override.certificateChain = c.chain.map { .certificate($0) }
                override.privateKey = .privateKey(c.key)
            }
            promise.succeed(override)
        }
        let logger = Logger(label: "gatehouse.mtls")
        return TLSChannelConfiguration(
            tlsConfiguration: tls,
            customAsyncVerificationCallback: { presented in
                let chain: [Certificate]
                do {
                    chain = try presented.prefix(5).map { try Certificate(derEncoded: try $0.toDERBytes()) }
                } catch {
                    logger.notice("mTLS peer refused", metadata: ["reason": "a presented certificate is not valid DER"])
                    return .failed
                }
                switch await pki.verifyPeer(chain: chain) {
                case .success: return .certificateVerified
                case .failure(let error):
                    logger.notice("mTLS peer refused", metadata: ["reason": "\(error.message)"])
                    return .failed
                }
            })
    }

    /// Who is on the other end of this request's connection, checked again now.
    static func peer(_ context: MTLSRequestContext, pki: PKIService) async throws -> PKIService.Peer {
        guard let presented = try await context.channel.nioSSL_peerCertificate().get(),
            let leaf = try? Certificate(derEncoded: try presented.toDERBytes())
        else {
            throw GatehouseError(.unauthenticated, "present a client certificate")
        }
        guard case .success(let identity) = SPIFFELeafPolicy.spiffeID(of: leaf) else {
            throw GatehouseError(.unauthenticated, "the client certificate carries no SPIFFE ID")
        }
        switch await pki.vouch(identity: identity, serial: Authority.serialHex(leaf.serialNumber)) {
        case .success(let peer): return peer
        case .failure(let error):
            await pki.auditRefusedPeer(error.message, spiffeID: identity.id, sourceAddress: context.remoteAddress?.ipAddress)
            throw error
        }
    }

    static func agent(_ context: MTLSRequestContext, pki: PKIService) async throws -> (host: String, enrolledAt: Date) {
        guard case .agent(let host, let enrolledAt) = try await Self.peer(context, pki: pki) else {
            throw GatehouseError(.forbidden, "only a host's agent identity may do this")
        }
        return (host, enrolledAt)
    }

    struct WhoAmI: Encodable {
        let spiffeID: String
        let kind: String
        let host: String?
        enum CodingKeys: String, CodingKey {
            case kind, host
            case spiffeID = "spiffe_id"
        }
    }

    struct AgentIdentityBody: Encodable {
        let certificate: String
        let root: String
        let notAfter: Date
        enum CodingKeys: String, CodingKey {
            case certificate, root
            case notAfter = "not_after"
        }
    }

    public static func makeRouter(
        pki: PKIService, hosts: HostEnrollmentService?, network: NetworkService? = nil, random: any RandomSource,
        time: any TimeSource
    ) -> Router<MTLSRequestContext> {
        let router = Router(context: MTLSRequestContext.self)
        router.add(middleware: SecurityHeaders())
        router.add(middleware: CodedErrorMiddleware())
        let issuances = RateLimiter(capacity: 120, per: 60, time: time)
        router.get("/api/pki/ca") { _, _ in try PKIRoutes.chainResponse(pki) }
        router.get("/api/pki/crl") { _, _ in try await PKIRoutes.crlResponse(pki) }
        router.get("/api/pki/crl/:authority") { _, context in
            try await PKIRoutes.crlResponse(pki, authorityID: context.parameters.get("authority") ?? "")
        }
        router.get("/api/agent/whoami") { _, context in
            switch try await Self.peer(context, pki: pki) {
            case .agent(let host, _): return JSONResponse.make(.ok, WhoAmI(spiffeID: pki.agentID(host: host), kind: "agent", host: host))
            case .workload(let id, let requester):
                return JSONResponse.make(
                    .ok, WhoAmI(spiffeID: id, kind: "workload", host: requester.hasPrefix("host:") ? String(requester.dropFirst(5)) : nil))
            }
        }
        router.post("/api/pki/sign") { request, context in
            let (host, enrolledAt) = try await Self.agent(context, pki: pki)
            if let wait = issuances.take("host:" + host) {
                throw GatehouseError(.rateLimited, "too many certificate requests; try again in \(wait) seconds", retryAfter: wait)
            }
            let (csr, lifetime) = try await PKIRoutes.signBody(request)
            let issued = try await pki.sign(
                csr, requester: .host(host, enrolledAt: enrolledAt), lifetime: lifetime, sourceAddress: context.remoteAddress?.ipAddress,
                requestID: Identifier.make(using: random))
            return JSONResponse.make(.created, try PKIRoutes.IssuedBody(issued, root: try Authority.pem(pki.current().root)))
        }
        if let network { NetworkRoutes.add(to: router, network: network, pki: pki, time: time) }
        guard let hosts else { return router }
        router.post("/api/agent/certificate") { request, context in
            let (host, enrolledAt) = try await Self.agent(context, pki: pki)
            if let wait = issuances.take("host:" + host) {
                throw GatehouseError(.rateLimited, "too many certificate requests; try again in \(wait) seconds", retryAfter: wait)
            }
            let (csr, _) = try await PKIRoutes.signBody(request)
            let issued = try await hosts.agentIdentity(
                host: host, enrolledAt: enrolledAt, request: csr, pki: pki, sourceAddress: context.remoteAddress?.ipAddress)
            return JSONResponse.make(.created, AgentIdentityBody(certificate: issued.chain, root: issued.root, notAfter: issued.notAfter))
        }
        router.post("/api/agent/host-certificate") { request, context in
            let (host, _) = try await Self.agent(context, pki: pki)
            try WebAuthnRoutes.requireJSON(request)
            let bytes = try await collectBody(request, limit: PKIRoutes.maxBodyBytes)
            try StrictJSON.checkKeys(bytes, allowed: ["host_key"])
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let key = object["host_key"] as? String else {
                throw GatehouseError(.invalidInput, "host_key is required")
            }
            return JSONResponse.make(
                .ok, SSHRoutes.JoinedBody(try await hosts.renew(host: host, hostKey: key, sourceAddress: context.remoteAddress?.ipAddress)))
        }
        return router
    }
}
