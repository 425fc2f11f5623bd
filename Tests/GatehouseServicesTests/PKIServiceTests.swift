import Crypto
import Foundation
import GatehouseCore
import GatehousePKI
import GatehouseServices
import GatehouseTesting
import Testing
import X509

/// The X.509 authority against every store: the authority made once and reloaded, issuance as
/// the policy allows (and refusals audited with nothing recorded), the inventory, revocation and
/// the CRL, offboarding, re-enrollment, and the live check mutual-TLS listeners make.
@Suite("X.509 authority service")
struct PKIServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let policy = """
        group staff { members = [alice] }
        host web-1 { addresses = [10.0.0.1] }
        identity api { spiffe = "spiffe://corp.example/host/$host/api" dns = ["api.corp.example", "*.svc.corp.example"] }
        identity people { spiffe = "spiffe://corp.example/user/$user" }
        allow certificate web-api { who = [host:web-1] identities = [api] lifetime = 48h }
        allow certificate staff { who = [staff] identities = [people] lifetime = 1h }
        """

    static func request(_ key: P256.Signing.PrivateKey, _ id: String?, dns: [String] = [], ips: [String] = []) throws -> SigningRequest {
        let pem = try SigningRequest.makePEM(key: .p256(key), spiffeID: id, dnsNames: dns)
        guard ips.isEmpty else {
            var names: [GeneralName] = id.map { [.uniformResourceIdentifier($0)] } ?? []
            names += dns.map { .dnsName($0) }
            names += try ips.map { .ipAddress(.init(contentBytes: ArraySlice(try IPPrefix(parsing: $0).addressBytes))) }
            var attributes = CertificateSigningRequest.Attributes()
            attributes.insert(
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: try Certificate.Extensions { SubjectAlternativeNames(names) })))
            let csr = try CertificateSigningRequest(
                version: .v1, subject: DistinguishedName(), privateKey: Certificate.PrivateKey(key), attributes: attributes,
                signatureAlgorithm: .ecdsaWithSHA256)
            return try SigningRequest(pemOrDER: Array(try csr.serializeAsPEM().pemString.utf8))
        }
        return try SigningRequest(pemOrDER: Array(pem.utf8))
    }

    @Test(arguments: TestStoreKind.available)
    func issuesRevokesAndVouches(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let time = ManualTimeSource(Self.t0)
        let env = ServiceEnvironment(store: test.store, time: time, random: SeededRandomSource(seed: 31))
        let alice = User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        let bob = User(id: "u-b", username: Username(uncheckedStored: "bob"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        try await test.store.commit { tx in
            try await tx.insertUser(alice)
            try await tx.insertUser(bob)
            try await tx.saveHost(HostRecord(name: "web-1", joinTokenHash: nil, joinExpiresAt: nil, joinedAt: Self.t0, createdAt: Self.t0))
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(source: Self.policy, fileName: "t.policy", actor: "test")
        let rootKey = try RootKey(bytes: Array(repeating: 7, count: 32))
        let settings = PKIService.Settings(
            trustDomain: "corp.example", crlURL: "https://gh.example/api/pki/crl", serverDNSNames: ["gh.svc.corp.example"])
        let x509Root = SigningKey.generate(.p256, using: SeededRandomSource(seed: 3))
        let pki = try PKIService(environment: env, policy: policy, rootKey: x509Root, sealer: KeySealer(rootKey: rootKey), settings: settings)
        try await pki.start()
        let first = try pki.current()
        // A second start (another replica, a restart) loads the same authority; nothing new.
        let again = try PKIService(environment: env, policy: policy, rootKey: x509Root, sealer: KeySealer(rootKey: rootKey), settings: settings)
        try await again.start()
        #expect(try again.current().intermediate == first.intermediate && again.current().root == first.root)
        #expect(try await test.store.read { tx in try await tx.pkiAuthorities() }.count == 1)

        // A host's workload: the SPIFFE ID, the identity's DNS names (a wildcard's one label), its own address.
        let key = P256.Signing.PrivateKey()
        let issued = try await pki.sign(
            try Self.request(key, "spiffe://corp.example/host/web-1/api", dns: ["api.corp.example", "db.svc.corp.example"], ips: ["10.0.0.1"]),
            requester: .host("web-1", enrolledAt: Self.t0), lifetime: nil, sourceAddress: "10.0.0.1", requestID: "r1")
        #expect(issued.certificate.notValidAfter == Self.t0.addingTimeInterval(24 * 3600))
        #expect(Authority.names(of: issued.certificate).dns == ["api.corp.example", "db.svc.corp.example"])
        #expect(Authority.names(of: issued.certificate).ips == ["10.0.0.1"])
        let long = try await pki.sign(
            try Self.request(key, "spiffe://corp.example/host/web-1/api"), requester: .host("web-1", enrolledAt: Self.t0), lifetime: 40 * 3600,
            sourceAddress: nil, requestID: "r2")
        // Names the CRL of the intermediate that signed it.
        let cdp = try #require(long.certificate.extensions.first { $0.oid == [2, 5, 29, 31] })
        #expect(String(decoding: Array(cdp.value), as: UTF8.self).contains("https://gh.example/api/pki/crl/\(first.id)"))
        let person = try await pki.sign(
            try Self.request(key, "spiffe://corp.example/user/alice"), requester: .user(alice), lifetime: nil, sourceAddress: nil, requestID: "r3")
        #expect(person.certificate.notValidAfter == Self.t0.addingTimeInterval(3600))  // the rule's lifetime caps the default

        // Refusals: each audited, nothing recorded.
        let count = try await pki.inventory(includeExpired: true).count
        for (request, requester, lifetime, reason) in [
            (
                try Self.request(key, "spiffe://corp.example/user/alice"), PKIService.Requester.user(bob), nil as TimeInterval?,
                "does not let user:bob"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api", dns: ["x.corp.example"]), .host("web-1", enrolledAt: Self.t0), nil,
                "grants no DNS name x.corp.example"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api", dns: ["a.b.svc.corp.example"]), .host("web-1", enrolledAt: Self.t0),
                nil, "grants no DNS name"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api", dns: ["gh.svc.corp.example"]), .host("web-1", enrolledAt: Self.t0), nil,
                "server's own name"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api", dns: ["*.svc.corp.example"]), .host("web-1", enrolledAt: Self.t0), nil,
                "covers) the Gatehouse server's own name"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api"), .host("web-1", enrolledAt: Self.t0.addingTimeInterval(-5)), nil,
                "re-enrolled"
            ),
            (
                try Self.request(key, "spiffe://corp.example/host/web-1/api", ips: ["10.0.0.2"]), .host("web-1", enrolledAt: Self.t0), nil,
                "own addresses"
            ),
            (try Self.request(key, "spiffe://corp.example/user/alice", ips: ["10.0.0.1"]), .user(alice), nil, "own addresses"),
            (try Self.request(key, "spiffe://corp.example/host/web-1/api"), .host("web-1", enrolledAt: Self.t0), 49 * 3600, "allows 172800s at most"),
            (try Self.request(key, "spiffe://corp.example/host/web-1/api"), .host("web-1", enrolledAt: Self.t0), 30, "at least a minute"),
            (try Self.request(key, "spiffe://corp.example/gatehouse/agent/web-1"), .host("web-1", enrolledAt: Self.t0), nil, "reserved"),
            (
                try Self.request(key, "spiffe://other.example/host/web-1/api"), .host("web-1", enrolledAt: Self.t0), nil,
                "trust domain corp.example only"
            ),
            (try Self.request(key, nil), .host("web-1", enrolledAt: Self.t0), nil, "name the SPIFFE ID"),
        ] {
            do {
                _ = try await pki.sign(request, requester: requester, lifetime: lifetime, sourceAddress: nil, requestID: "x")
                Issue.record("issued: \(reason)")
            } catch let error as GatehouseError {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
        #expect(try await pki.inventory(includeExpired: true).count == count)
        let refused = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 200) }.filter {
            $0.event.code == .pkiCertificateRefused
        }
        #expect(refused.count == 13)

        // The live check: an agent identity for an enrolled host, a workload, a person.
        let agent = try await pki.issueInternal(
            publicKey: Certificate.PublicKey(key.publicKey), spiffeID: pki.agentID(host: "web-1"), lifetime: 3600, requester: "host:web-1")
        #expect(try await pki.verifyPeer(chain: agent.chain).get() == .agent(host: "web-1", enrolledAt: Self.t0))
        #expect(
            try await pki.verifyPeer(chain: issued.chain).get()
                == .workload(spiffeID: "spiffe://corp.example/host/web-1/api", requester: "host:web-1"))
        #expect(
            try await pki.verifyPeer(chain: person.chain).get() == .workload(spiffeID: "spiffe://corp.example/user/alice", requester: "user:alice"))

        // Revocation: on the CRL, refused at once.
        try await pki.revoke(serial: issued.serial.uppercased(), reason: "drill", actor: "admin")
        await #expect(throws: GatehouseError.self) { try await pki.revoke(serial: issued.serial, reason: "again", actor: "admin") }
        await #expect(throws: GatehouseError.self) { try await pki.revoke(serial: "zz", reason: "x", actor: "admin") }
        guard case .failure(let error) = await pki.verifyPeer(chain: issued.chain) else {
            Issue.record("a revoked certificate was vouched for")
            return
        }
        #expect(error.message.contains("revoked (drill)"))
        let crl = try await pki.revocationList()
        #expect(crl.count > 100 && Hex.encode(crl).contains(issued.serial))

        // Offboarding revokes a person's certificates; the listener refuses them.
        let result = try await OffboardingService(environment: env).offboard(username: Username(uncheckedStored: "alice"), actor: "test", reason: nil)
        #expect(result.revoked["x509_certificates"] == 1)
        guard case .failure = await pki.verifyPeer(chain: person.chain) else {
            Issue.record("an offboarded person's certificate was vouched for")
            return
        }
        await #expect(throws: GatehouseError.self) {
            _ = try await pki.sign(
                try Self.request(key, "spiffe://corp.example/user/alice"), requester: .user(alice), lifetime: nil, sourceAddress: nil,
                requestID: "late")
        }

        // Re-enrolling the host ends its agent identity and its workloads.
        let hosts = HostEnrollmentService(
            environment: env, policy: policy,
            ssh: SSHCertificateService(
                environment: env, policy: policy,
                userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 4)),
                hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 5))), pki: pki)
        _ = try await hosts.addHost(name: "web-1", actor: "admin")
        guard case .failure = await pki.verifyPeer(chain: agent.chain) else {
            Issue.record("a re-enrolled host's agent was vouched for")
            return
        }
        guard case .failure = await pki.verifyPeer(chain: long.chain) else {
            Issue.record("a re-enrolled host's workload was vouched for")
            return
        }
        // Even when the host joins again, what its earlier enrollment obtained stays dead, and
        // the earlier agent (stalled mid-request, say) obtains nothing new.
        time.advance(by: 60)
        try await test.store.commit { tx in
            try await tx.saveHost(HostRecord(name: "web-1", joinTokenHash: nil, joinExpiresAt: nil, joinedAt: time.now(), createdAt: Self.t0))
            return Change((), event: AuditEvent(code: .hostJoined, time: time.now(), actor: "test", subject: "host:web-1"))
        }
        guard case .failure(let stale) = await pki.verifyPeer(chain: issued.chain) else {
            Issue.record("an earlier enrollment's workload came back")
            return
        }
        #expect(stale.message.contains("revoked") || stale.message.contains("enrolled again"))
        let unrevokedEarlier = try await pki.issueInternal(
            publicKey: Certificate.PublicKey(key.publicKey), spiffeID: pki.agentID(host: "web-1"), lifetime: 3600, requester: "host:web-1",
            enrollment: ("web-1", time.now()))
        #expect(try await pki.verifyPeer(chain: unrevokedEarlier.chain).get() == .agent(host: "web-1", enrolledAt: time.now()))
        await #expect(throws: GatehouseError.self) {
            _ = try await pki.sign(
                try Self.request(key, "spiffe://corp.example/host/web-1/api"), requester: .host("web-1", enrolledAt: Self.t0), lifetime: nil,
                sourceAddress: nil, requestID: "stale")
        }

        // Expired by time: refused by the chain check.
        time.advance(by: 48 * 3600)
        guard case .failure(let expired) = await pki.verifyPeer(chain: agent.chain) else {
            Issue.record("an expired certificate was accepted")
            return
        }
        #expect(expired.message.contains("expired"))
    }

    @Test("replicas starting at once on an empty store settle on one authority", arguments: TestStoreKind.available)
    func concurrentStarts(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let sealer = KeySealer(rootKey: try RootKey(bytes: Array(repeating: 5, count: 32)))
        let rootKey = SigningKey.generate(.p256, using: SeededRandomSource(seed: 8))
        let replicas = try (0..<4).map { i in
            let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: UInt64(100 + i)))
            return try PKIService(
                environment: env, policy: PolicyService(environment: env), rootKey: rootKey, sealer: sealer,
                settings: .init(trustDomain: "corp.example"))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for replica in replicas { group.addTask { try await replica.start() } }
            try await group.waitForAll()
        }
        #expect(try await test.store.read { tx in try await tx.pkiAuthorities() }.count == 1)
        let first = try replicas[0].current().intermediate
        for replica in replicas { #expect(try replica.current().intermediate == first) }
    }

    @Test(arguments: TestStoreKind.available)
    func offlineRootIntermediateImport(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 41))
        let policy = PolicyService(environment: env)
        let sealer = KeySealer(rootKey: try RootKey(bytes: Array(repeating: 9, count: 32)))
        let pki = try PKIService(
            environment: env, policy: policy, rootKey: SigningKey.generate(.p256, using: SeededRandomSource(seed: 6)), sealer: sealer,
            settings: .init(trustDomain: "corp.example"))
        try await pki.start()
        let offlineKey = SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 7))
        let offlineRoot = try Authority.root(
            key: offlineKey, trustDomain: "corp.example", serial: Authority.randomSerial(using: SystemRandomSource()), now: Self.t0)
        let before = try await pki.issueInternal(
            publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), spiffeID: "spiffe://corp.example/svc/old",
            lifetime: 3600, requester: "gatehouse")
        let generatedID = try pki.current().id
        let csr = try await pki.requestIntermediate(actor: "admin")
        let request = try SigningRequest(pemOrDER: Array(csr.utf8))
        func bundle(_ td: String, key: SigningKey = offlineKey, root: Certificate = offlineRoot, publicKey: Certificate.PublicKey = request.publicKey)
            throws -> String
        {
            let intermediate = try Authority.intermediate(
                publicKey: publicKey, trustDomain: td, root: root, rootKey: key, serial: Authority.randomSerial(using: SystemRandomSource()),
                now: Self.t0)
            return try Authority.pem(intermediate) + Authority.pem(root)
        }
        for (pem, reason) in [
            (try bundle("other.example"), "name constraints permitting only URIs in corp.example"),
            (
                try bundle("corp.example", publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)),
                "not for a key this server requested"
            ),
            (try bundle("corp.example", key: SigningKey.generate(.ed25519, using: SystemRandomSource())), "not signed by this root"),
            (try Authority.pem(offlineRoot), "2 PEM blocks"),
            ("garbage", "PEM"),
        ] {
            do {
                _ = try await pki.importIntermediate(pem: pem, actor: "admin")
                Issue.record("imported: \(reason)")
            } catch let error as GatehouseError {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
        let active = try await pki.importIntermediate(pem: try bundle("corp.example"), actor: "admin")
        #expect(active.root == offlineRoot && active.rootOffline)
        await #expect(throws: GatehouseError.self) { _ = try await pki.importIntermediate(pem: try bundle("corp.example"), actor: "admin") }
        // A certificate of the earlier intermediate, revoked now, is on that intermediate's CRL
        // (signed with its key), not on the new one's.
        try await pki.revoke(serial: before.serial, reason: "rotation drill", actor: "admin")
        let old = try await pki.revocationList(authorityID: generatedID)
        let new = try await pki.revocationList()
        #expect(Hex.encode(old).contains(before.serial) && !Hex.encode(new).contains(before.serial))
        await #expect(throws: GatehouseError.self) { _ = try await pki.revocationList(authorityID: "nope") }
        await #expect(throws: GatehouseError.self) { _ = try await pki.revocationList(authorityID: "../x") }
        // A restart keeps the offline root's intermediate, and the leaves chain to the offline root.
        let restarted = try PKIService(
            environment: env, policy: policy, rootKey: SigningKey.generate(.p256, using: SeededRandomSource(seed: 6)), sealer: sealer,
            settings: .init(trustDomain: "corp.example"))
        try await restarted.start()
        #expect(try restarted.current().root == offlineRoot)
        let leaf = try await restarted.issueInternal(
            publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), spiffeID: restarted.serverID, lifetime: 3600,
            requester: "gatehouse")
        let verified = await SPIFFELeafPolicy.verify(
            chain: leaf.chain, root: offlineRoot, trustDomain: "corp.example", usage: .serverAuth, time: Self.t0)
        #expect((try? verified.get()) != nil)
    }
}
