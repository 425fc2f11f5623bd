public import Foundation
import GatehouseAudit
public import GatehouseCore
public import GatehousePKI
import GatehousePolicy
public import X509

/// The X.509 authority for services: keeps the root and intermediate, signs requests the policy
/// allows, keeps the inventory, revokes, publishes the CRL, and decides whether a mutual-TLS
/// peer whose chain verified is still someone Gatehouse vouches for.
public final class PKIService: Sendable {
    /// How long before an online intermediate expires it is replaced at start.
    public static let intermediateRenewal: TimeInterval = 30 * 24 * 3600
    /// Certificates longer-lived than this carry the CRL's URL.
    public static let crlThreshold: TimeInterval = 24 * 3600
    public static let crlValidity: TimeInterval = 3600
    /// Path of SPIFFE IDs reserved for Gatehouse's own links; the policy cannot grant them.
    public static let reservedSegment = "gatehouse"

    public struct Settings: Sendable {
        public var trustDomain: String
        public var crlURL: String?
        /// Names in the server's own certificate: nobody else may obtain them.
        public var serverDNSNames: [String]
        public var serverIPAddresses: [IPPrefix]
        public var algorithm: PKIKeyAlgorithm

        public init(
            trustDomain: String, crlURL: String? = nil, serverDNSNames: [String] = [], serverIPAddresses: [IPPrefix] = [],
            algorithm: PKIKeyAlgorithm = .p256
        ) {
            self.trustDomain = trustDomain
            self.crlURL = crlURL
            self.serverDNSNames = serverDNSNames
            self.serverIPAddresses = serverIPAddresses
            self.algorithm = algorithm
        }
    }

    /// The authority in use.
    public struct Active: Sendable {
        public let id: String
        public let root: Certificate
        public let intermediate: Certificate
        public let rootOffline: Bool
        let key: SigningKey

        public var chain: [Certificate] { [self.intermediate, self.root] }
    }

    public enum Requester: Sendable {
        case user(User)
        /// A host's agent, with the enrollment it proved (its host record's `joinedAt`): issuance
        /// is refused unless the host is still enrolled under that same enrollment.
        case host(String, enrolledAt: Date)

        var name: String {
            switch self {
            case .user(let u): "user:\(u.username.rawValue)"
            case .host(let h, _): "host:\(h)"
            }
        }

        var enrollment: (host: String, at: Date)? {
            if case .host(let h, let at) = self { return (h, at) }
            return nil
        }
    }

    /// Enrollment times compared as the store keeps them (milliseconds).
    static func sameInstant(_ a: Date, _ b: Date) -> Bool { CanonicalEntry.milliseconds(a) == CanonicalEntry.milliseconds(b) }

    public struct Issued: Sendable {
        public let certificate: Certificate
        public let serial: String
        public let spiffeID: String
        public let chain: [Certificate]
    }

    /// Who a verified mutual-TLS peer is.
    public enum Peer: Sendable, Equatable {
        /// A host's agent (`spiffe://TD/gatehouse/agent/NAME`), of the host's current enrollment.
        case agent(host: String, enrolledAt: Date)
        /// Any other identity Gatehouse issued.
        case workload(spiffeID: String, requester: String)
    }

    public let settings: Settings
    let environment: ServiceEnvironment
    let policy: PolicyService
    let rootKey: SigningKey
    let sealer: KeySealer
    let active = LockedBox<Active?>(nil)
    let peers = GenerationCache<PeerStatus>(capacity: 10_000)
    let crlCache = LockedBox<[String: (generation: UInt64, made: Date, der: [UInt8])]>([:])

    enum PeerStatus: Sendable {
        case ok(Peer, notAfter: Date)
        case refused(String)
    }

    public init(environment: ServiceEnvironment, policy: PolicyService, rootKey: SigningKey, sealer: KeySealer, settings: Settings) throws {
        guard SPIFFEID.isValidTrustDomain(settings.trustDomain) else {
            throw GatehouseError(.configInvalid, "trust domain '\(settings.trustDomain.prefix(64))' is not valid: lower-case a-z, 0-9, '.', '-', '_'")
        }
        self.environment = environment
        self.policy = policy
        self.rootKey = rootKey
        self.sealer = sealer
        self.settings = settings
    }

