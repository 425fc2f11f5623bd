public import Foundation
public import GatehouseCore
import GatehousePolicy
public import GatehouseSSH

/// The SSH user certificate authority: a signed-in user's public key becomes a certificate for
/// exactly the logins the policy allows them, on the hosts it names, for hours. The private key
/// never reaches Gatehouse. Every issuance is recorded (serial, key fingerprint, principals,
/// validity) and audited before the certificate is returned; every refusal is audited too.
public struct SSHCertificateService: Sendable {
    let environment: ServiceEnvironment
    let policy: PolicyService
    let userCA: SigningKey
    let hostCA: SigningKey

    public init(environment: ServiceEnvironment, policy: PolicyService, userCA: SigningKey, hostCA: SigningKey) {
        self.environment = environment
        self.policy = policy
        self.userCA = userCA
        self.hostCA = hostCA
    }

    /// The CA keys as servers and clients trust them (`TrustedUserCAKeys`, `@cert-authority`).
    public var userCAKey: SSHPublicKey { SSHCertificate.publicKey(of: self.userCA) }
    public var hostCAKey: SSHPublicKey { SSHCertificate.publicKey(of: self.hostCA) }

    /// Signs a certificate the caller planned (the bastion's onward certificates) with the user CA.
    func sign(_ certificate: SSHCertificate, nonce: [UInt8]) throws -> SignedSSHCertificate {
        try certificate.signed(by: self.userCA, nonce: nonce)
    }

    public struct Issued: Sendable, Equatable {
        public let certificate: String
        public let serial: UInt64
        public let principals: [String]
        public let validAfter: Date
        public let validBefore: Date
        /// Logins (`login@host`) the policy would add after a fresh passkey check: left out of
        /// this certificate because the sign-in behind the token is older than their rule's `step_up`.
        public var stepUpWouldAdd: [String] = []
    }

    /// A login the policy allows only after a passkey check more recent than `lastStepUp`.
    public struct StepUpNeed: Sendable, Equatable {
        public let principal: String
        /// The rule's `step_up` window: the passkey check must be at most this old.
        public let within: Duration
    }

    /// The logins on `hosts` that a passkey check made now would add to what `lastStepUp` allows,
    /// each with its rule's window, so a refusal can name the real reason and a client can ask
    /// the person for exactly that (OIDC `max_age`).
    public func stepUpNeeds(for user: User, hosts: [String]?, sourceAddress: UInt128?, lastStepUp: Date?) -> [StepUpNeed] {
        let now = self.environment.time.now()
        let have = Set(self.permits(for: user, hosts: hosts, sourceAddress: sourceAddress, lastStepUp: lastStepUp).map(\.principal))
        let fresh = self.permits(for: user, hosts: hosts, sourceAddress: sourceAddress, lastStepUp: now).filter { !have.contains($0.principal) }
        guard !fresh.isEmpty else { return [] }
        let compiled = self.policy.active.policy
        let subject = compiled.subject(user: user.username.rawValue, now: now)
        let context = PolicyContext(now: now, sourceAddress: sourceAddress, lastStepUp: lastStepUp)
        var seen = Set<String>()
        return fresh.compactMap { permit in
            guard seen.insert(permit.principal).inserted else { return nil }
            if case .deny(let denial) = compiled.evaluate(.ssh(login: permit.login, host: permit.host), subject: subject, context: context),
                case .stepUpRequired(let within) = denial.reason
            {
                return StepUpNeed(principal: permit.principal, within: within)
            }
            // Several rules grant it and the engine named another reason: the tightest window
            // we know of is "now".
            return StepUpNeed(principal: permit.principal, within: .seconds(0))
        }.sorted { $0.principal < $1.principal }
    }

