public import Foundation
public import GatehouseCore
public import GatehouseServices
import Prometheus

/// What the HTTP routes need, assembled by the composition root.
public struct HTTPDependencies: Sendable {
    public let environment: ServiceEnvironment
    public let publicURL: PublicURL
    public let version: String
    public let startedAt: Date
    public let auditLog: AuditLog
    public let policy: PolicyService
    public let passkeys: PasskeyService
    /// The OpenID Connect provider and the identity-aware proxy; nil serves neither.
    public var oidc: OIDCService?
    /// The SSH certificate authority; nil serves no SSH endpoints.
    public var ssh: SSHCertificateService?
    public var hosts: HostEnrollmentService?
    /// The X.509 authority; nil serves no PKI endpoints.
    public var pki: PKIService?
    public var network: NetworkService?
    /// The SSH bastion's sessions and where their recordings are; nil serves no session routes.
    public var bastion: BastionService?
    public var recordingsDirectory: String?
    /// The bastion's port and host key line, published in `/api/ssh/ca` for clients' known_hosts.
    public var bastionSSH: (host: String, port: Int, hostKey: String)?
    /// Offboarding hooks beyond the store's own (the bastion's live sessions).
    public var extraOffboardingHooks: [any OffboardingHook] = []
    /// The mutual-TLS listener's URL as agents reach it (told to them at join).
    public var mtlsURL: String?
    /// Keys the identity-aware proxy's tickets for apps on their own host names.
    public var proxyTicketKey: [UInt8] = []
    /// Sign-in attempts per source network per minute.
    public var signInRatePerMinute = 120
    /// Reverse proxies whose X-Forwarded-For is believed.
    public var trustedProxies: [IPPrefix] = []
    let registry = PrometheusCollectorRegistry()

    public init(
        environment: ServiceEnvironment, publicURL: PublicURL, version: String, startedAt: Date, auditLog: AuditLog, policy: PolicyService,
        passkeys: PasskeyService
    ) {
        self.environment = environment
        self.publicURL = publicURL
        self.version = version
        self.startedAt = startedAt
        self.auditLog = auditLog
        self.policy = policy
        self.passkeys = passkeys
    }
}