    public var trustDomain: String { self.settings.trustDomain }

    public func agentID(host: String) -> String { "spiffe://\(self.trustDomain)/\(Self.reservedSegment)/agent/\(host)" }
    public var serverID: String { "spiffe://\(self.trustDomain)/\(Self.reservedSegment)/server" }

    public func current() throws -> Active {
        guard let active = self.active.value else {
            throw GatehouseError(
                .notFound,
                "the X.509 authority has no active intermediate for \(self.trustDomain); import one (gatehouse admin pki import-intermediate)")
        }
        return active
    }

    // MARK: authority

    /// Loads the newest active authority for the trust domain. With the root key online, makes
    /// one (or a fresh intermediate) when there is none, it is for another trust domain, or its
    /// intermediate is near expiry. An offline root's intermediate is never replaced here.
    public func start() async throws {
        for attempt in 0..<3 {
            do {
                return try await self.startOnce()
            } catch let error as GatehouseError where error.code == .conflict && attempt < 2 {
                continue  // another replica made the authority meanwhile: load theirs
            }
        }
    }

    func startOnce() async throws {
        let env = self.environment
        let now = env.time.now()
        let records = try await env.store.read { tx in try await tx.pkiAuthorities() }
        // An intermediate from an offline root, once imported, wins over the generated one: the
        // operator chose to keep the root offline. Otherwise the newest.
        let candidates = records.filter { $0.status == .active && $0.trustDomain == self.trustDomain }
        if let record = candidates.first(where: \.rootOffline) ?? candidates.first {
            let loaded = try self.load(record)
            if loaded.rootOffline || loaded.intermediate.notValidAfter.timeIntervalSince(now) > Self.intermediateRenewal {
                self.active.mutate { $0 = loaded }
                return
            }
        } else if records.contains(where: { $0.trustDomain == self.trustDomain && $0.rootOffline }) {
            return  // waiting for an intermediate from the offline root: issue nothing meanwhile
        }
        // A root certificate for this trust domain made earlier with the same key is kept, so
        // verifiers that pinned it go on trusting the new intermediate.
        var root: Certificate? = nil
        for record in records where record.trustDomain == self.trustDomain && !record.rootOffline && record.status == .active {
            if let r = try? Certificate(derEncoded: record.rootDER), r.publicKey == self.rootKey.certificatePrivateKey.publicKey,
                r.notValidAfter.timeIntervalSince(now) > Authority.intermediateLifetime
            {
                root = r
                break
            }
        }
        let rootCertificate =
            try root ?? Authority.root(key: self.rootKey, trustDomain: self.trustDomain, serial: Authority.randomSerial(using: env.random), now: now)
        let key = SigningKey.generate(self.settings.algorithm.keyAlgorithm, using: env.random)
        let intermediate = try Authority.intermediate(
            publicKey: key.certificatePrivateKey.publicKey, trustDomain: self.trustDomain, root: rootCertificate,
            rootKey: self.rootKey, serial: Authority.randomSerial(using: env.random), now: now)
        let record = PKIAuthorityRecord(
            id: Identifier.make(using: env.random), trustDomain: self.trustDomain, algorithm: key.algorithm,
            rootDER: try Authority.der(rootCertificate),
            intermediateDER: try Authority.der(intermediate),
            sealedIntermediateKey: self.sealer.seal(key.rawPrivate, purpose: .x509Intermediate, random: env.random),
            rootOffline: false, status: .active, createdAt: now
        )
        let seen = Set(records.map(\.id))
        try await env.store.commit { tx in
            // Serialized with other replicas' starts (the account lock is the store's one
            // cross-replica lock): if one made an authority since we looked, use theirs.
            try await tx.lockAccountChanges()
            if try await tx.pkiAuthorities().contains(where: { !seen.contains($0.id) && $0.trustDomain == self.trustDomain }) {
                throw GatehouseError(.conflict, "another replica made the X.509 authority concurrently")
            }
            try await tx.insertPKIAuthority(record)
            return Change(
                (),
                event: AuditEvent(
                    code: .pkiAuthorityActivated, time: now, actor: .system, subject: .pki(record.id),
                    details: [
                        "trust_domain": self.trustDomain, "intermediate_serial": Authority.serialHex(intermediate.serialNumber),
                        "root_serial": Authority.serialHex(rootCertificate.serialNumber), "algorithm": key.algorithm.rawValue,
                    ]))
        }
        self.active.mutate { $0 = Active(id: record.id, root: rootCertificate, intermediate: intermediate, rootOffline: false, key: key) }
    }