    /// The hosts `user` may reach with SSH, with their addresses and sshd port (for the CLI's ssh_config).
    public func reachableHosts(for user: User, sourceAddress: UInt128?, lastStepUp: Date?) -> [(name: String, addresses: [String], port: Int)] {
        let names = Set(self.permits(for: user, hosts: nil, sourceAddress: sourceAddress, lastStepUp: lastStepUp).map(\.host))
        return self.policy.active.policy.definitions.hosts.filter { names.contains($0.name) }.map {
            ($0.name, $0.addresses.filter(\.isSingleAddress).map(\.description), $0.sshPort)
        }
    }

    /// What the policy allows `user` now, as permits, on `hosts` (all hosts when nil).
    public func permits(for user: User, hosts: [String]?, sourceAddress: UInt128?, lastStepUp: Date?) -> [SSHLoginPermit] {
        let compiled = self.policy.active.policy
        let now = self.environment.time.now()
        let subject = compiled.subject(user: user.username.rawValue, now: now)
        let context = PolicyContext(now: now, sourceAddress: sourceAddress, lastStepUp: lastStepUp)
        let names = hosts ?? compiled.definitions.hosts.map(\.name)
        return names.flatMap { host in
            compiled.sshLogins(subject: subject, host: host, context: context).filter { grant in
                // A deny rule that depends on the source network cannot travel in a certificate
                // (source-address only narrows): if one could apply from somewhere, no permit.
                let anywhere = PolicyContext(now: now, sourceAddress: nil, lastStepUp: lastStepUp)
                if case .deny(let denial) = compiled.evaluate(.ssh(login: grant.login, host: host), subject: subject, context: anywhere),
                    denial.reason == .explicitDeny
                {
                    return false
                }
                return true
            }.map { grant in
                SSHLoginPermit(
                    login: grant.login, host: host, maxLifetime: grant.allowance.lifetime.map { TimeInterval($0.components.seconds) },
                    extensions: Set(grant.extensions), forceCommand: grant.forceCommand, sourceAddresses: grant.sourceAddresses?.map(\.description))
            }
        }
    }

    /// The revocation list hosts load as `RevokedKeys`: every revoked certificate that has not
    /// expired, by serial, and the keys those certificates were issued for, by SHA-256. Built
    /// from the inventory on each request, so it reflects every revocation committed so far.
    public func revocationList() async throws -> SSHKeyRevocationList {
        let now = self.environment.time.now()
        // An hour's grace past expiry: a host whose clock runs behind must not see a revoked
        // certificate come back to life.
        let revoked = try await self.environment.store.read { tx in try await tx.revokedSSHCertificates(at: now.addingTimeInterval(-3600)) }
        let version = revoked.compactMap(\.revokedAt).map { UInt64(max(0, $0.timeIntervalSince1970 * 1000)) }.max() ?? 0
        let hashes = revoked.compactMap { record -> [UInt8]? in
            guard record.keyFingerprint.hasPrefix("SHA256:") else { return nil }
            var b64 = String(record.keyFingerprint.dropFirst(7))
            while b64.count % 4 != 0 { b64 += "=" }
            return Data(base64Encoded: b64).map { [UInt8]($0) }
        }
        return SSHKeyRevocationList(
            version: version, generatedAt: UInt64(now.timeIntervalSince1970), comment: "gatehouse user CA",
            caKey: self.userCAKey, revokedSerials: revoked.map(\.serial), revokedKeyHashes: hashes)
    }

