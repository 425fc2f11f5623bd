public import Foundation
public import GatehouseCore
public import GatehousePKI
import GatehousePolicy
public import GatehouseSSH

/// Enrolling servers: an administrator makes a one-time join token for a host the policy
/// defines; the host's agent trades it (with its SSH host key) for a host certificate whose
/// principals are the host's name and addresses, and an agent token for renewals. Users' `ssh`
/// then trusts the host through the host CA (`@cert-authority`), never on first use.
public struct HostEnrollmentService: Sendable {
    public static let joinTokenLifetime: TimeInterval = 24 * 3600
    public static let hostCertificateLifetime: TimeInterval = 7 * 24 * 3600

    public static let agentCertificateLifetime: TimeInterval = 24 * 3600

    let environment: ServiceEnvironment
    let policy: PolicyService
    let ssh: SSHCertificateService
    /// The X.509 authority that gives agents their mutual-TLS identity; nil gives none.
    let pki: PKIService?

    /// Repeated refused joins from one network are counted, not each logged.
    let failures: FailureAudit

    public init(
        environment: ServiceEnvironment, policy: PolicyService, ssh: SSHCertificateService, pki: PKIService? = nil,
        failures: FailureAudit = FailureAudit()
    ) {
        self.failures = failures
        self.environment = environment
        self.policy = policy
        self.ssh = ssh
        self.pki = pki
    }