    func load(_ record: PKIAuthorityRecord) throws -> Active {
        let key = try SigningKey(
            algorithm: record.algorithm, rawPrivate: try self.sealer.open(record.sealedIntermediateKey, purpose: .x509Intermediate))
        let root = try Certificate(derEncoded: record.rootDER)
        let intermediate = try Certificate(derEncoded: record.intermediateDER)
        guard intermediate.publicKey == key.certificatePrivateKey.publicKey else {
            throw GatehouseError(.keyMaterialCorrupted, "the stored intermediate key does not match its certificate (tampered)")
        }
        return Active(id: record.id, root: root, intermediate: intermediate, rootOffline: record.rootOffline, key: key)
    }

    /// For an offline root: makes the intermediate's key here (it never leaves, sealed) and
    /// returns a CSR for the root's holder to sign with `gatehouse pki sign-intermediate`.
    public func requestIntermediate(actor: String) async throws -> String {
        let env = self.environment
        let now = env.time.now()
        let key = SigningKey.generate(self.settings.algorithm.keyAlgorithm, using: env.random)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try Authority.intermediateName(trustDomain: self.trustDomain), privateKey: key.certificatePrivateKey,
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: key.pkiAlgorithm.signatureAlgorithm)
        let record = PKIAuthorityRecord(
            id: Identifier.make(using: env.random), trustDomain: self.trustDomain, algorithm: key.algorithm, rootDER: [], intermediateDER: [],
            sealedIntermediateKey: self.sealer.seal(key.rawPrivate, purpose: .x509Intermediate, random: env.random),
            rootOffline: true, status: .pending, createdAt: now)
        try await env.store.commit { tx in
            try await tx.insertPKIAuthority(record)
            return Change(
                (),
                event: AuditEvent(
                    code: .pkiIntermediateRequested, time: now, actor: .stored(actor), subject: .pki(record.id),
                    details: ["trust_domain": self.trustDomain]
                ))
        }
        return try csr.serializeAsPEM().pemString
    }

    /// Brings in an intermediate signed by an offline root (PEM: the intermediate, then the root).
    /// It must be for a key this server requested, a CA limited to our trust domain by name
    /// constraints, and signed by the root, which must be a self-signed CA.
    public func importIntermediate(pem: String, actor: String) async throws -> Active {
        let env = self.environment
        let now = env.time.now()
        let blocks = try PEM.decodeAll(pem, label: "CERTIFICATE")
        guard blocks.count == 2 else {
            throw GatehouseError(.invalidInput, "give the intermediate and then the root certificate (2 PEM blocks), found \(blocks.count)")
        }
        let intermediate: Certificate
        let root: Certificate
        do {
            intermediate = try Certificate(derEncoded: blocks[0])
            root = try Certificate(derEncoded: blocks[1])
        } catch {
            throw GatehouseError(.invalidInput, "a certificate in the bundle is not valid DER")
        }
        let pending = try await env.store.read { tx in try await tx.pkiAuthorities() }.filter {
            $0.status == .pending && $0.trustDomain == self.trustDomain
        }
        guard let record = pending.first(where: { (try? self.sealedKeyMatches($0, intermediate.publicKey)) == true }) else {
            throw GatehouseError(
                .invalidInput,
                "this intermediate is not for a key this server requested for \(self.trustDomain); run gatehouse admin pki request-intermediate first"
            )
        }
        guard root.subject == root.issuer, root.publicKey.isValidSignature(root.signature, for: root),
            case .isCertificateAuthority = try root.extensions.basicConstraints ?? .notCertificateAuthority,
            try root.extensions.keyUsage?.keyCertSign == true
        else {
            throw GatehouseError(.invalidInput, "the second certificate is not a self-signed CA root")
        }
        guard intermediate.issuer == root.subject, root.publicKey.isValidSignature(intermediate.signature, for: intermediate) else {
            throw GatehouseError(.invalidInput, "the intermediate is not signed by this root")
        }
        guard case .isCertificateAuthority = try intermediate.extensions.basicConstraints ?? .notCertificateAuthority,
            let usage = try intermediate.extensions.keyUsage, usage.keyCertSign,
            let constraints = try intermediate.extensions.nameConstraints, Array(constraints.permittedURIDomains) == [self.trustDomain],
            intermediate.extensions.first(where: { $0.oid == .X509ExtensionID.nameConstraints })?.critical == true
        else {
            throw GatehouseError(
                .invalidInput, "the intermediate must be a CA with keyCertSign and name constraints permitting only URIs in \(self.trustDomain)")
        }
        guard intermediate.notValidBefore <= now.addingTimeInterval(Authority.backdate),
            intermediate.notValidAfter > now.addingTimeInterval(24 * 3600),
            intermediate.notValidAfter <= root.notValidAfter
        else {
            throw GatehouseError(.invalidInput, "the intermediate is not valid now, expires within a day, or outlives its root")
        }
        let rootDER = try Authority.der(root)
        let intermediateDER = try Authority.der(intermediate)
        try await env.store.commit { tx in
            guard try await tx.activatePKIAuthority(id: record.id, rootDER: rootDER, intermediateDER: intermediateDER) else {
                throw GatehouseError(.conflict, "this intermediate was imported already")
            }
            return Change(
                (),
                event: AuditEvent(
                    code: .pkiAuthorityActivated, time: now, actor: .stored(actor), subject: .pki(record.id),
                    details: [
                        "trust_domain": self.trustDomain, "intermediate_serial": Authority.serialHex(intermediate.serialNumber),
                        "root_serial": Authority.serialHex(root.serialNumber), "root_offline": "true",
                    ]))
        }
        var activated = record
        activated.status = .active
        activated.rootDER = rootDER
        activated.intermediateDER = intermediateDER
        let loaded = try self.load(activated)
        self.active.mutate { $0 = loaded }
        return loaded
    }

    func sealedKeyMatches(_ record: PKIAuthorityRecord, _ key: Certificate.PublicKey) throws -> Bool {
        let raw = try self.sealer.open(record.sealedIntermediateKey, purpose: .x509Intermediate)
        return try SigningKey(algorithm: record.algorithm, rawPrivate: raw).certificatePrivateKey.publicKey == key
    }

    // MARK: issuance

    /// Signs `request` for `requester` if the policy lets them obtain its SPIFFE ID, with the DNS
    /// names of the identities that grant it and (for hosts) the host's own addresses.
    /// `grantID`: the OIDC grant whose token asked (a person's certificate dies with its session).
    public func sign(
        _ request: SigningRequest, requester: Requester, lifetime requested: TimeInterval?, sourceAddress: String?, requestID: String?,
        grantID: String? = nil
    ) async throws -> Issued {
        let env = self.environment
        let now = env.time.now()
        do {
            let (profile, userID) = try self.authorize(request, requester: requester, lifetime: requested, now: now)
            return try await self.issue(
                publicKey: request.publicKey, profile: profile, requester: requester.name, userID: userID, enrollment: requester.enrollment,
                sourceAddress: sourceAddress, requestID: requestID, grantID: grantID)
        } catch let error as GatehouseError where [.invalidInput, .forbidden, .unauthenticated].contains(error.code) {
            try await env.store.commit { _ in
                Change(
                    (),
                    event: AuditEvent(
                        code: .pkiCertificateRefused, time: now, actor: requester.name,
                        subject: request.spiffeID.map { "spiffe:\($0.prefix(200))" } ?? requester.name,
                        outcome: .denied, reason: error.message, requestID: requestID, sourceAddress: sourceAddress))
            }
            throw error
        }
    }

    func authorize(_ request: SigningRequest, requester: Requester, lifetime requested: TimeInterval?, now: Date) throws -> (
        Authority.LeafProfile, String?
    ) {
        guard let id = request.spiffeID else {
            throw GatehouseError(.invalidInput, "name the SPIFFE ID as a URI in the request's subjectAltName (spiffe://\(self.trustDomain)/...)")
        }
        let parts = try SPIFFEID.split(id)
        guard parts.trustDomain == self.trustDomain else {
            throw GatehouseError(.forbidden, "this authority issues for trust domain \(self.trustDomain) only, not \(parts.trustDomain.prefix(64))")
        }
        guard parts.segments.first != Self.reservedSegment else {
            throw GatehouseError(.forbidden, "spiffe://\(self.trustDomain)/\(Self.reservedSegment)/... is reserved for Gatehouse's own links")
        }
        let compiled = self.policy.active.policy
        let subject: PolicySubject
        var userID: String? = nil
        var ownAddresses: [IPPrefix] = []
        switch requester {
        case .user(let user):
            guard user.status == .active else { throw GatehouseError(.unauthenticated, "this account is not active") }
            subject = compiled.subject(user: user.username.rawValue, now: now)
            userID = user.id
        case .host(let name, _):
            subject = compiled.subject(host: name)
            ownAddresses = compiled.definitions.hosts.first { $0.name == name }?.addresses.filter(\.isSingleAddress) ?? []
        }
        let decision = compiled.evaluate(
            .certificate(spiffeID: id), subject: subject, context: PolicyContext(now: now, sourceAddress: nil, lastStepUp: nil))
        guard case .allow(let allowance) = decision else {
            throw GatehouseError(.forbidden, "the policy does not let \(requester.name) obtain \(id.prefix(200)): \(decision)")
        }
        guard case .certificate(let target) = allowance.rule.target else {
            throw GatehouseError(.internal, "a certificate decision named a rule of another kind")
        }
        let granting = compiled.definitions.identities.filter {
            (target.identities.contains("*") || target.identities.contains($0.name))
                && $0.pattern.matches(trustDomain: parts.trustDomain, segments: parts.segments, name: subject.name, isHost: subject.isHost)
        }
        let allowedDNS = granting.flatMap(\.dnsNames)
        let reserved = Set(self.settings.serverDNSNames)
        for name in request.dnsNames {
            // Nor a wildcard that would cover it: nobody else may present the server's names.
            guard !reserved.contains(where: { $0 == name || Self.dns($0, matches: name) }) else {
                throw GatehouseError(.forbidden, "\(name) is (or covers) the Gatehouse server's own name")
            }
            guard allowedDNS.contains(where: { Self.dns(name, matches: $0) }) else {
                throw GatehouseError(
                    .forbidden,
                    "the policy grants no DNS name \(name.prefix(64)) with \(id.prefix(200)) (allowed: \(allowedDNS.isEmpty ? "none" : allowedDNS.joined(separator: ", ")))"
                )
            }
        }
        for ip in request.ipAddresses where !ownAddresses.contains(ip) || self.settings.serverIPAddresses.contains(ip) {
            throw GatehouseError(.forbidden, "IP address \(ip) is not one of the requester's own addresses in the policy")
        }
        let maximum = allowance.lifetime.map { TimeInterval($0.components.seconds) } ?? Authority.defaultLeafLifetime
        let lifetime = requested ?? min(Authority.defaultLeafLifetime, maximum)
        guard lifetime >= 60 else { throw GatehouseError(.invalidInput, "a certificate lives at least a minute") }
        guard lifetime <= maximum else {
            throw GatehouseError(
                .forbidden,
                "the policy allows \(Int(maximum))s at most for \(id.prefix(200)) (rule \(allowance.rule.name)); asked for \(Int(lifetime))s")
        }
        let profile = Authority.LeafProfile(
            spiffeID: id, dnsNames: request.dnsNames, ipAddresses: request.ipAddresses, lifetime: lifetime,
            crlURL: lifetime > Self.crlThreshold ? self.settings.crlURL : nil)
        return (profile, userID)
    }

    static func dns(_ name: String, matches allowed: String) -> Bool {
        if name == allowed { return true }
        guard allowed.hasPrefix("*."), let dot = name.firstIndex(of: ".") else { return false }
        return name[name.index(after: dot)...] == allowed.dropFirst(2) && !name.hasPrefix("*")
    }

    /// Issues, records and audits in one transaction; a person's certificate only while the
    /// account is active (ordered with offboarding by the account lock).
    func issue(
        publicKey: Certificate.PublicKey, profile: Authority.LeafProfile, requester: String, userID: String?, enrollment: (host: String, at: Date)?,
        sourceAddress: String?, requestID: String?, grantID: String? = nil
    ) async throws -> Issued {
        let env = self.environment
        let now = env.time.now()
        let active = try self.current()
        guard active.intermediate.notValidAfter > now.addingTimeInterval(Authority.backdate) else {
            throw GatehouseError(
                .internal, "the intermediate has expired; import a new one from the offline root (gatehouse admin pki request-intermediate)")
        }
        let serial = Authority.randomSerial(using: env.random)
        var profile = profile
        // Each intermediate has its own CRL: the one that lists what it signed.
        profile.crlURL = profile.crlURL.map { $0 + "/" + active.id }
        let certificate = try Authority.leaf(
            publicKey: publicKey, profile: profile, issuer: active.intermediate, issuerKey: active.key, serial: serial, now: now)
        let record = PKICertificateRecord(
            serial: Authority.serialHex(serial), spiffeID: profile.spiffeID, dnsNames: profile.dnsNames,
            ipAddresses: profile.ipAddresses.map(\.description),
            keyFingerprint: publicKey.fingerprint, requester: requester, userID: userID, authorityID: active.id,
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, createdAt: now,
            grantID: grantID
        )
        try await env.store.commit { tx in
            if let userID {
                try await tx.lockAccountChanges()
                guard try await tx.user(id: userID)?.status == .active else { throw GatehouseError(.unauthenticated, "this account is not active") }
            }
            if let enrollment {
                // Ordered with re-enrollment: a host re-enrolled since its agent proved itself gets nothing.
                guard let joined = try await tx.host(named: enrollment.host)?.joinedAt, Self.sameInstant(joined, enrollment.at) else {
                    throw GatehouseError(.unauthenticated, "host \(enrollment.host) was re-enrolled; its earlier agent identity obtains nothing")
                }
            }
            try await SessionCut.requireLiveGrant(grantID, in: tx, at: now)
            try await tx.insertPKICertificate(record)
            return Change(
                (),
                event: AuditEvent(
                    code: .pkiCertificateIssued, time: now, actor: .stored(requester), subject: .x509(record.serial), requestID: requestID,
                    sourceAddress: sourceAddress,
                    details: [
                        "serial": record.serial, "spiffe_id": record.spiffeID, "dns": record.dnsNames.joined(separator: ","),
                        "ip": record.ipAddresses.joined(separator: ","),
                        "key": record.keyFingerprint, "not_after": String(Int(record.notAfter.timeIntervalSince1970)),
                    ]
                ))
        }
        return Issued(certificate: certificate, serial: record.serial, spiffeID: profile.spiffeID, chain: [certificate, active.intermediate])
    }

    /// The certificate of one of Gatehouse's own identities (the server's, a host agent's):
    /// decided by Gatehouse, not the policy.
    public func issueInternal(
        publicKey: Certificate.PublicKey, spiffeID: String, dnsNames: [String] = [], ipAddresses: [IPPrefix] = [], lifetime: TimeInterval,
        requester: String, enrollment: (host: String, at: Date)? = nil, sourceAddress: String? = nil
    ) async throws -> Issued {
        guard publicKey.pkiAlgorithm != nil else { throw GatehouseError(.invalidInput, "unsupported key: use P-256 or Ed25519") }
        return try await self.issue(
            publicKey: publicKey, profile: .init(spiffeID: spiffeID, dnsNames: dnsNames, ipAddresses: ipAddresses, lifetime: lifetime),
            requester: requester, userID: nil, enrollment: enrollment, sourceAddress: sourceAddress, requestID: nil)
    }

    // MARK: revocation and inventory

    public func revoke(serial: String, reason: String, actor: String, requestID: String? = nil) async throws {
        let env = self.environment
        let now = env.time.now()
        let serial = serial.lowercased()
        guard serial.utf8.count <= 64, serial.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw GatehouseError(.invalidInput, "a serial is hexadecimal, as gatehouse admin pki list shows it")
        }
        try await env.store.commit { tx in
            guard try await tx.pkiCertificate(serial: serial) != nil else { throw GatehouseError(.notFound, "no certificate with serial \(serial)") }
            guard try await tx.revokePKICertificate(serial: serial, reason: String(reason.prefix(200)), at: now) else {
                throw GatehouseError(.conflict, "certificate \(serial) is revoked already")
            }
            return Change(
                (),
                event: AuditEvent(
                    code: .pkiCertificateRevoked, time: now, actor: .stored(actor), subject: .x509(serial), requestID: requestID,
                    details: ["reason": String(reason.prefix(200))]))
        }
    }

    public func inventory(includeExpired: Bool, limit: Int = 1000) async throws -> [PKICertificateRecord] {
        let now = self.environment.time.now()
        return try await self.environment.store.read { tx in
            try await tx.pkiCertificates(liveAt: includeExpired ? nil : now, limit: max(1, min(limit, 10_000)))
        }
    }

    /// The signed CRL (DER) of one intermediate (the current one by default): every certificate it
    /// signed that is revoked and not yet expired (an hour's grace for clocks behind), signed
    /// with that intermediate's key. Kept while nothing was written and under a minute old.
    public func revocationList(authorityID: String? = nil) async throws -> [UInt8] {
        let env = self.environment
        let now = env.time.now()
        let generation = env.store.writeGeneration
        let current = try self.current()
        let id = authorityID ?? current.id
        guard id.utf8.count <= 64,
            id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else {
            throw GatehouseError(.notFound, "no such authority")
        }
        if let generation, let cached = self.crlCache.value[id], cached.generation == generation, now.timeIntervalSince(cached.made) < 60 {
            return cached.der
        }
        let active: Active
        if id == current.id {
            active = current
        } else {
            guard let record = try await env.store.read({ tx in try await tx.pkiAuthorities() }).first(where: { $0.id == id && $0.status == .active })
            else {
                throw GatehouseError(.notFound, "no such authority")
            }
            active = try self.load(record)
        }
        let revoked = try await env.store.read { tx in try await tx.revokedPKICertificates(authorityID: id, at: now.addingTimeInterval(-3600)) }
        // The CRL number is the time it was made, in milliseconds: it grows with every new CRL,
        // also when entries expire off the list (RFC 5280 5.2.3).
        let number = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let list = RevocationList(
            entries: revoked.map { .init(serialHex: $0.serial, revokedAt: $0.revokedAt ?? now) }, number: number,
            thisUpdate: now.addingTimeInterval(-Authority.backdate), nextUpdate: now.addingTimeInterval(Self.crlValidity))
        let der = try list.der(issuer: active.intermediate, key: active.key)
        if let generation { self.crlCache.mutate { $0[id] = (generation, now, der) } }
        return der
    }

    // MARK: mutual-TLS peers

    /// Verifies a peer's chain (leaf first) to our root with RFC 5280, our EKU/KeyUsage/trust
    /// domain policy, and then asks whether Gatehouse still vouches for it: issued by us, not
    /// revoked, its person active, its host enrolled and in the policy.
    public func verifyPeer(chain: [Certificate], usage: ExtendedKeyUsage.Usage = .clientAuth) async -> Result<Peer, GatehouseError> {
        guard let active = self.active.value else { return .failure(GatehouseError(.unauthenticated, "the authority is not ready")) }
        let now = self.environment.time.now()
        switch await SPIFFELeafPolicy.verify(chain: chain, root: active.root, trustDomain: self.trustDomain, usage: usage, time: now) {
        case .failure(let error):
            return .failure(error)
        case .success(let (identity, leaf)):
            return await self.vouch(identity: identity, serial: Authority.serialHex(leaf.serialNumber))
        }
    }

    /// The live check alone, for a leaf already verified (each request on a kept-alive connection).
    public func vouch(identity: SPIFFELeafPolicy.Identity, serial: String) async -> Result<Peer, GatehouseError> {
        let env = self.environment
        let generation = env.store.writeGeneration
        // The policy version is part of the key: a policy swap is not a store write of its own.
        let key = "\(serial)@\(self.policy.active.info?.version ?? 0)"
        let status: PeerStatus
        if let cached = self.peers.get(key, generation: generation) {
            status = cached
        } else {
            do {
                status = try await self.peerStatus(identity: identity, serial: serial)
            } catch {
                return .failure(GatehouseError(.storeFailure, "cannot check the peer's certificate right now"))
            }
            self.peers.put(key, status, generation: generation)
        }
        switch status {
        case .ok(let peer, let notAfter):
            // Checked on every request too: a connection kept alive (or a resumed TLS session)
            // outlives no certificate.
            guard notAfter > env.time.now() else { return .failure(GatehouseError(.unauthenticated, "this certificate has expired")) }
            return .success(peer)
        case .refused(let reason): return .failure(GatehouseError(.unauthenticated, reason))
        }
    }

    func peerStatus(identity: SPIFFELeafPolicy.Identity, serial: String) async throws -> PeerStatus {
        let env = self.environment
        return try await env.store.read { tx in
            guard let record = try await tx.pkiCertificate(serial: serial), record.spiffeID == identity.id else {
                return .refused("this certificate is not in Gatehouse's inventory")
            }
            if record.revokedAt != nil { return .refused("this certificate was revoked (\(record.revocationReason ?? "no reason given"))") }
            if let userID = record.userID {
                guard try await tx.user(id: userID)?.status == .active else {
                    return .refused("the person this certificate was issued to is no longer active")
                }
            }
            var enrolledAt: Date? = nil
            if record.requester.hasPrefix("host:") {
                // Only certificates from the host's current enrollment: one re-enrolled (or
                // enrolled again after that) does not bring back what came before.
                let host = String(record.requester.dropFirst(5))
                guard let joined = try await tx.host(named: host)?.joinedAt else {
                    return .refused("host \(host), which obtained this certificate, is not enrolled")
                }
                guard record.createdAt >= joined.addingTimeInterval(-0.001) else {
                    return .refused("host \(host) was enrolled again after this certificate was issued")
                }
                enrolledAt = joined
            }
            if identity.segments.count == 3, identity.segments[0] == Self.reservedSegment, identity.segments[1] == "agent" {
                let host = identity.segments[2]
                guard record.requester == "host:\(host)", let enrolledAt else { return .refused("host \(host) is not enrolled") }
                guard self.policy.active.policy.definitions.hosts.contains(where: { $0.name == host }) else {
                    return .refused("host \(host) is no longer in the policy")
                }
                return .ok(.agent(host: host, enrolledAt: enrolledAt), notAfter: record.notAfter)
            }
            return .ok(.workload(spiffeID: identity.id, requester: record.requester), notAfter: record.notAfter)
        }
    }

    /// Records that a peer was refused after its chain verified (revoked, offboarded, unenrolled).
    public func auditRefusedPeer(_ reason: String, spiffeID: String?, sourceAddress: String?) async {
        let now = self.environment.time.now()
        try? await self.environment.store.commit { _ in
            Change(
                (),
                event: AuditEvent(
                    code: .pkiPeerRefused, time: now, actor: spiffeID.map { .workload(String($0.prefix(200))) } ?? .unknown, subject: .mtls,
                    outcome: .denied, reason: String(reason.prefix(300)), sourceAddress: sourceAddress))
        }
    }
}

/// Offboarding revokes every unexpired X.509 certificate the person obtained; mutual-TLS
/// listeners refuse them from the next request on (the peer check reads the inventory).
public struct PKIOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "x509_certificates" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        try await tx.revokePKICertificates(userID: user.id, requester: nil, reason: user.status.rawValue, at: time)
    }
}
