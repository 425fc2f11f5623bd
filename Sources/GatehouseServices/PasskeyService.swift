public import Foundation
public import GatehouseCore
public import GatehouseWebAuthn

/// Enrollment and sign-in with passkeys: the use cases around ``RelyingParty``. Every
/// enrollment, sign-in and failure is audited; a failed ceremony changes nothing else.
public struct PasskeyService: Sendable {
    /// Sign-in session lifetimes (absolute, and idle for members and for administrators).
    public static let sessionLifetime: TimeInterval = 12 * 3600
    public static let idleTimeout: TimeInterval = 30 * 60
    public static let adminIdleTimeout: TimeInterval = 15 * 60

    let environment: ServiceEnvironment
    public let relyingParty: RelyingParty
    let ceremonies: CeremonyStore
    /// Keys the decoy credential IDs shown for unknown user names, so they are stable per name
    /// and indistinguishable from real ones (no user enumeration).
    let decoySecret: [UInt8]
    /// Repeated failed sign-ins and enrollments from one network are counted, not each logged.
    let failures: FailureAudit

    public init(
        environment: ServiceEnvironment, relyingParty: RelyingParty, ceremonies: CeremonyStore, decoySecret: [UInt8],
        failures: FailureAudit = FailureAudit()
    ) {
        self.environment = environment
        self.relyingParty = relyingParty
        self.ceremonies = ceremonies
        self.decoySecret = decoySecret
        self.failures = failures
    }

    /// A new sign-in session: the token goes to the browser once, only its hash is stored.
    public struct Session: Sendable {
        public let token: String
        public let user: User
        public let expiresAt: Date
    }

    public struct Enrolled: Sendable {
        public let user: User
        public let credentialID: [UInt8]
        public let session: Session
    }

    // MARK: enrollment

    /// Begins enrollment with the secret from an invitation link. Every unusable invitation
    /// (unknown, used, revoked, expired) gets the same answer.
    /// `sourceAddress`: where the request came from; the pending ceremony counts against that network's share.
    public func beginEnrollment(token: String, sourceAddress: String? = nil) async throws -> (ceremony: String, options: CreationOptions) {
        guard !token.isEmpty, token.utf8.count <= 128 else { throw Self.invalidInvitation }
        let hash = InvitationToken.hash(of: token)
        let now = self.environment.time.now()
        guard let invitation = try await self.environment.store.read({ tx in try await tx.invitation(tokenHash: hash) }),
            InvitationToken.matches(presented: token, storedHash: invitation.tokenHash), invitation.isUsable(at: now)
        else {
            throw Self.invalidInvitation
        }
        var userID = Identifier.make(using: self.environment.random)
        if invitation.kind == .recovery {
            // Recovery re-enrolls the existing account under its own user handle.
            guard let user = try await self.environment.store.read({ tx in try await tx.user(named: invitation.username) }), user.status == .active
            else {
                throw Self.invalidInvitation
            }
            userID = user.id
        }
        let (ceremony, challenge) = self.ceremonies.begin(
            .registration(invitationID: invitation.id, userID: userID), owner: CeremonyStore.networkOwner(sourceAddress))
        let options = CreationOptions(
            rp: self.relyingParty, userHandle: Array(userID.utf8), userName: invitation.username.rawValue,
            displayName: invitation.email?.rawValue ?? invitation.username.rawValue, challenge: challenge
        )
        return (ceremony, options)
    }

    static let invalidInvitation = GatehouseError(
        .notFound, "this enrollment link is not valid: it may have been used, revoked or expired. Ask an administrator for a new one")