    /// `grantID`: the OIDC grant whose token asked; the certificate dies with that grant's session.
    /// `possession`: the proof that the asker holds the key (``SSHKeyPossession``) and the access
    /// token it must be bound to; nil only for callers that made the key themselves.
    public func issue(
        user: User, publicKey text: String, hosts: [String]?, lifetime: TimeInterval?, sourceAddress: String?, source: UInt128?, lastStepUp: Date?,
        requestID: String, grantID: String? = nil, possession: (proof: String?, accessToken: String)?
    ) async throws -> Issued {
        let env = self.environment
        let now = env.time.now()
        do {
            let key = try SSHPublicKey(authorizedKey: text)
            if let possession { try SSHKeyPossession.check(proof: possession.proof, key: key, accessToken: possession.accessToken) }
            if let hosts {
                guard !hosts.isEmpty, hosts.count <= 256 else { throw SSHError(.invalidCertificate, "name 1 to 256 hosts, or none for all") }
                let known = Set(self.policy.active.policy.definitions.hosts.map(\.name))
                for h in hosts where !known.contains(h) { throw SSHError(.invalidCertificate, "there is no host \(h.prefix(64)) in the policy") }
            }
            let permits = self.permits(for: user, hosts: hosts, sourceAddress: source, lastStepUp: lastStepUp)
            let needs = self.stepUpNeeds(for: user, hosts: hosts, sourceAddress: source, lastStepUp: lastStepUp)
            if permits.isEmpty, let tightest = needs.min(by: { $0.within < $1.within }) {
                let age =
                    lastStepUp.map {
                        " (your last passkey check was \(PolicyDuration.format(.seconds(Int64(max(0, now.timeIntervalSince($0)))))) ago)"
                    } ?? ""
                throw SSHError(
                    .stepUpRequired,
                    "\(needs.map(\.principal).joined(separator: ", ")) needs a passkey check within the last \(PolicyDuration.format(tightest.within))"
                        + " (the policy's step_up)\(age); sign in again with your passkey: gatehouse login --step-up")
            }
            let serial = SSHCertificate.randomSerial(using: env.random)
            let certificate = try SSHCertificatePlan.certificate(
                for: key, username: user.username.rawValue, permits: permits, requestedLifetime: lifetime,
                serial: serial, requestID: requestID, now: now)
            let signed = try certificate.signed(by: self.userCA, nonce: env.random.bytes(32))
            let record = SSHCertificateRecord(
                serial: serial, userID: user.id, kind: "user", keyFingerprint: key.fingerprint, principals: certificate.principals,
                keyID: certificate.keyID,
                validAfter: Date(timeIntervalSince1970: TimeInterval(certificate.validAfter)),
                validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)),
                createdAt: now, authTime: lastStepUp, grantID: grantID
            )
            try await env.store.commit { tx in
                // The account may have been offboarded since the token was checked; the lock
                // orders this with offboarding, so a certificate is either revoked by it or refused.
                try await tx.lockAccountChanges()
                guard try await tx.user(id: user.id)?.status == .active else { throw GatehouseError(.unauthenticated, "this account is not active") }
                try await SessionCut.requireLiveGrant(grantID, in: tx, at: now)
                try await tx.insertSSHCertificate(record)
                return Change(
                    (),
                    event: AuditEvent(
                        code: .sshCertificateIssued, time: now, actor: .user(user.username), subject: .sshCertificate(serial), requestID: requestID,
                        sourceAddress: sourceAddress,
                        details: [
                            "serial": String(serial), "key": key.fingerprint, "principals": certificate.principals.joined(separator: ","),
                            "valid_before": String(certificate.validBefore), "extensions": certificate.extensions.sorted().joined(separator: ","),
                            "critical_options": certificate.criticalOptions.keys.sorted().joined(separator: ","),
                        ]
                    ))
            }
            return Issued(
                certificate: signed.line, serial: serial, principals: certificate.principals, validAfter: record.validAfter,
                validBefore: record.validBefore,
                stepUpWouldAdd: needs.map(\.principal))
        } catch let error as SSHError {
            try await env.store.commit { _ in
                Change(
                    (),
                    event: AuditEvent(
                        code: .sshCertificateRefused, time: now, actor: .user(user.username), subject: .user(user.username), outcome: .denied,
                        reason: error.message, requestID: requestID, sourceAddress: sourceAddress))
            }
            throw error
        }
    }
}

/// Offboarding marks every unexpired SSH certificate of the user revoked in the inventory (the
/// key revocation list served to hosts is built from it).
public struct SSHCertificateOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "ssh_certificates" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        try await tx.revokeSSHCertificates(userID: user.id, at: time)
    }
}
