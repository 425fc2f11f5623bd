public import Foundation
public import GatehouseCore
import GatehousePolicy
public import GatehouseSSH

/// Enrolling servers: an administrator makes a one-time join token for a host the policy
/// defines; the host's agent trades it (with its SSH host key) for a host certificate whose
/// principals are the host's name and addresses, and an agent token for renewals. Users' `ssh`
/// then trusts the host through the host CA (`@cert-authority`), never on first use.
public struct HostEnrollmentService: Sendable {
    public static let joinTokenLifetime: TimeInterval = 24 * 3600
    public static let hostCertificateLifetime: TimeInterval = 7 * 24 * 3600

    let environment: ServiceEnvironment
    let policy: PolicyService
    let ssh: SSHCertificateService

    public init(environment: ServiceEnvironment, policy: PolicyService, ssh: SSHCertificateService) {
        self.environment = environment
        self.policy = policy
        self.ssh = ssh
    }

    /// A one-time join token for `name` (shown once; only its hash is kept). A new token replaces
    /// an unused older one; a host that already joined can be re-enrolled (its agent token ends).
    /// `labels`: what the administrator expects this host to carry. The policy is where hosts and
    /// their labels are defined (rules select on them there); a mismatch is refused, so a server
    /// is not enrolled under a name whose rules were written for another kind of machine.
    public func addHost(name: String, labels: [String: String] = [:], actor: String, requestID: String? = nil) async throws -> (token: String, expiresAt: Date) {
        guard let defined = self.policy.active.policy.definitions.hosts.first(where: { $0.name == name }) else {
            throw GatehouseError(.notFound, "the policy defines no host \(name.prefix(64)); add `host \(name.prefix(64)) { addresses = [...] }` and apply it first")
        }
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) where defined.labels[k] != v {
            let actual = defined.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            throw GatehouseError(.conflict, "host \(name.prefix(64)) has \(k.prefix(64))=\(defined.labels[k] ?? "(none)") in the policy, not \(v.prefix(64)) (its labels: \(actual.isEmpty ? "none" : actual))")
        }
        let env = self.environment
        let token = "ghjt_" + Base64URL.encode(env.random.bytes(32))
        let now = env.time.now()
        let expires = now.addingTimeInterval(Self.joinTokenLifetime)
        try await env.store.commit { tx in
            let existing = try await tx.host(named: name)
            try await tx.saveHost(HostRecord(name: name, joinTokenHash: InvitationToken.hash(of: token), joinExpiresAt: expires, joinedAt: nil, hostKeyFingerprint: nil,
                                             agentTokenHash: nil, createdAt: existing?.createdAt ?? now))
            return Change((), event: AuditEvent(code: .hostAdded, time: now, actor: actor, subject: "host:\(name)", requestID: requestID,
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
    }

    /// Trades a join token and the host's public key for its first host certificate.
    public func join(token: String, hostKey text: String, sourceAddress: String?) async throws -> Joined {
        let env = self.environment
        let now = env.time.now()
        guard token.hasPrefix("ghjt_"), token.utf8.count <= 64,
              let record = try await env.store.read({ tx in try await tx.host(joinTokenHash: InvitationToken.hash(of: token)) }),
              let expires = record.joinExpiresAt, expires > now, record.joinedAt == nil else {
            try await env.store.commit { _ in
                Change((), event: AuditEvent(code: .hostJoinRefused, time: now, actor: "agent", subject: "host:unknown", outcome: .denied,
                                             reason: "unknown, used or expired join token", sourceAddress: sourceAddress))
            }
            throw GatehouseError(.unauthenticated, "this join token is not valid: it may have been used or have expired; make a new one with gatehouse admin host add")
        }
        let key = try SSHPublicKey(authorizedKey: text)
        let agentToken = "ghat_" + Base64URL.encode(env.random.bytes(32))
        let (certificate, signed) = try self.hostCertificate(name: record.name, key: key, now: now)
        try await env.store.commit { tx in
            // Single use: one conditional update spends it, so two racing joins cannot both win.
            guard try await tx.claimHostJoin(name: record.name, joinTokenHash: InvitationToken.hash(of: token), hostKeyFingerprint: key.fingerprint,
                                             agentTokenHash: InvitationToken.hash(of: agentToken), at: now) else {
                throw GatehouseError(.unauthenticated, "this join token was used concurrently")
            }
            return Change((), first: AuditEvent(code: .hostJoined, time: now, actor: "host:\(record.name)", subject: "host:\(record.name)", sourceAddress: sourceAddress,
                                                details: ["host_key": key.fingerprint]),
                          rest: [self.issuedEvent(certificate, name: record.name, key: key, now: now, sourceAddress: sourceAddress)])
        }
        return Joined(host: record.name, hostCertificate: signed.line, principals: certificate.principals,
                      validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), agentToken: agentToken, userCA: self.ssh.userCAKey.authorizedKey)
    }

    /// A fresh host certificate for a joined host's agent (same host key as at join).
    public func renew(agentToken: String, hostKey text: String, sourceAddress: String?) async throws -> Joined {
        let env = self.environment
        let now = env.time.now()
        guard agentToken.utf8.count <= 64, let record = try await env.store.read({ tx in try await tx.host(agentTokenHash: InvitationToken.hash(of: agentToken)) }) else {
            throw GatehouseError(.unauthenticated, "this agent is not enrolled (or was re-enrolled); join again")
        }
        // A host the policy no longer defines gets no new certificate.
        guard self.policy.active.policy.definitions.hosts.contains(where: { $0.name == record.name }) else {
            throw GatehouseError(.notFound, "host \(record.name) is no longer in the policy")
        }
        let key = try SSHPublicKey(authorizedKey: text)
        guard key.fingerprint == record.hostKeyFingerprint else {
            throw GatehouseError(.conflict, "this is not the host key the agent joined with; re-enroll the host to change it")
        }
        let (certificate, signed) = try self.hostCertificate(name: record.name, key: key, now: now)
        try await env.store.commit { _ in Change((), event: self.issuedEvent(certificate, name: record.name, key: key, now: now, sourceAddress: sourceAddress)) }
        return Joined(host: record.name, hostCertificate: signed.line, principals: certificate.principals,
                      validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), agentToken: nil, userCA: self.ssh.userCAKey.authorizedKey)
    }

    func hostCertificate(name: String, key: SSHPublicKey, now: Date) throws -> (SSHCertificate, SignedSSHCertificate) {
        let addresses = self.policy.active.policy.definitions.hosts.first { $0.name == name }?.addresses.filter(\.isSingleAddress).map(\.description) ?? []
        let serial = SSHCertificate.randomSerial(using: self.environment.random)
        let certificate = SSHCertificate(kind: .host, publicKey: key, serial: serial, keyID: "host \(name) serial:\(serial)", principals: [name] + addresses,
                                         validAfter: UInt64(now.timeIntervalSince1970 - 60), validBefore: UInt64(now.timeIntervalSince1970 + Self.hostCertificateLifetime))
        return (certificate, try certificate.signed(by: self.ssh.hostCA, nonce: self.environment.random.bytes(32)))
    }

    func issuedEvent(_ c: SSHCertificate, name: String, key: SSHPublicKey, now: Date, sourceAddress: String?) -> AuditEvent {
        AuditEvent(code: .hostCertificateIssued, time: now, actor: "host:\(name)", subject: "ssh-cert:\(c.serial)", sourceAddress: sourceAddress,
                   details: ["serial": String(c.serial), "key": key.fingerprint, "principals": c.principals.joined(separator: ","), "valid_before": String(c.validBefore)])
    }
}