    /// Finishes enrollment: verifies the new passkey, creates the account from the invitation,
    /// uses up the invitation and opens a session, all in one audited transaction.
    /// `userAgent`: the browser's User-Agent header, kept summarized with the session.
    public func finishEnrollment(ceremony: String, credential json: [UInt8], requestID: String?, sourceAddress: String?, userAgent: String? = nil)
        async throws -> Enrolled
    {
        let env = self.environment
        guard let pending = self.ceremonies.take(ceremony), case .registration(let invitationID, let userID) = pending.kind else {
            throw WebAuthnError(.challengeMismatch, "this enrollment has expired or was already finished; start again")
        }
        let verified: RelyingParty.VerifiedRegistration
        do {
            verified = try self.relyingParty.verifyRegistration(try RegistrationResponse(json: json), challenge: pending.challenge)
            try await self.relyingParty.verifyAttestationTrust(verified, now: self.environment.time.now())
        } catch {
            try await self.auditFailure(
                .enrollmentFailed, subject: .invitation(invitationID), error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
        let token = InvitationToken.generate(using: env.random)
        return try await env.store.commit { tx -> Change<Enrolled> in
            try await tx.lockAccountChanges()
            let now = env.time.now()
            guard let invitation = try await tx.invitation(id: invitationID), invitation.isUsable(at: now) else { throw Self.invalidInvitation }
            let user: User
            var recovered: AuditEvent? = nil
            if invitation.kind == .recovery {
                // Replace every passkey and end every session: whoever holds a lost device
                // must not keep access through it.
                guard let existing = try await tx.user(id: userID), existing.status == .active, existing.username == invitation.username else {
                    throw Self.invalidInvitation
                }
                user = existing
                var removed = 0
                for old in try await tx.credentials(userID: user.id) where try await tx.deleteCredential(id: old.id, userID: user.id) { removed += 1 }
                // The recovery link already cut everything when it was issued; a link issued by an
                // older version did not, so the same cut runs again here (the link itself aside).
                var details = ["invitation": invitationID, "passkeys_removed": String(removed)]
                for hook in OffboardingService.defaultHooks where !(hook is InvitationOffboardingHook) {
                    details[hook.name] = String(try await hook.revoke(user: user, in: tx, at: now))
                }
                details["sessions_ended"] = details.removeValue(forKey: "sessions")
                recovered = AuditEvent(
                    code: .userRecovered, time: now, actor: .user(user.username), subject: .user(user.username),
                    requestID: requestID, sourceAddress: sourceAddress, details: details)
            } else {
                if try await tx.user(named: invitation.username) != nil {
                    throw GatehouseError(.conflict, "user \(invitation.username) already exists")
                }
                user = User(
                    id: userID, username: invitation.username, email: invitation.email, role: invitation.role, status: .active, createdAt: now)
                try await tx.insertUser(user)
            }
            try await tx.insertCredential(
                CredentialRecord(
                    id: verified.credentialID, userID: userID, userHandle: Array(userID.utf8), publicKey: verified.publicKey.encoded,
                    algorithm: verified.publicKey.algorithm.rawValue, signCount: verified.signCount, backupEligible: verified.backupEligible,
                    backedUp: verified.backedUp, aaguid: verified.aaguid, attestationFormat: verified.attestationFormat,
                    transports: verified.transports, createdAt: now, lastUsedAt: now
                ))
            guard try await tx.finishInvitation(id: invitationID, state: .used, at: now) else { throw Self.invalidInvitation }
            let session = try await self.openSession(
                tx, user: user, credentialID: verified.credentialID, token: token, now: now, sourceAddress: sourceAddress, userAgent: userAgent)
            let subject = AuditParty.user(user.username)
            return Change(
                Enrolled(user: user, credentialID: verified.credentialID, session: session),
                first: recovered
                    ?? AuditEvent(
                        code: .userEnrolled, time: now, actor: subject, subject: subject, requestID: requestID, sourceAddress: sourceAddress,
                        details: ["invitation": invitationID, "role": user.role.rawValue]),
                rest: [
                    AuditEvent(
                        code: .passkeyRegistered, time: now, actor: subject, subject: .passkey(verified.credentialID),
                        requestID: requestID, sourceAddress: sourceAddress, details: Self.passkeyDetails(verified)),
                    AuditEvent(
                        code: .signInSucceeded, time: now, actor: subject, subject: subject, requestID: requestID, sourceAddress: sourceAddress,
                        details: ["method": "enrollment"]),
                ]
            )
        }
    }

    static func passkeyDetails(_ v: RelyingParty.VerifiedRegistration) -> [String: String] {
        [
            "algorithm": v.publicKey.algorithm.name, "aaguid": Hex.encode(v.aaguid), "attestation": v.attestationFormat,
            "backup_eligible": String(v.backupEligible), "backed_up": String(v.backedUp),
        ]
    }

    // MARK: sign-in

    /// Begins sign-in. With a user name, the options list that user's passkeys; an unknown name
    /// gets decoy IDs of the same shape, so the answer does not tell who has an account.
    /// Without one, the browser offers the discoverable passkeys it has for this site.
    public func beginSignIn(username: String?, sourceAddress: String? = nil) async throws -> (ceremony: String, options: RequestOptions) {
        var allow: [[UInt8]] = []
        var userID: String? = nil
        if let username {
            let name = try Username(validating: username)
            // Known and unknown names do the same work (two reads, one decoy), so neither the
            // answer's shape nor its timing tells them apart.
            let found = try await self.environment.store.read { tx -> (User?, [CredentialRecord]) in
                let user = try await tx.user(named: name).flatMap { $0.status == .active ? $0 : nil }
                return (user, try await tx.credentials(userID: user?.id ?? ""))
            }
            let decoy = RelyingParty.decoyCredentialID(for: name.rawValue, secret: self.decoySecret)
            if let user = found.0, !found.1.isEmpty {
                userID = user.id
                allow = found.1.map(\.id)
            } else {
                userID = "decoy"
                allow = [decoy]
            }
        }
        let (ceremony, challenge) = self.ceremonies.begin(.authentication(userID: userID), owner: CeremonyStore.networkOwner(sourceAddress))
        return (ceremony, RequestOptions(rp: self.relyingParty, challenge: challenge, allow: allow))
    }

    /// Finishes sign-in: verifies the assertion against the stored passkey, moves its counter
    /// forward and opens a session. A counter that goes backwards is audited as a possible clone.
    public func finishSignIn(ceremony: String, credential json: [UInt8], requestID: String?, sourceAddress: String?, userAgent: String? = nil)
        async throws -> Session
    {
        let env = self.environment
        guard let pending = self.ceremonies.take(ceremony), case .authentication(let expectedUserID) = pending.kind else {
            throw WebAuthnError(.challengeMismatch, "this sign-in has expired or was already finished; start again")
        }
        let response: AuthenticationResponse
        do {
            response = try AuthenticationResponse(json: json)
        } catch {
            try await self.auditFailure(.signInFailed, subject: .unknown, error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
        let found = try await env.store.read { tx -> (CredentialRecord, User)? in
            guard let c = try await tx.credential(id: response.credentialID), let u = try await tx.user(id: c.userID) else { return nil }
            return (c, u)
        }
        guard let (stored, user) = found, user.status == .active, expectedUserID == nil || expectedUserID == user.id else {
            let error = WebAuthnError(.credentialNotAllowed, "this passkey is not registered here, or not for this account")
            try await self.auditFailure(
                .signInFailed, subject: found.map { .user($0.1.username) } ?? .unknown, error: error, requestID: requestID,
                sourceAddress: sourceAddress)
            throw error
        }
        let verified: RelyingParty.VerifiedAuthentication
        do {
            verified = try self.relyingParty.verifyAuthentication(
                response, challenge: pending.challenge,
                credential: .init(
                    id: stored.id, publicKey: stored.publicKey, signCount: stored.signCount, backupEligible: stored.backupEligible,
                    userHandle: stored.userHandle),
                expectedUserHandle: expectedUserID.map { Array($0.utf8) }
            )
        } catch {
            let code: AuditCode = error.code == .counterRegression ? .passkeyCloneSuspected : .signInFailed
            try await self.auditFailure(code, subject: .user(user.username), error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
        let token = InvitationToken.generate(using: env.random)
        do {
            return try await env.store.commit { tx -> Change<Session> in
                // Re-check under the lock what was read before: the account may have been
                // offboarded, the passkey removed, or a clone may have signed in meanwhile.
                try await tx.lockAccountChanges()
                let now = env.time.now()
                guard let current = try await tx.user(id: user.id), current.status == .active,
                    try await tx.credential(id: stored.id)?.userID == user.id
                else {
                    throw WebAuthnError(.credentialNotAllowed, "this passkey is not registered here, or not for this account")
                }
                guard try await tx.updateCredentialUse(id: stored.id, signCount: verified.signCount, backedUp: verified.backedUp, at: now) else {
                    throw WebAuthnError(
                        .counterRegression, "another sign-in with this passkey used the same or a higher counter: possible cloned authenticator")
                }
                let session = try await self.openSession(
                    tx, user: current, credentialID: stored.id, token: token, now: now, sourceAddress: sourceAddress, userAgent: userAgent)
                return Change(
                    session,
                    event: AuditEvent(
                        code: .signInSucceeded, time: now, actor: .user(user.username), subject: .user(user.username), requestID: requestID,
                        sourceAddress: sourceAddress, details: ["method": "passkey", "passkey": String(Base64URL.encode(stored.id).prefix(22))]
                    ))
            }
        } catch let error as WebAuthnError {
            try await self.auditFailure(
                error.code == .counterRegression ? .passkeyCloneSuspected : .signInFailed, subject: .user(user.username),
                error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
    }

    // MARK: sessions

    func openSession(
        _ tx: any StoreWriter, user: User, credentialID: [UInt8], token: InvitationToken, now: Date, sourceAddress: String?,
        userAgent: String? = nil
    ) async throws -> Session {
        let expires = now.addingTimeInterval(Self.sessionLifetime)
        try await tx.insertSession(
            SessionRecord(
                tokenHash: token.hash, userID: user.id, credentialID: credentialID, createdAt: now, lastSeenAt: now, expiresAt: expires,
                idleTimeout: user.role == .admin ? Self.adminIdleTimeout : Self.idleTimeout, steppedUpAt: now, revokedAt: nil,
                sourceAddress: sourceAddress,
                userAgent: BrowserSummary.summarize(userAgent)
            ))
        return Session(token: token.secret, user: user, expiresAt: expires)
    }

    /// The user behind a session cookie, if the session is live and the account active; each use
    /// moves the idle timer forward.
    public func authenticate(sessionToken: String) async throws -> (user: User, session: SessionRecord)? {
        guard !sessionToken.isEmpty, sessionToken.utf8.count <= 128 else { return nil }
        let hash = InvitationToken.hash(of: sessionToken)
        let now = self.environment.time.now()
        guard
            let (session, user) = try await self.environment.store.read({ tx -> (SessionRecord, User)? in
                guard let s = try await tx.session(tokenHash: hash), let u = try await tx.user(id: s.userID) else { return nil }
                return (s, u)
            }), session.isLive(at: now), user.status == .active
        else { return nil }
        try await self.environment.store.recordSessionActivity(tokenHash: hash, at: now)
        return (user, session)
    }

    // MARK: passkeys of a signed-in user

    /// How recent a passkey check must be for sensitive account changes (adding a passkey).
    public static let stepUpWindow: TimeInterval = 5 * 60

    public func passkeys(of user: User) async throws -> [CredentialRecord] {
        try await self.environment.store.read { tx in try await tx.credentials(userID: user.id) }
    }

    /// Begins adding another passkey; needs a passkey check in this session within five minutes.
    public func beginAddPasskey(user: User, session: SessionRecord) async throws -> (ceremony: String, options: CreationOptions) {
        guard self.environment.time.now().timeIntervalSince(session.steppedUpAt) <= Self.stepUpWindow else {
            throw GatehouseError(.stepUpRequired, "confirm with one of your passkeys first (step-up), then add the new one")
        }
        let existing = try await self.passkeys(of: user).map(\.id)
        let (ceremony, challenge) = self.ceremonies.begin(
            .addPasskey(userID: user.id, sessionHash: session.tokenHash), owner: CeremonyStore.accountOwner(user.id))
        let options = CreationOptions(
            rp: self.relyingParty, userHandle: Array(user.id.utf8), userName: user.username.rawValue,
            displayName: user.email?.rawValue ?? user.username.rawValue, challenge: challenge, exclude: existing
        )
        return (ceremony, options)
    }

    public func finishAddPasskey(user: User, ceremony: String, credential json: [UInt8], requestID: String?, sourceAddress: String?) async throws
        -> CredentialRecord
    {
        let env = self.environment
        guard let pending = self.ceremonies.take(ceremony), case .addPasskey(let userID, let sessionHash) = pending.kind, userID == user.id else {
            throw WebAuthnError(.challengeMismatch, "this request has expired or was already finished; start again")
        }
        let verified: RelyingParty.VerifiedRegistration
        do {
            verified = try self.relyingParty.verifyRegistration(try RegistrationResponse(json: json), challenge: pending.challenge)
            try await self.relyingParty.verifyAttestationTrust(verified, now: self.environment.time.now())
        } catch {
            try await self.auditFailure(
                .enrollmentFailed, subject: .user(user.username), error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
        return try await env.store.commit { tx -> Change<CredentialRecord> in
            // The account must still be active and the session that began this still live: a
            // recovery or offboarding that committed meanwhile wins.
            try await tx.lockAccountChanges()
            let now = env.time.now()
            guard try await tx.user(id: user.id)?.status == .active, try await tx.session(tokenHash: sessionHash)?.isLive(at: now) == true else {
                throw GatehouseError(.unauthenticated, "your session ended; sign in again")
            }
            let record = CredentialRecord(
                id: verified.credentialID, userID: user.id, userHandle: Array(user.id.utf8), publicKey: verified.publicKey.encoded,
                algorithm: verified.publicKey.algorithm.rawValue, signCount: verified.signCount, backupEligible: verified.backupEligible,
                backedUp: verified.backedUp, aaguid: verified.aaguid, attestationFormat: verified.attestationFormat,
                transports: verified.transports, createdAt: now, lastUsedAt: nil
            )
            try await tx.insertCredential(record)
            return Change(
                record,
                event: AuditEvent(
                    code: .passkeyRegistered, time: now, actor: .user(user.username), subject: .passkey(record.id),
                    requestID: requestID, sourceAddress: sourceAddress, details: Self.passkeyDetails(verified)
                ))
        }
    }

    /// The longest passkey name kept.
    public static let maxPasskeyName = 64

    /// Names one of the user's passkeys ("work laptop"). No step-up: a name grants nothing.
    /// Audited, like every change to what an account holds.
    public func renamePasskey(user: User, id: [UInt8], name raw: String, requestID: String?, sourceAddress: String?) async throws {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= Self.maxPasskeyName, name.utf8.count <= 4 * Self.maxPasskeyName,
            !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
        else {
            throw GatehouseError(.invalidInput, "a passkey's name is 1 to \(Self.maxPasskeyName) characters, without control characters")
        }
        let env = self.environment
        // The same name again changes nothing and writes nothing (no audit event either).
        let current = try await env.store.read { tx in try await tx.credential(id: id) }
        if let current, current.userID == user.id, current.name == name { return }
        // No account lock: a name grants nothing, and sign-ins must not queue behind renames.
        try await env.store.commit { tx in
            guard try await tx.renameCredential(id: id, userID: user.id, name: name) else {
                throw GatehouseError(.notFound, "you have no such passkey")
            }
            return Change(
                (),
                event: AuditEvent(
                    code: .passkeyRenamed, time: env.time.now(), actor: .user(user.username),
                    subject: .passkey(id),
                    requestID: requestID, sourceAddress: sourceAddress, details: ["name": name]))
        }
    }

    /// Removes one of the user's passkeys, after a passkey check within five minutes, and ends
    /// the sessions opened with it (removing a lost laptop's passkey signs the laptop out). The
    /// last one cannot go: recovery is an administrator's re-enrollment link, never an account
    /// without a passkey.
    public func removePasskey(user: User, session: SessionRecord, id: [UInt8], requestID: String?, sourceAddress: String?) async throws {
        let env = self.environment
        guard env.time.now().timeIntervalSince(session.steppedUpAt) <= Self.stepUpWindow else {
            throw GatehouseError(.stepUpRequired, "confirm with one of your passkeys first (step-up), then remove it")
        }
        try await env.store.commit { tx in
            try await tx.lockAccountChanges()
            let mine = try await tx.credentials(userID: user.id)
            guard mine.contains(where: { $0.id == id }) else { throw GatehouseError(.notFound, "you have no such passkey") }
            guard mine.count > 1 else { throw GatehouseError(.conflict, "this is your only passkey; add another before removing it") }
            _ = try await tx.deleteCredential(id: id, userID: user.id)
            let now = env.time.now()
            // Every session the passkey ever opened, ended or not: the tokens, certificates and
            // devices obtained through them die too (a lost laptop keeps nothing).
            let opened = try await tx.sessions(userID: user.id).filter { $0.credentialID == id }.map(\.tokenHash)
            let ended = try await SessionCut.end(tokenHashes: opened, reason: "passkey_removed", in: tx, at: now)
            return Change(
                (),
                event: AuditEvent(
                    code: .passkeyRemoved, time: now, actor: .user(user.username), subject: .passkey(id),
                    requestID: requestID, sourceAddress: sourceAddress, details: ended.details))
        }
    }

    /// Step-up: a fresh assertion by one of the user's passkeys, which other features can then
    /// require (within a window) before sensitive actions.
    public func beginStepUp(user: User, session: SessionRecord) async throws -> (ceremony: String, options: RequestOptions) {
        let allow = try await self.passkeys(of: user).map(\.id)
        let (ceremony, challenge) = self.ceremonies.begin(
            .stepUp(userID: user.id, sessionHash: session.tokenHash), owner: CeremonyStore.accountOwner(user.id))
        return (ceremony, RequestOptions(rp: self.relyingParty, challenge: challenge, allow: allow))
    }

    public func finishStepUp(user: User, ceremony: String, credential json: [UInt8], requestID: String?, sourceAddress: String?) async throws {
        let env = self.environment
        guard let pending = self.ceremonies.take(ceremony), case .stepUp(let userID, let sessionHash) = pending.kind, userID == user.id else {
            throw WebAuthnError(.challengeMismatch, "this step-up has expired or was already finished; start again")
        }
        let verified: RelyingParty.VerifiedAuthentication
        let stored: CredentialRecord
        do {
            let response = try AuthenticationResponse(json: json)
            guard let found = try await env.store.read({ tx in try await tx.credential(id: response.credentialID) }), found.userID == user.id else {
                throw WebAuthnError(.credentialNotAllowed, "that passkey is not one of yours")
            }
            stored = found
            verified = try self.relyingParty.verifyAuthentication(
                response, challenge: pending.challenge,
                credential: .init(
                    id: stored.id, publicKey: stored.publicKey, signCount: stored.signCount, backupEligible: stored.backupEligible,
                    userHandle: stored.userHandle),
                expectedUserHandle: Array(user.id.utf8)
            )
        } catch {
            let code: AuditCode = (error as? WebAuthnError)?.code == .counterRegression ? .passkeyCloneSuspected : .signInFailed
            try await self.auditFailure(code, subject: .user(user.username), error: error, requestID: requestID, sourceAddress: sourceAddress)
            throw error
        }
        try await env.store.commit { tx in
            try await tx.lockAccountChanges()
            let now = env.time.now()
            guard try await tx.user(id: user.id)?.status == .active, try await tx.session(tokenHash: sessionHash)?.isLive(at: now) == true else {
                throw GatehouseError(.unauthenticated, "your session ended; sign in again")
            }
            guard try await tx.updateCredentialUse(id: stored.id, signCount: verified.signCount, backedUp: verified.backedUp, at: now) else {
                throw WebAuthnError(
                    .counterRegression, "another sign-in with this passkey used the same or a higher counter: possible cloned authenticator")
            }
            try await tx.touchSession(tokenHash: sessionHash, at: now, steppedUp: true)
            return Change(
                (),
                event: AuditEvent(
                    code: .steppedUp, time: now, actor: .user(user.username), subject: .user(user.username), requestID: requestID,
                    sourceAddress: sourceAddress))
        }
    }

    /// A session's public name: the start of its token's hash (never the token).
    public static func sessionID(_ record: SessionRecord) -> String { String(record.tokenHash.prefix(16)) }

    /// Signs out: ends the session behind `sessionToken`. False if it was not live.
    public func signOut(sessionToken: String, requestID: String? = nil, sourceAddress: String? = nil) async throws -> Bool {
        guard let (user, session) = try await self.authenticate(sessionToken: sessionToken) else { return false }
        let env = self.environment
        return try await env.store.commit { tx in
            let now = env.time.now()
            let ended = try await SessionCut.end(tokenHashes: [session.tokenHash], reason: "signed_out", in: tx, at: now)
            return Change(
                ended.sessions > 0,
                event: AuditEvent(
                    code: .signedOut, time: now, actor: .user(user.username), subject: .session(Self.sessionID(session)),
                    requestID: requestID, sourceAddress: sourceAddress, details: ended.details))
        }
    }

    /// The user's live sessions, newest first.
    public func liveSessions(of user: User) async throws -> [SessionRecord] {
        let now = self.environment.time.now()
        return try await self.environment.store.read { tx in try await tx.sessions(userID: user.id) }.filter { $0.isLive(at: now) }
    }

    /// Ends one of the user's own sessions, named by ``sessionID(_:)``.
    public func revokeSession(of user: User, id: String, requestID: String? = nil, sourceAddress: String? = nil) async throws {
        let env = self.environment
        guard let target = try await self.liveSessions(of: user).first(where: { Self.sessionID($0) == id }) else {
            throw GatehouseError(.notFound, "no live session \(id.prefix(32)) of yours")
        }
        try await env.store.commit { tx in
            let now = env.time.now()
            let ended = try await SessionCut.end(tokenHashes: [target.tokenHash], reason: "session_revoked", in: tx, at: now)
            return Change(
                (),
                event: AuditEvent(
                    code: .sessionRevoked, time: now, actor: .user(user.username), subject: .session(id),
                    requestID: requestID, sourceAddress: sourceAddress, details: ended.details))
        }
    }

    func auditFailure(_ code: AuditCode, subject: AuditParty, error: any Error, requestID: String?, sourceAddress: String?) async throws {
        let now = self.environment.time.now()
        let reason = (error as? WebAuthnError)?.code.rawValue ?? (error as? GatehouseError)?.code.rawValue ?? "error"
        let event = AuditEvent(
            code: code, time: now, actor: subject, subject: subject, outcome: .denied, reason: reason, requestID: requestID,
            sourceAddress: sourceAddress)
        // A suspected clone is always its own event; other failures anyone can repeat are counted.
        try await FailureAudit.commit(code == .passkeyCloneSuspected ? [event] : self.failures.admit(event), to: self.environment.store)
    }
}
