public import Foundation
import GatehouseAudit
public import GatehouseCore
import GatehousePolicy
public import GatehouseRecording
public import GatehouseSSH

/// The SSH bastion's decisions and records. The bastion adapter (swift-nio-ssh) proves the
/// person's key and carries bytes; everything it may do is decided here:
///
/// - who a key belongs to: the live Gatehouse user certificate issued for it (the bastion sees
///   the plain key of the pair; OpenSSH offers it after the certificate, which swift-nio-ssh's
///   server refuses unseen);
/// - whether that person may log in as LOGIN on HOST now: the certificate must carry
///   `LOGIN@HOST` and the current policy must still allow it, from where they connect;
/// - where HOST is and which host key it must present (the key it enrolled with: never trust on
///   first use);
/// - the one-minute certificate for the onward connection, issued and audited like any other;
/// - each session's record and audit trail: started, denied, recording sealed (with its
///   SHA-256), recording failed, killed.
public struct BastionService: Sendable {
    let environment: ServiceEnvironment
    /// Identifiers for connections and sessions, from the injected source.
    public var random: any RandomSource { self.environment.random }
    let policy: PolicyService
    let ssh: SSHCertificateService
    let sealer: KeySealer
    public let registry: BastionSessionRegistry

    public init(
        environment: ServiceEnvironment, policy: PolicyService, ssh: SSHCertificateService, sealer: KeySealer, registry: BastionSessionRegistry
    ) {
        self.environment = environment
        self.policy = policy
        self.ssh = ssh
        self.sealer = sealer
        self.registry = registry
    }

    /// Who a proven key belongs to.
    public struct Identity: Sendable, Equatable {
        public let user: User
        public let keyFingerprint: String
    }

    /// What the person may do through this connection.
    public struct Grant: Sendable, Equatable {
        public let identity: Identity
        public let login: String
        public let host: String
        /// Where the host's sshd listens, from the policy (`addresses`, `ssh_port`).
        public let address: String
        public let port: Int
        /// The host key the target must present (`SHA256:...`), from its enrollment.
        public let hostKeyFingerprint: String
        let permit: SSHLoginPermit
        /// The client's source address, as text and as the policy compares it.
        public let source: String?
        let sourceAddress: UInt128?
        /// The rule's force-command: the target runs it whatever is asked.
        public var forceCommand: String? { self.permit.forceCommand }
        /// Whether the policy lets this login forward ports (`permit-port-forwarding`).
        public var portForwarding: Bool { self.permit.extensions.contains("permit-port-forwarding") }
        public var pty: Bool { self.permit.extensions.contains("permit-pty") }
    }

    public enum Access: Sendable, Equatable {
        case allowed(Grant)
        /// The person proved their key but may not go where they asked: the message says why,
        /// and the bastion shows it to them instead of running anything.
        case denied(Identity, message: String)
    }

    /// Decides for a key the client has proven (its signature checked) and the SSH user name it
    /// sent. Nil when the key belongs to no Gatehouse certificate at all: authentication fails.
    /// Denials are audited here, once per connection.
    public func authenticate(keyFingerprint: String, userName: String, source: String?, sourceAddress: UInt128?) async throws -> Access? {
        let env = self.environment
        let now = env.time.now()
        let found = try await self.lookup(keyFingerprint: keyFingerprint, userName: userName)
        guard let user = found.user else { return nil }
        let identity = Identity(user: user, keyFingerprint: keyFingerprint)
        var access = self.decide(
            identity: identity, certificates: found.certificates, userName: userName, host: found.host, source: source, sourceAddress: sourceAddress,
            now: now)
        if found.owners > 1 {
            // Issuance now needs proof of possession, but certificates issued before it did not:
            // a key certified to two people identifies nobody.
            access = .denied(identity, message: "this key is certified for more than one Gatehouse user; make a new key and sign in again")
        }
        if case .denied(_, let message) = access {
            let target = BastionTarget(userName: userName)
            try await env.store.commit { _ in
                Change(
                    (),
                    event: AuditEvent(
                        code: .sshSessionDenied, time: now, actor: .user(user.username), subject: .host(target?.host ?? "?"), outcome: .denied,
                        reason: message, sourceAddress: source,
                        details: ["login": target?.login ?? user.username.rawValue, "user_name": String(userName.prefix(200)), "key": keyFingerprint])
                )
            }
            // A locked or offboarded account does not get past authentication at all (it would
            // otherwise hold connections open); the reason is in the audit log.
            if user.status != .active { return nil }
        }
        return access
    }

