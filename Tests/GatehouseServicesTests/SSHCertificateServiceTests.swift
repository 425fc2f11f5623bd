import Crypto
import Foundation
import GatehouseCore
import GatehouseSSH
import GatehouseServices
import GatehouseTesting
import Testing

/// The SSH user CA against every store: principals, lifetime and options from the policy, the
/// inventory and audit record of each issuance, refusals audited, offboarding revoking.
@Suite("SSH certificate authority")
struct SSHCertificateServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let policy = """
        group sre { members = [alice] }
        group devs { members = [carol] }
        role oncall { members = [group:sre] max_lifetime = 2h }
        host web-1 { addresses = [10.0.0.1] labels = { env = prod } }
        host db-1 { addresses = [10.0.0.2] }
        allow ssh sre-root { who = [sre] logins = [root, $user] hosts = [web-1] options = [permit-pty] }
        allow ssh oncall-db { who = [oncall] logins = [postgres] hosts = [db-1] options = [permit-pty, permit-port-forwarding] }
        """

    @Test(arguments: TestStoreKind.available)
    func issuesExactlyWhatThePolicyAllows(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 21))
        let users = [
            User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0),
            User(id: "u-c", username: Username(uncheckedStored: "carol"), email: nil, role: .member, status: .active, createdAt: Self.t0),
            User(id: "u-r", username: Username(uncheckedStored: "root"), email: nil, role: .admin, status: .active, createdAt: Self.t0),
        ]
        try await test.store.commit { tx in
            for u in users { try await tx.insertUser(u) }
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(source: Self.policy, fileName: "t.policy", actor: "test")
        let ca = SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 1))
        let service = SSHCertificateService(
            environment: env, policy: policy, userCA: ca, hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 2)))
        let key = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey + " alice@laptop"

        let all = try await service.issue(
            user: users[0], publicKey: key, hosts: nil, lifetime: nil, sourceAddress: "10.9.9.9", source: nil, lastStepUp: Self.t0, requestID: "r1",
            possession: nil)
        #expect(all.principals == ["alice@web-1", "postgres@db-1", "root@web-1"])
        #expect(all.validBefore == Self.t0.addingTimeInterval(2 * 3600))  // the oncall role caps it
        #expect(all.validAfter == Self.t0.addingTimeInterval(-60))
        #expect(all.certificate.hasPrefix("ssh-ed25519-cert-v01@openssh.com "))
        let web = try await service.issue(
            user: users[0], publicKey: key, hosts: ["web-1"], lifetime: 3600, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r2",
            possession: nil)
        #expect(web.principals == ["alice@web-1", "root@web-1"] && web.validBefore == Self.t0.addingTimeInterval(3600))

        let (records, events) = try await test.store.read { tx in
            (try await tx.sshCertificates(userID: "u-a"), try await tx.auditRecords(after: 0, limit: 100).map(\.event))
        }
        #expect(records.count == 2 && Set(records.map(\.serial)) == [all.serial, web.serial])
        let issued = try #require(events.last { $0.code == .sshCertificateIssued })
        #expect(
            issued.details["serial"] == String(web.serial) && issued.details["principals"] == "alice@web-1,root@web-1" && issued.actor == "user:alice"
        )

        // Refusals: nothing allowed, an unknown host, a bad key; each audited, nothing recorded.
        for (user, hosts, text, reason) in [
            (users[1], nil as [String]?, key, "no SSH login"), (users[0], ["web-9"], key, "no host web-9"),
            (users[0], nil, "ssh-rsa AAAA", "truncated"), (users[0], [], key, "1 to 256 hosts"),
        ] {
            do {
                _ = try await service.issue(
                    user: user, publicKey: text, hosts: hosts, lifetime: nil, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "x",
                    possession: nil)
                Issue.record("issued: \(reason)")
            } catch let error as SSHError {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
        let refused = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.filter {
            $0.event.code == .sshCertificateRefused
        }
        #expect(refused.count == 4)
        #expect(try await test.store.read { tx in try await tx.sshCertificates(userID: "u-c") }.isEmpty)

        let result = try await OffboardingService(environment: env).offboard(username: Username(uncheckedStored: "alice"), actor: "test", reason: nil)
        #expect(result.revoked["ssh_certificates"] == 2)
        #expect(try await test.store.read { tx in try await tx.sshCertificates(userID: "u-a") }.allSatisfy { $0.revokedAt == Self.t0 })
    }

    @Test("a stale passkey check: logins behind step_up are named, left out, or refused by name and audited")
    func stepUpIsNamed() async throws {
        let test = try await TestStore.make(.sqlite)
        defer { Task { await test.close() } }
        let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 23))
        let alice = User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        try await test.store.commit { tx in
            try await tx.insertUser(alice)
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(
            source: """
                group sre { members = [alice] }
                host web-1 { addresses = [10.0.0.1] }
                host db-1 { addresses = [10.0.0.2] }
                allow ssh deploy { who = [sre] logins = [deploy] hosts = [web-1] }
                allow ssh root { who = [sre] logins = [root] hosts = [web-1, db-1] step_up = 10m }
                """, fileName: "t.policy", actor: "test")
        let service = SSHCertificateService(
            environment: env, policy: policy, userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 1)),
            hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 2)))
        let key = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey
        let stale = Self.t0.addingTimeInterval(-25 * 60)

        #expect(service.stepUpNeeds(for: alice, hosts: nil, sourceAddress: nil, lastStepUp: Self.t0.addingTimeInterval(-60)).isEmpty)
        let needs = service.stepUpNeeds(for: alice, hosts: nil, sourceAddress: nil, lastStepUp: stale)
        #expect(needs.map(\.principal) == ["root@db-1", "root@web-1"] && needs.allSatisfy { $0.within == .seconds(600) })

        // Something still allowed: issued without root, and the answer says what a check would add.
        let partial = try await service.issue(
            user: alice, publicKey: key, hosts: ["web-1"], lifetime: nil, sourceAddress: nil, source: nil, lastStepUp: stale, requestID: "r1",
            possession: nil)
        #expect(partial.principals == ["deploy@web-1"] && partial.stepUpWouldAdd == ["root@web-1"])
        // Nothing allowed without the check: refused with the reason, not "no login".
        do {
            _ = try await service.issue(
                user: alice, publicKey: key, hosts: ["db-1"], lifetime: nil, sourceAddress: nil, source: nil, lastStepUp: stale, requestID: "r2",
                possession: nil)
            Issue.record("issued with a stale step-up")
        } catch let error as SSHError {
            #expect(error.code == .stepUpRequired)
            #expect(
                error.message.contains("root@db-1 needs a passkey check within the last 10m") && error.message.contains("25m ago"), "\(error.message)"
            )
        }
        // A person with no rule at all still hears "no login", not step-up.
        let nobody = User(id: "u-n", username: Username(uncheckedStored: "nobody"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        do {
            _ = try await service.issue(
                user: nobody, publicKey: key, hosts: nil, lifetime: nil, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r3",
                possession: nil)
            Issue.record("issued to nobody")
        } catch let error as SSHError {
            #expect(error.code == .notPermitted)
        }
        let refused = try await test.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.filter {
            $0.event.code == .sshCertificateRefused
        }
        #expect(refused.first?.event.reason?.contains("step_up") == true)
    }

    @Test("a deny rule that depends on the source network keeps its logins out of certificates")
    func sourceDependentDeny() async throws {
        let store = InMemoryStore()
        let env = ServiceEnvironment(store: store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 22))
        let alice = User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        try await store.commit { tx in
            try await tx.insertUser(alice)
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "t", subject: "s"))
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(
            source: Self.policy + "\ndeny ssh no-root-from-guest { who = [sre] logins = [root] hosts = [web-1] from = [10.66.0.0/16] }\n",
            fileName: "t", actor: "t")
        let service = SSHCertificateService(
            environment: env, policy: policy, userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 1)),
            hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 2)))
        let key = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey
        // From the office the deny does not match, but the certificate could be used from the guest network: root is left out.
        let issued = try await service.issue(
            user: alice, publicKey: key, hosts: ["web-1"], lifetime: nil, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r",
            possession: nil)
        #expect(issued.principals == ["alice@web-1"])
    }

    @Test("host enrollment: a join token works once; renewal needs the same key and a host still in the policy", arguments: TestStoreKind.available)
    func hostEnrollment(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let env = ServiceEnvironment(store: test.store, time: ManualTimeSource(Self.t0), random: SeededRandomSource(seed: 23))
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(source: Self.policy, fileName: "t", actor: "t")
        let ssh = SSHCertificateService(
            environment: env, policy: policy, userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 1)),
            hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 2)))
        let hosts = HostEnrollmentService(environment: env, policy: policy, ssh: ssh)
        await #expect(throws: GatehouseError.self) { try await hosts.addHost(name: "web-9", actor: "t") }
        await #expect(throws: GatehouseError.self) { try await hosts.addHost(name: "web-1", labels: ["env": "dev"], actor: "t") }
        let (token, _) = try await hosts.addHost(name: "web-1", labels: ["env": "prod"], actor: "t")
        let hostKey = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey
        let joined = try await hosts.join(token: token, hostKey: hostKey, sourceAddress: nil)
        #expect(joined.principals == ["web-1", "10.0.0.1"] && joined.hostCertificate.hasPrefix("ssh-ed25519-cert-v01@openssh.com "))
        await #expect(throws: GatehouseError.self) { try await hosts.join(token: token, hostKey: hostKey, sourceAddress: nil) }
        let agent = try #require(joined.agentToken)
        #expect(try await hosts.renew(agentToken: agent, hostKey: hostKey, sourceAddress: nil).principals == ["web-1", "10.0.0.1"])
        await #expect(throws: GatehouseError.self) {
            try await hosts.renew(
                agentToken: agent, hostKey: SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey, sourceAddress: nil)
        }
        _ = try await policy.apply(
            source: Self.policy.replacingOccurrences(of: "host web-1 { addresses = [10.0.0.1] labels = { env = prod } }\n", with: "")
                .replacingOccurrences(of: "hosts = [web-1]", with: "hosts = [db-1]"), fileName: "t", actor: "t")
        await #expect(throws: GatehouseError.self) { try await hosts.renew(agentToken: agent, hostKey: hostKey, sourceAddress: nil) }
    }
}
