import Crypto
import Foundation
import GatehouseCore
import GatehouseRecording
import GatehouseSSH
import GatehouseServices
import GatehouseTesting
import Testing

/// The bastion's decisions and records against every store: who a key belongs to, what each
/// refusal says (and that it is audited), the onward one-minute certificate, a session's
/// record from start to sealed recording, and ending live sessions on offboarding or lock.
@Suite("SSH bastion service")
struct BastionServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let policy = """
        group staff { members = [alice, bob] }
        host web-1 { addresses = [10.0.0.5] ssh_port = 2200 }
        host db-1 { addresses = [10.0.0.6] }
        host new-1 { addresses = [10.0.0.7] }
        allow ssh staff-root { who = [staff] logins = [root, alice] hosts = [web-1, db-1, new-1] options = [permit-pty] }
        """

    struct Fixture {
        let test: TestStore
        let time: ManualTimeSource
        let bastion: BastionService
        /// Another server process on the same store (its own registry, so its own replica id).
        let other: BastionService
        let ssh: SSHCertificateService
        let policy: PolicyService
        let sealer: KeySealer
        let alice: User
        let bob: User
        let key: String
        let fingerprint: String
    }

    static func fixture(_ kind: TestStoreKind) async throws -> Fixture {
        let test = try await TestStore.make(kind)
        let time = ManualTimeSource(Self.t0)
        let random = SeededRandomSource(seed: 7)
        let env = ServiceEnvironment(store: test.store, time: time, random: random)
        let alice = User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        let bob = User(id: "u-b", username: Username(uncheckedStored: "bob"), email: nil, role: .admin, status: .active, createdAt: Self.t0)
        try await test.store.commit { tx in
            for u in [alice, bob] { try await tx.insertUser(u) }
            for h in ["web-1", "db-1"] {
                try await tx.saveHost(
                    HostRecord(
                        name: h, joinTokenHash: nil, joinExpiresAt: nil, joinedAt: Self.t0, hostKeyFingerprint: "SHA256:host-\(h)", createdAt: Self.t0
                    ))
            }
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        let policy = PolicyService(environment: env)
        _ = try await policy.apply(source: Self.policy, fileName: "t.policy", actor: "test")
        let ssh = SSHCertificateService(
            environment: env, policy: policy, userCA: SigningKey.generate(.ed25519, using: random),
            hostCA: SigningKey.generate(.ed25519, using: random))
        let (root, _) = RootKey.generate(using: random)
        let bastion = BastionService(
            environment: env, policy: policy, ssh: ssh, sealer: KeySealer(rootKey: root), registry: BastionSessionRegistry(replica: "test-replica"))
        let other = BastionService(
            environment: env, policy: policy, ssh: ssh, sealer: KeySealer(rootKey: root), registry: BastionSessionRegistry(replica: "other-replica"))
        let key = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey)
        _ = try await ssh.issue(
            user: alice, publicKey: key.authorizedKey, hosts: nil, lifetime: 3600, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r1",
            possession: nil)
        return Fixture(
            test: test, time: time, bastion: bastion, other: other, ssh: ssh, policy: policy, sealer: KeySealer(rootKey: root), alice: alice,
            bob: bob, key: key.authorizedKey, fingerprint: key.fingerprint)
    }

    static func events(_ f: Fixture, _ code: AuditCode) async throws -> [AuditEvent] {
        try await f.test.store.read { tx in try await tx.auditRecords(after: 0, limit: 1000) }.map(\.event).filter { $0.code == code }
    }

    @Test(arguments: TestStoreKind.available)
    func decisionsSayWhyAndAreAudited(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        let b = f.bastion
        // A key Gatehouse never certified: no identity at all, nothing audited.
        let stranger = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).fingerprint
        #expect(try await b.authenticate(keyFingerprint: stranger, userName: "root@web-1", source: nil, sourceAddress: nil) == nil)
        #expect(try await Self.events(f, .sshSessionDenied).isEmpty)

        // Allowed: where to connect, and which host key to expect.
        guard
            case .allowed(let grant)? = try await b.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: "10.1.1.1", sourceAddress: nil)
        else {
            Issue.record("root@web-1 should be allowed")
            return
        }
        #expect(
            grant.login == "root" && grant.host == "web-1" && grant.address == "10.0.0.5" && grant.port == 2200
                && grant.hostKeyFingerprint == "SHA256:host-web-1")
        #expect(grant.pty && !grant.portForwarding)
        // HOST alone logs in as the person's own name; LOGIN%HOST is LOGIN@HOST.
        guard case .allowed(let own)? = try await b.authenticate(keyFingerprint: f.fingerprint, userName: "web-1", source: nil, sourceAddress: nil),
            case .allowed(let percent)? = try await b.authenticate(
                keyFingerprint: f.fingerprint, userName: "root%db-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("web-1 and root%db-1 should be allowed")
            return
        }
        #expect(own.login == "alice" && percent.login == "root" && percent.host == "db-1" && percent.port == 22)

        // Each refusal names its reason.
        for (user, source, reason) in [
            ("nobody@web-1", nil as UInt128?, "does not allow nobody on web-1"), ("root@web-9", nil, "there is no host web-9"),
            ("root@new-1", nil, "new-1 has not joined Gatehouse"),
            ("a@b@c", nil, "must be HOST or LOGIN@HOST"), (String(repeating: "x", count: 300), nil, "must be HOST or LOGIN@HOST"),
            ("", nil, "must be HOST or LOGIN@HOST"),
        ] {
            let access = try await b.authenticate(keyFingerprint: f.fingerprint, userName: user, source: nil, sourceAddress: source)
            guard case .denied(_, let message)? = access else {
                Issue.record("\(user) should be denied")
                continue
            }
            #expect(message.contains(reason), "\(user): \(message)")
        }
        #expect(try await Self.events(f, .sshSessionDenied).count == 6)
        // The policy changes after the certificate was issued: the current policy decides.
        _ = try await f.policy.apply(
            source: Self.policy.replacingOccurrences(of: "hosts = [web-1, db-1, new-1]", with: "hosts = [web-1]"), fileName: "t.policy", actor: "test"
        )
        guard
            case .denied(_, let changed)? = try await b.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@db-1", source: "192.0.2.7", sourceAddress: nil)
        else {
            Issue.record("root@db-1 should be denied by the new policy")
            return
        }
        #expect(changed == "the policy does not allow alice to log in as root on db-1 now from 192.0.2.7")

        // Time passes: the certificate expires.
        f.time.advance(by: 3601)
        guard
            case .denied(_, let expired)? = try await b.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("an expired certificate should be denied")
            return
        }
        #expect(expired.contains("expired"))
        // A fresh one, then offboarding revokes it and locks the account.
        _ = try await f.ssh.issue(
            user: f.alice, publicKey: f.key, hosts: nil, lifetime: 3600, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r2",
            possession: nil)
        #expect(
            try await b.authenticate(keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil).map {
                if case .allowed = $0 { true } else { false }
            } == true)
        _ = try await OffboardingService(environment: ServiceEnvironment(store: f.test.store, time: f.time, random: SeededRandomSource(seed: 9)))
            .offboard(username: f.alice.username, actor: "test", reason: nil)
        // An offboarded person does not get past authentication; the reason is audited.
        #expect(try await b.authenticate(keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil) == nil)
        #expect(try await Self.events(f, .sshSessionDenied).last?.reason?.contains("offboarded") == true)
    }

    @Test(arguments: TestStoreKind.available)
    func onwardCertificatesAndSessionRecords(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        let b = f.bastion
        guard
            case .allowed(let grant)? = try await b.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: "10.1.1.1", sourceAddress: nil)
        else {
            Issue.record("root@web-1 should be allowed")
            return
        }
        // The onward certificate: the bastion's fresh key, exactly root@web-1, one minute (backdated one).
        let onward = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey)
        let line = try await b.onwardCertificate(grant, publicKey: onward, session: "conn-1")
        #expect(line.hasPrefix("ssh-ed25519-cert-v01@openssh.com "))
        let record = try #require(try await f.test.store.read { tx in try await tx.sshCertificates(keyFingerprint: onward.fingerprint) }.first)
        #expect(record.principals == ["root@web-1"] && record.userID == "u-a")
        #expect(record.validBefore == Self.t0.addingTimeInterval(60) && record.validAfter == Self.t0.addingTimeInterval(-60))
        let issued = try #require(try await Self.events(f, .sshCertificateIssued).last)
        #expect(issued.details["bastion_session"] == "conn-1" && issued.details["principals"] == "root@web-1")

        // A session: recorded before it starts, sealed with its digest when it ends.
        let id = "9b2f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e5f"
        let started = try await b.start(grant, id: id, mode: "exec", command: "uptime")
        #expect(started.dataKey.count == 32 && started.record.endedAt == nil)
        // The sealed key opens with the root key, for this purpose only.
        #expect(try b.recordingKey(.init(id: id, sealedKey: started.sealedKey)) == started.dataKey)
        #expect(try await b.sessions(liveOnly: true, limit: 10).map(\.id) == [id])
        f.time.advance(by: 5)
        try await b.sealed(
            started.record, ending: .init(exitStatus: 3, exitSignal: nil, endedBy: nil, bytesIn: 10, bytesOut: 20),
            sha256: String(repeating: "ab", count: 32), bytes: 999)
        let ended = try await b.session(id: id)
        #expect(
            ended.exitStatus == 3 && ended.recordingSHA256 == String(repeating: "ab", count: 32) && ended.recordingBytes == 999
                && ended.endedAt == Self.t0.addingTimeInterval(5))
        let liveNow = try await b.sessions(liveOnly: true, limit: 10)
        let all = try await b.sessions(liveOnly: false, limit: 10)
        #expect(liveNow.isEmpty && all.count == 1)
        let sealed = try #require(try await Self.events(f, .sshRecordingSealed).last)
        #expect(
            sealed.subject == "session:\(id)" && sealed.details["sha256"] == String(repeating: "ab", count: 32)
                && sealed.details["exit_status"] == "3")
        // Ending twice is refused; ids that could be paths are not found.
        await #expect(throws: GatehouseError.self) {
            try await b.sealed(
                started.record, ending: .init(exitStatus: 0, exitSignal: nil, endedBy: nil, bytesIn: 0, bytesOut: 0), sha256: "x", bytes: 1)
        }
        await #expect(throws: GatehouseError.self) { try await b.session(id: "../../etc/passwd") }
        await #expect(throws: GatehouseError.self) { try await b.kill(id: id, actor: "test", reason: nil) }  // not live

        // Each session is decided again when it starts: a policy change reaches a connection
        // that was allowed when it began.
        _ = try await f.policy.apply(
            source: Self.policy.replacingOccurrences(of: "hosts = [web-1, db-1, new-1]", with: "hosts = [db-1]"), fileName: "t.policy", actor: "test")
        await #expect { try await b.start(grant, id: "9b2f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e61", mode: "shell", command: nil) } throws: {
            ($0 as? GatehouseError)?.message.contains("does not allow alice to log in as root on web-1") == true
        }
        await #expect(throws: GatehouseError.self) { try await b.forwarding(grant, to: "127.0.0.1", port: 80) }
        _ = try await f.policy.apply(source: Self.policy, fileName: "t.policy", actor: "test")

        // A recording that fails: audited as failed, the session ended with the reason.
        let second = try await b.start(grant, id: "9b2f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e60", mode: "shell", command: nil)
        try await b.recordingFailed(
            second.record, ending: .init(exitStatus: nil, exitSignal: nil, endedBy: nil, bytesIn: 0, bytesOut: 0), reason: "No space left on device")
        let failed = try #require(try await Self.events(f, .sshRecordingFailed).last)
        #expect(failed.outcome == .failed && failed.reason?.contains("No space left") == true)
    }

    @Test(arguments: TestStoreKind.available)
    func sessionsOfAStoppedServerAreClosedAsInterrupted(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        let (a, b) = (f.bastion, f.other)
        #expect(a.registry.replica != b.registry.replica)
        guard
            case .allowed(let grant)? = try await a.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: "10.1.1.1", sourceAddress: nil)
        else {
            Issue.record("root@web-1 should be allowed")
            return
        }
        let first = try await a.start(grant, id: "5e1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e01", mode: "shell", command: nil)
        let second = try await a.start(grant, id: "5e1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e02", mode: "exec", command: "sleep 99")
        let ended = LockedBox<[String: String]>([:])
        for id in [first.record.id, second.record.id] {
            a.registry.register(.init(id: id, userID: grant.identity.user.id) { reason in ended.mutate { $0[id] = reason } })
        }
        // A's heartbeat keeps its own sessions open, and A never takes its own for stopped.
        f.time.advance(by: 5)
        #expect(try await a.heartbeat() == 0 && ended.value.isEmpty)
        #expect(try await a.interruptedSessions().isEmpty)
        #expect(try await a.session(id: first.record.id).heartbeatAt == Self.t0.addingTimeInterval(5))

        // A row from before heartbeats (no replica): where B is the only writer its process is
        // gone; on a shared store a replica of the older version may still be running it.
        let legacy = BastionSessionRecord(
            id: "5e1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e03", userID: "u-a", username: "alice", login: "root", host: "web-1", source: nil,
            mode: "shell", command: nil, startedAt: Self.t0)
        try await f.test.store.commit { tx in
            try await tx.insertBastionSession(legacy)
            return Change((), event: AuditEvent(code: .sshSessionStarted, time: Self.t0, actor: "test", subject: "session:\(legacy.id)"))
        }
        let soleWriter = f.test.store.writeGeneration != nil
        let expected: Set<String> = soleWriter ? [first.record.id, second.record.id, legacy.id] : [first.record.id, second.record.id]

        // B sees A's sessions as interrupted: at once where it is the store's only writer (A's
        // process must have stopped), otherwise only after a minute without a heartbeat.
        if !soleWriter {
            f.time.advance(by: 30)
            #expect(try await b.interruptedSessions().isEmpty)
            f.time.advance(by: 31)
        }
        // A beats between B's read and B's close: the close does not win, and A's session lives.
        let early = try await b.interruptedSessions()
        #expect(Set(early.map(\.id)) == expected)
        f.time.advance(by: 1)
        #expect(try await a.heartbeat() == 0)
        let lastBeat = f.time.now()
        #expect(try await b.closeInterrupted(early.first { $0.id == first.record.id }!, sha256: nil, bytes: nil) == false)
        if !soleWriter { f.time.advance(by: 61) }
        let stale = try await b.interruptedSessions()
        #expect(Set(stale.map(\.id)) == expected)
        let digest = String(repeating: "cd", count: 32)
        #expect(try await b.closeInterrupted(stale.first { $0.id == first.record.id }!, sha256: digest, bytes: 4242))
        #expect(
            try await b.closeInterrupted(
                stale.first { $0.id == second.record.id }!, sha256: nil, bytes: nil, note: "its recording is not on this server's disk"))
        // Twice is a no-op, not a second audit entry.
        #expect(try await b.closeInterrupted(stale[0], sha256: digest, bytes: 1) == false)

        let closed = try await a.session(id: first.record.id)
        #expect(closed.endedAt == lastBeat && closed.recordingSHA256 == digest && closed.recordingBytes == 4242 && closed.exitStatus == nil)
        #expect(closed.endedBy?.hasPrefix("interrupted: the Gatehouse server running it stopped") == true)
        let unsealed = try await a.session(id: second.record.id)
        #expect(unsealed.recordingSHA256 == nil && unsealed.endedBy?.contains("not on this server's disk") == true)
        let events = try await Self.events(f, .sshRecordingInterrupted)
        #expect(events.count == 2 && events.allSatisfy { $0.outcome == .failed })
        #expect(events.first { $0.subject == "session:\(first.record.id)" }?.details["sha256"] == digest)
        #expect(events.first { $0.subject == "session:\(second.record.id)" }?.details["sha256"] == nil)
        #expect(try await b.interruptedSessions().map(\.id) == (soleWriter ? [legacy.id] : []))

        // A was only silent, not stopped: its next heartbeat ends both sessions, whose records
        // are closed (no session goes on without an open record).
        #expect(try await a.heartbeat() == 2)
        #expect(ended.value.count == 2 && ended.value.values.allSatisfy { $0.contains("closed by another Gatehouse server") })
    }

    @Test(arguments: TestStoreKind.available)
    func stepUpRulesCountThePasskeyCheckBehindTheCertificate(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        _ = try await f.policy.apply(
            source: Self.policy + "\nallow ssh deploys { who = [staff] logins = [deploy] hosts = [web-1] step_up = 10m }\n", fileName: "t.policy",
            actor: "test")
        // A certificate issued right after a passkey check carries deploy@web-1; one without does not.
        let key = SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey)
        let issued = try await f.ssh.issue(
            user: f.bob, publicKey: key.authorizedKey, hosts: ["web-1"], lifetime: 3600, sourceAddress: nil, source: nil,
            lastStepUp: Self.t0, requestID: "r3", possession: nil)
        #expect(issued.principals.contains("deploy@web-1"))
        f.time.advance(by: 300)
        guard
            case .allowed? = try await f.bastion.authenticate(
                keyFingerprint: key.fingerprint, userName: "deploy@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("five minutes after the passkey check, deploy@web-1 should be allowed")
            return
        }
        f.time.advance(by: 400)
        guard
            case .denied(_, let message)? = try await f.bastion.authenticate(
                keyFingerprint: key.fingerprint, userName: "deploy@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("eleven minutes after, the step-up rule should deny")
            return
        }
        #expect(message.contains("needs a recent passkey check"))
        // Other logins on the same certificate do not need it.
        guard
            case .allowed? = try await f.bastion.authenticate(
                keyFingerprint: key.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("root@web-1 has no step-up rule")
            return
        }
    }

    @Test(arguments: TestStoreKind.available)
    func aKeyCertifiedToTwoPeopleIdentifiesNobody(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        // Bob has Alice's public key certified (issuance needs no proof of possession).
        _ = try await f.ssh.issue(
            user: f.bob, publicKey: f.key, hosts: nil, lifetime: 600, sourceAddress: nil, source: nil, lastStepUp: nil, requestID: "r9",
            possession: nil)
        guard
            case .denied(_, let message)? = try await f.bastion.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("a key certified to two people should be denied")
            return
        }
        #expect(message.contains("more than one Gatehouse user"))
    }

    @Test(arguments: TestStoreKind.available)
    func offboardingAndLockingEndLiveSessions(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        let registry = f.bastion.registry
        let ended = LockedBox<[String: String]>([:])
        for (id, user) in [("s-a1", "u-a"), ("s-a2", "u-a"), ("s-b1", "u-b")] {
            registry.register(.init(id: id, userID: user) { reason in ended.mutate { $0[id] = reason } })
        }
        // Offboarding runs the hook: Alice's two sessions end at once, Bob's does not.
        let env = ServiceEnvironment(store: f.test.store, time: f.time, random: SeededRandomSource(seed: 3))
        let result = try await OffboardingService(
            environment: env, hooks: OffboardingService.defaultHooks + [BastionOffboardingHook(registry: registry)]
        )
        .offboard(username: f.alice.username, actor: "test", reason: nil)
        #expect(result.revoked["ssh_sessions"] == 2)
        #expect(ended.value == ["s-a1": "alice was offboarded", "s-a2": "alice was offboarded"])
        for id in ["s-a1", "s-a2"] { registry.unregister(id: id) }
        // Locked on another replica (here: directly in the store): the periodic check ends it.
        try await f.test.store.commit { tx in
            try await tx.updateUserStatus(id: "u-b", status: .locked)
            return Change((), event: AuditEvent(code: .userOffboarded, time: Self.t0, actor: "test", subject: "user:bob"))
        }
        try await f.bastion.enforce()
        #expect(ended.value["s-b1"] == "bob is locked")
    }

    @Test(arguments: TestStoreKind.available)
    func lockingEndsSessionsAndUnlockingWaitsForTheirRecordsToClose(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        guard
            case .allowed(let grant)? = try await f.bastion.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("root@web-1 should be allowed")
            return
        }
        let started = try await f.bastion.start(grant, id: "6a1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e01", mode: "shell", command: nil)
        let ended = LockedBox<String?>(nil)
        f.bastion.registry.register(.init(id: started.record.id, userID: "u-a") { reason in ended.value = reason })
        let env = ServiceEnvironment(store: f.test.store, time: f.time, random: SeededRandomSource(seed: 5))
        let accounts = OffboardingService(
            environment: env, hooks: OffboardingService.defaultHooks + [BastionOffboardingHook(registry: f.bastion.registry)])
        let locked = try await accounts.lock(username: f.alice.username, actor: "test", reason: "laptop stolen")
        #expect(locked.revoked["ssh_sessions"] == 1 && locked.revoked["ssh_certificates"] == 1 && locked.user.status == .locked)
        #expect(ended.value == "alice was locked")
        // The session's record is still open (its recording is being sealed, or it runs on a
        // replica that has not checked yet): unlocking now could let it outlive the lock.
        await #expect { try await accounts.unlock(username: f.alice.username, actor: "test", reason: nil) } throws: {
            ($0 as? GatehouseError)?.message.contains("still has 1 bastion session") == true
        }
        f.bastion.registry.unregister(id: started.record.id)
        try await f.bastion.sealed(
            started.record, ending: .init(exitStatus: nil, exitSignal: nil, endedBy: "alice was locked", bytesIn: 0, bytesOut: 0),
            sha256: String(repeating: "ef", count: 32), bytes: 10)
        let unlocked = try await accounts.unlock(username: f.alice.username, actor: "test", reason: "found")
        #expect(unlocked.status == .active)
        // Her old certificate stays revoked: she starts again from a sign-in.
        let access = try await f.bastion.authenticate(keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        if case .allowed? = access { Issue.record("a certificate revoked by the lock must not open sessions after unlock") }
    }

    @Test(arguments: TestStoreKind.available)
    func sealsTheStoreCouldNotTakeAreRetriedAndFillInAnInterruptedClose(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        // Server C's view of the store can go down; B shares the store and stays up.
        let store = SwitchableStore(f.test.store)
        let c = BastionService(
            environment: ServiceEnvironment(store: store, time: f.time, random: SeededRandomSource(seed: 11)), policy: f.policy, ssh: f.ssh,
            sealer: f.sealer, registry: BastionSessionRegistry(replica: "restarted-replica"))
        guard
            case .allowed(let grant)? = try await c.authenticate(
                keyFingerprint: f.fingerprint, userName: "root@web-1", source: nil, sourceAddress: nil)
        else {
            Issue.record("root@web-1 should be allowed")
            return
        }
        let first = try await c.start(grant, id: "7b1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e01", mode: "exec", command: "true")
        let second = try await c.start(grant, id: "7b1f0c7e-1d3a-4c5b-8e6f-0a1b2c3d4e02", mode: "exec", command: "true")
        let ending = BastionService.Ending(exitStatus: 0, exitSignal: nil, endedBy: nil, bytesIn: 1, bytesOut: 2)
        let (d1, d2) = (String(repeating: "1a", count: 32), String(repeating: "2b", count: 32))

        // Both sessions end while the store is down: the seals wait, and C says so.
        store.down.value = true
        await #expect(throws: GatehouseError.self) { try await c.sealed(first.record, ending: ending, sha256: d1, bytes: 100) }
        await #expect(throws: GatehouseError.self) { try await c.sealed(second.record, ending: ending, sha256: d2, bytes: 200) }
        #expect(c.registry.deferredSeals == [first.record.id, second.record.id])
        #expect(await c.retryDeferredSeals() == 2)

        // Meanwhile B takes C for stopped and closes the second one, without the file.
        if f.test.store.writeGeneration == nil { f.time.advance(by: 61) }
        let stale = try await f.other.interruptedSessions().first { $0.id == second.record.id }
        #expect(try await f.other.closeInterrupted(try #require(stale), sha256: nil, bytes: nil, note: "its recording is not on this server's disk"))

        // The store is back: the first is sealed as usual; the second's digest fills in the
        // interrupted close, so the complete recording is vouched for after all.
        store.down.value = false
        // A waiting seal's row keeps beating, so no one takes it for interrupted meanwhile.
        f.time.advance(by: 1)
        #expect(try await c.heartbeat() == 0)
        #expect(try await c.session(id: first.record.id).heartbeatAt == f.time.now())
        #expect(await c.retryDeferredSeals() == 0 && c.registry.deferredSeals.isEmpty)
        let sealedFirst = try await c.session(id: first.record.id)
        #expect(sealedFirst.recordingSHA256 == d1 && sealedFirst.exitStatus == 0 && sealedFirst.endedBy == nil)
        let sealedSecond = try await c.session(id: second.record.id)
        #expect(sealedSecond.recordingSHA256 == d2 && sealedSecond.recordingBytes == 200 && sealedSecond.endedBy?.hasPrefix("interrupted:") == true)
        let events = try await Self.events(f, .sshRecordingSealed)
        #expect(Set(events.map(\.subject)) == ["session:\(first.record.id)", "session:\(second.record.id)"] && events.count == 2)
        let late = events.first { $0.subject == "session:\(second.record.id)" }
        #expect(late?.details["sha256"] == d2 && late?.reason == "sealed by its server after it was closed as interrupted")
        // A second late seal, or one over a digest already recorded, is refused.
        await #expect(throws: GatehouseError.self) { try await c.sealed(second.record, ending: ending, sha256: d1, bytes: 1) }
    }
}