    private func lookup(keyFingerprint: String, userName: String) async throws -> (
        certificates: [SSHCertificateRecord], user: User?, host: HostRecord?, owners: Int
    ) {
        try await self.environment.store.read { tx in
            let all = try await tx.sshCertificates(keyFingerprint: keyFingerprint).filter { $0.kind == "user" }
            guard let newest = all.first else { return ([], nil, nil, 0) }
            let owners = Set(all.map(\.userID)).count
            // Only the certificates of the person the key is (newest) certified to count.
            let certificates = all.filter { $0.userID == newest.userID }
            let user = try await tx.user(id: newest.userID)
            guard let target = BastionTarget(userName: userName) else { return (certificates, user, nil, owners) }
            return (certificates, user, try await tx.host(named: target.host), owners)
        }
    }

    /// Decides again, now, for a grant made when the connection authenticated: every session
    /// and port forwarding on a connection is checked on its own (certificate, account, policy,
    /// host), so a long-lived connection keeps no access its person has lost.
    func reauthorize(_ grant: Grant) async throws {
        let found = try await self.lookup(keyFingerprint: grant.identity.keyFingerprint, userName: "\(grant.login)@\(grant.host)")
        guard let user = found.user, user.id == grant.identity.user.id, found.owners == 1 else {
            throw GatehouseError(.forbidden, "this key no longer identifies \(grant.identity.user.username)")
        }
        let access = self.decide(
            identity: Identity(user: user, keyFingerprint: grant.identity.keyFingerprint), certificates: found.certificates,
            userName: "\(grant.login)@\(grant.host)", host: found.host, source: grant.source, sourceAddress: grant.sourceAddress,
            now: self.environment.time.now())
        switch access {
        case .allowed(let now) where now.hostKeyFingerprint == grant.hostKeyFingerprint && now.address == grant.address && now.port == grant.port:
            return
        case .allowed: throw GatehouseError(.forbidden, "\(grant.host)'s address or host key changed since this connection began; connect again")
        case .denied(_, let message): throw GatehouseError(.forbidden, message)
        }
    }

    func decide(
        identity: Identity, certificates: [SSHCertificateRecord], userName: String, host record: HostRecord?, source: String?,
        sourceAddress: UInt128?, now: Date
    ) -> Access {
        let user = identity.user
        func deny(_ message: String) -> Access { .denied(identity, message: message) }
        guard user.status == .active else { return deny("the Gatehouse account \(user.username) is \(user.status.rawValue)") }
        let live = certificates.filter { $0.revokedAt == nil && $0.validAfter <= now && $0.validBefore > now }
        if live.isEmpty {
            if certificates.contains(where: { $0.revokedAt != nil && $0.validBefore > now }) {
                return deny("your SSH certificate was revoked; sign in again with `gatehouse login`")
            }
            let expiry = certificates.map(\.validBefore).max().map { CanonicalEntry.timestamp($0) } ?? "?"
            return deny("your SSH certificate expired at \(expiry); renew it with `gatehouse login` (or `gatehouse ssh`)")
        }
        guard let target = BastionTarget(userName: userName) else {
            return deny("the SSH user name must be HOST or LOGIN@HOST (for example root@web-1); got \(String(userName.prefix(64)).debugDescription)")
        }
        let login = target.login ?? user.username.rawValue
        let compiled = self.policy.active.policy
        guard let host = compiled.definitions.hosts.first(where: { $0.name == target.host }) else {
            if target.login == nil {
                return deny(
                    "there is no host \(target.host) in the policy; the SSH user name names the target, as HOST or LOGIN@HOST (for example `ssh -l root@web-1 web-1`)"
                )
            }
            return deny("there is no host \(target.host) in the policy")
        }
        let principal = "\(login)@\(target.host)"
        guard live.contains(where: { $0.principals.contains(principal) }) else {
            return deny(
                "your SSH certificate does not allow \(login) on \(target.host); get a fresh one with `gatehouse login` if the policy changed")
        }
        // `step_up` rules: the passkey check behind the certificate that carries this login counts.
        let stepUp = live.filter { $0.principals.contains(principal) }.compactMap(\.authTime).max()
        guard
            let permit = self.ssh.permits(for: user, hosts: [target.host], sourceAddress: sourceAddress, lastStepUp: stepUp).first(where: {
                $0.login == login
            })
        else {
            if self.ssh.permits(for: user, hosts: [target.host], sourceAddress: sourceAddress, lastStepUp: now).contains(where: { $0.login == login })
            {
                return deny(
                    "\(login) on \(target.host) needs a recent passkey check (the rule's step_up): sign in again with `gatehouse login` and get a fresh certificate"
                )
            }
            return deny("the policy does not allow \(user.username) to log in as \(login) on \(target.host) now\(source.map { " from \($0)" } ?? "")")
        }
        guard let record, record.joinedAt != nil, let hostKey = record.hostKeyFingerprint else {
            return deny(
                "\(target.host) has not joined Gatehouse (`gatehouse agent join`): its host key is unknown, so the bastion will not connect to it")
        }
        guard let address = host.addresses.first(where: { $0.isSingleAddress && $0 != host.meshAddress }) ?? host.meshAddress else {
            return deny("\(target.host) has no address in the policy")
        }
        return .allowed(
            Grant(
                identity: identity, login: login, host: target.host, address: address.description, port: host.sshPort, hostKeyFingerprint: hostKey,
                permit: permit, source: source, sourceAddress: sourceAddress))
    }