    /// A one-time join token for `name` (shown once; only its hash is kept). A new token replaces
    /// an unused older one; a host that already joined can be re-enrolled (its agent token ends).
    /// `labels`: what the administrator expects this host to carry. The policy is where hosts and
    /// their labels are defined (rules select on them there); a mismatch is refused, so a server
    /// is not enrolled under a name whose rules were written for another kind of machine.
    public func addHost(name: String, labels: [String: String] = [:], actor: String, requestID: String? = nil) async throws -> (
        token: String, expiresAt: Date
    ) {
        guard let defined = self.policy.active.policy.definitions.hosts.first(where: { $0.name == name }) else {
            throw GatehouseError(
                .notFound, "the policy defines no host \(name.prefix(64)); add `host \(name.prefix(64)) { addresses = [...] }` and apply it first")
        }
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) where defined.labels[k] != v {
            let actual = defined.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            throw GatehouseError(
                .conflict,
                "host \(name.prefix(64)) has \(k.prefix(64))=\(defined.labels[k] ?? "(none)") in the policy, not \(v.prefix(64)) (its labels: \(actual.isEmpty ? "none" : actual))"
            )
        }
        let env = self.environment
        let token = "ghjt_" + Base64URL.encode(env.random.bytes(32))
        let now = env.time.now()
        let expires = now.addingTimeInterval(Self.joinTokenLifetime)
        try await env.store.commit { tx in
            let existing = try await tx.host(named: name)
            // A re-enrolled host's earlier agent identity and workload certificates end here.
            _ = try await tx.revokePKICertificates(userID: nil, requester: "host:\(name)", reason: "host re-enrolled", at: now)
            _ = try await tx.deleteNetworkHost(name: name)
            try await tx.saveHost(
                HostRecord(
                    name: name, joinTokenHash: InvitationToken.hash(of: token), joinExpiresAt: expires, joinedAt: nil, hostKeyFingerprint: nil,
                    agentTokenHash: nil, createdAt: existing?.createdAt ?? now))
            return Change(
                (),
                event: AuditEvent(
                    code: .hostAdded, time: now, actor: .stored(actor), subject: .host(name), requestID: requestID,
                    details: ["expires_at": String(Int(expires.timeIntervalSince1970)), "re_enrolled": String(existing?.joinedAt != nil)]))
        }
        return (token, expires)
    }

    public struct Joined: Sendable {
        public let host: String
        public let hostCertificate: String
        public let principals: [String]
        public let validBefore: Date
        public let agentToken: String?
        public let userCA: String
        /// The agent's mutual-TLS certificate and its intermediate (PEM), when it sent a CSR.
        public var agentCertificate: String? = nil
        /// The X.509 root agents trust for the mutual-TLS listener (PEM).
        public var rootCertificate: String? = nil
    }

    /// Trades a join token and the host's public key for its first host certificate.
    public func join(token: String, hostKey text: String, agentCSR: String? = nil, sourceAddress: String?) async throws -> Joined {
        let env = self.environment
        let now = env.time.now()
        guard token.hasPrefix("ghjt_"), token.utf8.count <= 64,
            let record = try await env.store.read({ tx in try await tx.host(joinTokenHash: InvitationToken.hash(of: token)) }),
            let expires = record.joinExpiresAt, expires > now, record.joinedAt == nil
        else {
            try await FailureAudit.commit(
                self.failures.admit(
                    AuditEvent(
                        code: .hostJoinRefused, time: now, actor: .agent, subject: .unknownHost, outcome: .denied,
                        reason: "unknown, used or expired join token", sourceAddress: sourceAddress)), to: env.store)
            throw GatehouseError(
                .unauthenticated, "this join token is not valid: it may have been used or have expired; make a new one with gatehouse admin host add")
        }
        let key = try SSHPublicKey(authorizedKey: text)
        // The CSR is checked before the token is spent, so a malformed one costs nothing.
        let request = try agentCSR.map { text throws(GatehouseError) in try SigningRequest(pemOrDER: Array(text.utf8)) }
        if request != nil && self.pki == nil { throw GatehouseError(.invalidInput, "this server has no X.509 authority for agent identities") }
        let agentToken = Self.agentTokenPrefix + Base64URL.encode(env.random.bytes(32))
        let (certificate, signed) = try self.hostCertificate(name: record.name, key: key, now: now)
        try await env.store.commit { tx in
            // Single use: one conditional update spends it, so two racing joins cannot both win.
            guard
                try await tx.claimHostJoin(
                    name: record.name, joinTokenHash: InvitationToken.hash(of: token), hostKeyFingerprint: key.fingerprint,
                    agentTokenHash: InvitationToken.hash(of: agentToken), at: now)
            else {
                throw GatehouseError(.unauthenticated, "this join token was used concurrently")
            }
            return Change(
                (),
                first: AuditEvent(
                    code: .hostJoined, time: now, actor: .host(record.name), subject: .host(record.name), sourceAddress: sourceAddress,
                    details: ["host_key": key.fingerprint]),
                rest: [self.issuedEvent(certificate, name: record.name, key: key, now: now, sourceAddress: sourceAddress)])
        }
        var joined = Joined(
            host: record.name, hostCertificate: signed.line, principals: certificate.principals,
            validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), agentToken: agentToken,
            userCA: self.ssh.userCAKey.authorizedKey)
        if let request, let pki = self.pki {
            // Issued only once the join is ours: a racing loser never gets a live identity.
            let issued = try await self.agentIdentity(host: record.name, enrolledAt: now, request: request, pki: pki, sourceAddress: sourceAddress)
            joined.agentCertificate = issued.chain
            joined.rootCertificate = issued.root
        }
        return joined
    }

    /// The agent's mutual-TLS certificate: `spiffe://TD/gatehouse/agent/NAME`, for the key in
    /// `request` (made on the host; it never leaves it). A CSR naming another ID is refused.
    public func agentIdentity(host: String, enrolledAt: Date, request: SigningRequest, pki: PKIService, sourceAddress: String?) async throws -> (
        chain: String, root: String, notAfter: Date
    ) {
        let id = pki.agentID(host: host)
        if let asked = request.spiffeID, asked != id { throw GatehouseError(.forbidden, "an agent's identity is \(id), not \(asked.prefix(200))") }
        guard request.dnsNames.isEmpty, request.ipAddresses.isEmpty else {
            throw GatehouseError(.forbidden, "an agent's identity carries no DNS or IP names")
        }
        let issued = try await pki.issueInternal(
            publicKey: request.publicKey, spiffeID: id, lifetime: Self.agentCertificateLifetime, requester: "host:\(host)",
            enrollment: (host, enrolledAt), sourceAddress: sourceAddress)
        let active = try pki.current()
        return (try issued.chain.map(Authority.pem).joined(), try Authority.pem(active.root), issued.certificate.notValidAfter)
    }

    /// A fresh host certificate for an agent that proved who it is over mutual TLS.
    public func renew(host name: String, hostKey text: String, sourceAddress: String?) async throws -> Joined {
        guard let record = try await self.environment.store.read({ tx in try await tx.host(named: name) }), record.joinedAt != nil else {
            throw GatehouseError(.unauthenticated, "host \(name) is not enrolled; join again")
        }
        return try await self.renew(record: record, hostKey: text, sourceAddress: sourceAddress)
    }

    /// A fresh host certificate for a joined host's agent (same host key as at join).
    /// An agent's long-lived token begins with its own prefix, distinct from every OIDC token's
    /// (`ghat_` is an access token): secret scanners and incident response tell them apart.
    /// Tokens issued before carried `ghat_` and still work (they are looked up by hash).
    public static let agentTokenPrefix = "ghag_"

    public func renew(agentToken: String, hostKey text: String, sourceAddress: String?) async throws -> Joined {
        let env = self.environment
        guard agentToken.utf8.count <= 64,
            let record = try await env.store.read({ tx in try await tx.host(agentTokenHash: InvitationToken.hash(of: agentToken)) })
        else {
            throw GatehouseError(.unauthenticated, "this agent is not enrolled (or was re-enrolled); join again")
        }
        return try await self.renew(record: record, hostKey: text, sourceAddress: sourceAddress)
    }

    func renew(record: HostRecord, hostKey text: String, sourceAddress: String?) async throws -> Joined {
        let now = self.environment.time.now()
        // A host the policy no longer defines gets no new certificate.
        guard self.policy.active.policy.definitions.hosts.contains(where: { $0.name == record.name }) else {
            throw GatehouseError(.notFound, "host \(record.name) is no longer in the policy")
        }
        let key = try SSHPublicKey(authorizedKey: text)
        guard key.fingerprint == record.hostKeyFingerprint else {
            throw GatehouseError(.conflict, "this is not the host key the agent joined with; re-enroll the host to change it")
        }
        let (certificate, signed) = try self.hostCertificate(name: record.name, key: key, now: now)
        try await self.environment.store.commit { _ in
            Change((), event: self.issuedEvent(certificate, name: record.name, key: key, now: now, sourceAddress: sourceAddress))
        }
        return Joined(
            host: record.name, hostCertificate: signed.line, principals: certificate.principals,
            validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), agentToken: nil, userCA: self.ssh.userCAKey.authorizedKey
        )
    }

    func hostCertificate(name: String, key: SSHPublicKey, now: Date) throws -> (SSHCertificate, SignedSSHCertificate) {
        let addresses =
            self.policy.active.policy.definitions.hosts.first { $0.name == name }?.addresses.filter(\.isSingleAddress).map(\.description) ?? []
        let serial = SSHCertificate.randomSerial(using: self.environment.random)
        let certificate = SSHCertificate(
            kind: .host, publicKey: key, serial: serial, keyID: "host \(name) serial:\(serial)", principals: [name] + addresses,
            validAfter: UInt64(now.timeIntervalSince1970 - 60), validBefore: UInt64(now.timeIntervalSince1970 + Self.hostCertificateLifetime))
        return (certificate, try certificate.signed(by: self.ssh.hostCA, nonce: self.environment.random.bytes(32)))
    }

    func issuedEvent(_ c: SSHCertificate, name: String, key: SSHPublicKey, now: Date, sourceAddress: String?) -> AuditEvent {
        AuditEvent(
            code: .hostCertificateIssued, time: now, actor: .host(name), subject: .sshCertificate(c.serial), sourceAddress: sourceAddress,
            details: [
                "serial": String(c.serial), "key": key.fingerprint, "principals": c.principals.joined(separator: ","),
                "valid_before": String(c.validBefore),
            ])
    }
}