    /// A certificate for the onward connection: the bastion's fresh key, exactly `LOGIN@HOST`,
    /// valid for one minute (and a minute's backdating for clock skew), with the permit's
    /// extensions and force-command. The person's source address was checked by the policy
    /// here; the target sees the bastion's. Recorded and audited before it is returned.
    public func onwardCertificate(_ grant: Grant, publicKey: SSHPublicKey, session: String) async throws -> String {
        let env = self.environment
        let now = env.time.now()
        var permit = grant.permit
        permit.sourceAddresses = nil
        let serial = SSHCertificate.randomSerial(using: env.random)
        let certificate = try SSHCertificatePlan.certificate(
            for: publicKey, username: grant.identity.user.username.rawValue, permits: [permit], requestedLifetime: 60,
            serial: serial, requestID: "bastion:\(session)", now: now)
        let signed = try self.ssh.sign(certificate, nonce: env.random.bytes(32))
        let record = SSHCertificateRecord(
            serial: serial, userID: grant.identity.user.id, kind: "user", keyFingerprint: publicKey.fingerprint, principals: certificate.principals,
            keyID: certificate.keyID, validAfter: Date(timeIntervalSince1970: TimeInterval(certificate.validAfter)),
            validBefore: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), createdAt: now
        )
        try await env.store.commit { tx in
            try await tx.lockAccountChanges()
            guard try await tx.user(id: grant.identity.user.id)?.status == .active else {
                throw GatehouseError(.unauthenticated, "this account is not active")
            }
            try await tx.insertSSHCertificate(record)
            return Change(
                (),
                event: AuditEvent(
                    code: .sshCertificateIssued, time: now, actor: .user(grant.identity.user.username), subject: .sshCertificate(serial),
                    requestID: "bastion:\(session)",
                    sourceAddress: grant.source,
                    details: [
                        "serial": String(serial), "key": publicKey.fingerprint, "principals": certificate.principals.joined(separator: ","),
                        "valid_before": String(certificate.validBefore), "bastion_session": session,
                    ]
                ))
        }
        return signed.line
    }

    /// What the bastion needs to record a session it is about to start.
    public struct Started: Sendable {
        public let record: BastionSessionRecord
        /// The recording's own key, and the same sealed under the root key for the file's preamble.
        public let dataKey: [UInt8]
        public let sealedKey: [UInt8]
    }

    /// Records and audits the start of a session's program (`shell`, `exec`, `subsystem`),
    /// before it runs. Fails closed: without this record, nothing runs.
    public func start(_ grant: Grant, id: String, mode: String, command: String?) async throws -> Started {
        try await self.reauthorize(grant)
        let env = self.environment
        let now = env.time.now()
        let record = BastionSessionRecord(
            id: id, userID: grant.identity.user.id, username: grant.identity.user.username.rawValue, login: grant.login, host: grant.host,
            source: grant.source, mode: mode, command: command.map { String($0.prefix(1024)) }, startedAt: now,
            replica: self.registry.replica, heartbeatAt: now)
        let dataKey = env.random.bytes(32)
        let sealed = self.sealer.seal(dataKey, purpose: .sessionRecording, random: env.random)
        try await env.store.commit { tx in
            try await tx.lockAccountChanges()
            guard try await tx.user(id: grant.identity.user.id)?.status == .active else {
                throw GatehouseError(.unauthenticated, "this account is not active")
            }
            try await tx.insertBastionSession(record)
            var details = ["login": grant.login, "host": grant.host, "mode": mode, "recording": id]
            if let command { details["command"] = String(command.prefix(256)) }
            return Change(
                (),
                event: AuditEvent(
                    code: .sshSessionStarted, time: now, actor: .user(grant.identity.user.username), subject: .session(id),
                    sourceAddress: grant.source, details: details))
        }
        return Started(record: record, dataKey: dataKey, sealedKey: sealed)
    }

    /// How a session ended.
    public struct Ending: Sendable, Equatable {
        public var exitStatus: Int?
        public var exitSignal: String?
        public var endedBy: String?
        public var bytesIn: Int64
        public var bytesOut: Int64
        public init(exitStatus: Int?, exitSignal: String?, endedBy: String?, bytesIn: Int64, bytesOut: Int64) {
            self.exitStatus = exitStatus
            self.exitSignal = exitSignal
            self.endedBy = endedBy
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
        }
    }

    /// Records the end of a session whose recording is sealed: the file's SHA-256 and size go
    /// into the session's row and the audit log, which from then on vouches for the file.
    ///
    /// If the store cannot be reached, the seal is kept and retried with every heartbeat (which
    /// keeps the row open meanwhile), and the error is thrown. If another replica closed the row
    /// meanwhile as interrupted without the file (it is on this server's disk), the seal fills in
    /// the digest: the complete recording is vouched for after all.
    public func sealed(_ started: BastionSessionRecord, ending: Ending, sha256: String, bytes: Int64) async throws {
        do {
            try await self.finish(started, ending: ending, sha256: sha256, bytes: bytes, code: .sshRecordingSealed, outcome: .allowed)
        } catch let error as GatehouseError where error.code == .conflict {
            guard try await self.sealLate(started, sha256: sha256, bytes: bytes) else { throw error }
        } catch let error as GatehouseError where error.code == .storeUnreachable || error.code == .storeFailure {
            self.registry.deferSeal(id: started.id) { try await self.sealed(started, ending: ending, sha256: sha256, bytes: bytes) }
            throw error
        }
    }

    /// Retries the seals the store could not take; each that fails again stays deferred.
    /// Returns how many are still waiting.
    @discardableResult
    public func retryDeferredSeals() async -> Int {
        for (_, retry) in self.registry.takeDeferredSeals() { try? await retry() }
        return self.registry.deferredSeals.count
    }

    private func sealLate(_ started: BastionSessionRecord, sha256: String, bytes: Int64) async throws -> Bool {
        let env = self.environment
        return try await env.store.commit { tx -> Change<Bool> in
            guard try await tx.sealInterruptedBastionSession(id: started.id, sha256: sha256, bytes: bytes) else {
                throw GatehouseError(.conflict, "session \(started.id) has already ended")
            }
            return Change(
                true,
                event: AuditEvent(
                    code: .sshRecordingSealed, time: env.time.now(), actor: .user(started.username), subject: .session(started.id),
                    reason: "sealed by its server after it was closed as interrupted",
                    details: ["login": started.login, "host": started.host, "sha256": sha256, "size": String(bytes)]))
        }
    }

    /// Records that a session's recording could not be written: the session was refused or ended.
    public func recordingFailed(_ started: BastionSessionRecord, ending: Ending, reason: String) async throws {
        var ending = ending
        ending.endedBy = "recording failed: \(reason.prefix(200))"
        try await self.finish(started, ending: ending, sha256: nil, bytes: nil, code: .sshRecordingFailed, outcome: .failed)
    }

    private func finish(
        _ started: BastionSessionRecord, ending: Ending, sha256: String?, bytes: Int64?, code: AuditCode, outcome: AuditEvent.Outcome,
        endedAt: Date? = nil, stale: Bool = false
    ) async throws {
        let env = self.environment
        let now = env.time.now()
        var record = started
        record.endedAt = endedAt ?? now
        record.exitStatus = ending.exitStatus
        record.exitSignal = ending.exitSignal
        record.endedBy = ending.endedBy
        record.recordingSHA256 = sha256
        record.recordingBytes = bytes
        record.bytesIn = ending.bytesIn
        record.bytesOut = ending.bytesOut
        let final = record
        try await env.store.commit { tx in
            guard try await (stale ? tx.finishStaleBastionSession(final) : tx.finishBastionSession(final)) else {
                throw GatehouseError(.conflict, "session \(final.id) has already ended")
            }
            var details = ["login": final.login, "host": final.host, "bytes_in": String(final.bytesIn), "bytes_out": String(final.bytesOut)]
            if let sha256 { details["sha256"] = sha256 }
            if let bytes { details["size"] = String(bytes) }
            if let status = final.exitStatus { details["exit_status"] = String(status) }
            if let signal = final.exitSignal { details["exit_signal"] = signal }
            return Change(
                (),
                event: AuditEvent(
                    code: code, time: now, actor: .user(final.username), subject: .session(final.id), outcome: outcome,
                    reason: final.endedBy, details: details))
        }
    }

    // MARK: sessions whose process stopped

    /// How long a replica may go without a heartbeat before its live sessions count as
    /// interrupted. Where this process is the store's only writer (SQLite, memory), any live
    /// session of another process is interrupted at once: that process has stopped.
    public static let heartbeatInterval: Duration = .seconds(5)
    public static let staleAfter: TimeInterval = 60

    /// Marks this process's live sessions as running, and ends any whose row was closed
    /// elsewhere (another replica took this one for stopped): a session without an open record
    /// does not go on. Returns how many it ended.
    @discardableResult
    public func heartbeat() async throws -> Int {
        let sessions = self.registry.live.filter { !$0.id.hasPrefix(BastionSessionRegistry.connectionPrefix) }
        // No sessions here, nothing to keep open (a session's row starts with a fresh heartbeat).
        // Only sessions running here, and seals waiting for the store, are kept open: a row left
        // open otherwise stops beating, and is closed as interrupted like any other.
        let ids = sessions.map(\.id) + self.registry.deferredSeals
        guard !ids.isEmpty else { return 0 }
        let open = try await self.environment.store.recordBastionHeartbeat(
            replica: self.registry.replica, sessions: ids, at: self.environment.time.now())
        var ended = 0
        for entry in sessions where !open.contains(entry.id) {
            entry.end("this session's record was closed by another Gatehouse server, which found this one silent")
            ended += 1
        }
        return ended
    }

    /// Live sessions whose process has stopped: other replicas' sessions without a heartbeat
    /// for `staleAfter` seconds (replicas' clocks must agree to well within that), or, when this
    /// process is the store's only writer, every live session of another process, including
    /// rows from before heartbeats. On a shared store those are left alone: a replica of an
    /// older version may still be running them.
    public func interruptedSessions(limit: Int = 100) async throws -> [BastionSessionRecord] {
        let env = self.environment
        let soleWriter = env.store.writeGeneration != nil
        let cutoff = soleWriter ? nil : env.time.now().addingTimeInterval(-Self.staleAfter)
        return try await env.store.read { tx in
            try await tx.staleBastionSessions(
                otherThan: self.registry.replica, heartbeatBefore: cutoff, includeUnowned: soleWriter, limit: max(1, min(limit, 1000)))
        }
    }

    /// Closes a session whose process stopped: ended when it was last heard from, and its
    /// recording sealed as found (`sha256`, `bytes`; nil when the file is not on this server's
    /// disk, or gone), audited as `ssh.recording_interrupted`. False when it was closed meanwhile.
    @discardableResult
    public func closeInterrupted(_ record: BastionSessionRecord, sha256: String?, bytes: Int64?, note: String? = nil) async throws -> Bool {
        let last = record.heartbeatAt ?? record.startedAt
        var reason = "interrupted: the Gatehouse server running it stopped (last heard from at \(ISO8601DateFormatter().string(from: last)))"
        if let note { reason += "; \(note.prefix(200))" }
        let ending = Ending(exitStatus: nil, exitSignal: nil, endedBy: reason, bytesIn: record.bytesIn, bytesOut: record.bytesOut)
        do {
            // Only if nothing moved since it was read: a heartbeat in between means it is alive.
            try await self.finish(
                record, ending: ending, sha256: sha256, bytes: bytes, code: .sshRecordingInterrupted, outcome: .failed, endedAt: last, stale: true)
            return true
        } catch let error as GatehouseError where error.code == .conflict {
            return false
        }
    }

    /// Ends a live session on an administrator's word, audited; `.notFound` when it is not live here.
    public func kill(id: String, actor: String, reason: String?) async throws {
        let env = self.environment
        guard let record = try await env.store.read({ tx in try await tx.bastionSession(id: id) }), record.endedAt == nil else {
            throw GatehouseError(.notFound, "there is no live session \(id.prefix(64))")
        }
        guard self.registry.isLive(id: id) else {
            throw GatehouseError(.notFound, "session \(id.prefix(64)) is not live on this server (another replica runs it, or it is still starting)")
        }
        try await env.store.commit { _ in
            Change(
                (),
                event: AuditEvent(
                    code: .sshSessionKilled, time: env.time.now(), actor: .stored(actor), subject: .session(id),
                    reason: reason.map { String($0.prefix(500)) },
                    details: ["user": record.username, "login": record.login, "host": record.host]))
        }
        guard self.registry.end(id: id, reason: "ended by an administrator\(reason.map { ": \($0.prefix(200))" } ?? "")") else {
            throw GatehouseError(.notFound, "session \(id.prefix(64)) is not live on this server")
        }
    }

    /// Audits a port forwarding channel the policy allowed, before it is opened.
    public func forwarding(_ grant: Grant, to host: String, port: Int) async throws {
        try await self.reauthorize(grant)
        let env = self.environment
        try await env.store.commit { _ in
            Change(
                (),
                event: AuditEvent(
                    code: .sshForwardingOpened, time: env.time.now(), actor: .user(grant.identity.user.username), subject: .host(grant.host),
                    sourceAddress: grant.source, details: ["login": grant.login, "to": "\(host.prefix(255)):\(port)"]))
        }
    }

    /// Ends live sessions whose person is no longer active (locked or offboarded, on any
    /// replica). The bastion runs this every half second; offboarding here ends them at once.
    public func enforce() async throws {
        let live = self.registry.live
        guard !live.isEmpty else { return }
        let users = Set(live.map(\.userID))
        let keys = Set(live.compactMap { entry in entry.keyFingerprint.map { KeyOwner(user: entry.userID, key: $0) } })
        let (inactive, cut) = try await self.environment.store.read { tx -> ([String: String], Set<KeyOwner>) in
            var out: [String: String] = [:]
            for id in users {
                let user = try await tx.user(id: id)
                if user?.status != .active { out[id] = user.map { "\($0.username) is \($0.status.rawValue)" } ?? "the account is gone" }
            }
            // A key whose every certificate for this person was revoked (the sign-in that got
            // them was ended, or the account recovered) holds no session open either.
            var revoked: Set<KeyOwner> = []
            for owner in keys where out[owner.user] == nil {
                let mine = try await tx.sshCertificates(keyFingerprint: owner.key).filter { $0.userID == owner.user && $0.kind == "user" }
                if !mine.isEmpty, mine.allSatisfy({ $0.revokedAt != nil }) { revoked.insert(owner) }
            }
            return (out, revoked)
        }
        for (id, reason) in inactive { self.registry.end(userID: id, reason: reason) }
        for entry in live where entry.keyFingerprint.map({ cut.contains(KeyOwner(user: entry.userID, key: $0)) }) == true {
            self.registry.end(id: entry.id, reason: "the certificate this session was opened with was revoked")
        }
    }

    struct KeyOwner: Hashable {
        let user: String
        let key: String
    }

    public func sessions(liveOnly: Bool, limit: Int) async throws -> [BastionSessionRecord] {
        try await self.environment.store.read { tx in try await tx.bastionSessions(userID: nil, liveOnly: liveOnly, limit: max(1, min(limit, 10_000)))
        }
    }

    public func session(id: String) async throws -> BastionSessionRecord {
        guard RecordingFormat.isValidID(id), let record = try await self.environment.store.read({ tx in try await tx.bastionSession(id: id) }) else {
            throw GatehouseError(.notFound, "there is no session \(id.prefix(64))")
        }
        return record
    }

    /// Opens a recording's data key from its preamble (for playing and watching).
    public func recordingKey(_ preamble: RecordingDecoder.Preamble) throws -> [UInt8] {
        try self.sealer.open(preamble.sealedKey, purpose: .sessionRecording)
    }
}
