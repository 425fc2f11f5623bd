public import Foundation

/// Stable audit event codes. A code never changes meaning once released; new events get new codes.
public enum AuditCode: String, Sendable, Codable, CaseIterable {
    case systemInitialized = "system.initialized"
    case keyGenerated = "key.generated"
    case invitationCreated = "invitation.created"
    case invitationRevoked = "invitation.revoked"
    case userCreated = "user.created"
    case policyApplied = "policy.applied"
    case policyRejected = "policy.rejected"
    case userEnrolled = "user.enrolled"
    case enrollmentFailed = "enrollment.failed"
    case passkeyRegistered = "passkey.registered"
    case signInSucceeded = "signin.succeeded"
    case signInFailed = "signin.failed"
    case passkeyCloneSuspected = "passkey.clone_suspected"
    case userOffboarded = "user.offboarded"
    /// An account was locked: everything it held ended, as at offboarding, but it can be unlocked.
    case userLocked = "user.locked"
    case userUnlocked = "user.unlocked"
    case sessionRevoked = "session.revoked"
    case signedOut = "signin.signed_out"
    case passkeyRemoved = "passkey.removed"
    case passkeyRenamed = "passkey.renamed"
    case steppedUp = "signin.stepped_up"
    case userRecovered = "user.recovered"
    case oidcClientRegistered = "oidc.client_registered"
    case oidcClientRemoved = "oidc.client_removed"
    case oidcKeyRotated = "oidc.key_rotated"
    /// A user was sent back to a client with an authorization code.
    case oidcAuthorized = "oidc.authorized"
    /// The policy refused a user a client or a proxied app.
    case oidcDenied = "oidc.denied"
    case oidcConsentGiven = "oidc.consent_given"
    /// Tokens were issued (code exchange, refresh or device grant).
    case oidcTokenIssued = "oidc.token_issued"
    /// A used authorization code or refresh token came back: its whole grant was revoked.
    case oidcReplayDetected = "oidc.replay_detected"
    case oidcTokenRevoked = "oidc.token_revoked"
    case oidcLogout = "oidc.logout"
    case oidcDeviceStarted = "oidc.device_started"
    case oidcDeviceApproved = "oidc.device_approved"
    case oidcDeviceDenied = "oidc.device_denied"
    /// The proxy let a user into an app (once per sign-in session and app, per replica).
    case proxyAllowed = "proxy.allowed"
    case sshCertificateIssued = "ssh.certificate_issued"
    /// The policy (or the request) allowed no certificate.
    case sshCertificateRefused = "ssh.certificate_refused"
    case hostAdded = "host.added"
    case hostJoined = "host.joined"
    case hostCertificateIssued = "ssh.host_certificate_issued"
    case hostJoinRefused = "host.join_refused"
    /// The X.509 authority began issuing (a generated root, or an intermediate imported from an offline root).
    case pkiAuthorityActivated = "pki.authority_activated"
    /// A key was made for an intermediate that an offline root is to sign.
    case pkiIntermediateRequested = "pki.intermediate_requested"
    case pkiCertificateIssued = "pki.certificate_issued"
    case pkiCertificateRefused = "pki.certificate_refused"
    case pkiCertificateRevoked = "pki.certificate_revoked"
    /// A mutual-TLS peer was refused after its chain verified (revoked, offboarded, unenrolled).
    case pkiPeerRefused = "pki.peer_refused"
    /// A person's WireGuard device joined the private network.
    case networkDeviceRegistered = "network.device_registered"
    /// A device was removed by its owner or an administrator (offboarding counts under its hook).
    case networkDeviceRemoved = "network.device_removed"
    /// A host's agent registered (or replaced) its WireGuard key.
    case networkHostRegistered = "network.host_registered"
    /// A host's agent left the private network (`gatehouse agent leave`).
    case networkHostLeft = "network.host_left"
    /// A session through the SSH bastion started: the program is about to run, its recording is open.
    case sshSessionStarted = "ssh.session_started"
    /// The bastion refused someone who proved a key of a Gatehouse certificate (expired, revoked,
    /// locked, a login or host the policy does not allow, a target it cannot verify).
    case sshSessionDenied = "ssh.session_denied"
    /// A session ended and its recording was sealed: the SHA-256 of the file vouches for it.
    case sshRecordingSealed = "ssh.recording_sealed"
    /// A recording could not be written: the session was refused or ended.
    case sshRecordingFailed = "ssh.recording_failed"
    /// The server process running a session stopped without ending it; the session is closed and
    /// its recording sealed as found (a file cut short plays up to its last whole frame).
    case sshRecordingInterrupted = "ssh.recording_interrupted"
    /// An administrator ended a live session.
    case sshSessionKilled = "ssh.session_killed"
    /// A port forwarding (direct-tcpip) channel through the bastion was opened.
    case sshForwardingOpened = "ssh.forwarding_opened"
    /// An administrator started an account's recovery: its passkeys were removed and everything
    /// it held (sessions, tokens, certificates, devices, live SSH sessions) ended at once.
    case userRecoveryStarted = "user.recovery_started"
    /// Repeated anonymous failures (sign-in, host join) from one network, counted in one event
    /// per window instead of one each.
    case failuresAggregated = "audit.failures_aggregated"
}

/// One audited fact: who did what to whom, with what outcome. Written in the same transaction as
/// the state change it describes (see ``Change``); the tamper-evident chaining over these records
/// is the audit log's job.
public struct AuditEvent: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case allowed
        case denied
        case failed
    }

    public var code: AuditCode
    public var time: Date
    /// Who acted: `user:alice`, `admin-socket`, `system`.
    public var actor: String
    /// What was acted on: `invitation:ID`, `key:ssh-user-ca`.
    public var subject: String
    public var outcome: Outcome
    public var reason: String?
    public var requestID: String?
    public var sourceAddress: String?
    /// Extra facts, never secrets.
    public var details: [String: String]

    public init(
        code: AuditCode, time: Date, actor: String, subject: String, outcome: Outcome = .allowed,
        reason: String? = nil, requestID: String? = nil, sourceAddress: String? = nil, details: [String: String] = [:]
    ) {
        self.code = code
        self.time = time
        self.actor = actor
        self.subject = subject
        self.outcome = outcome
        self.reason = reason
        self.requestID = requestID
        self.sourceAddress = sourceAddress
        self.details = details
    }

    /// An event between typed parties: what every service writes.
    public init(
        code: AuditCode, time: Date, actor: AuditParty, subject: AuditParty, outcome: Outcome = .allowed,
        reason: String? = nil, requestID: String? = nil, sourceAddress: String? = nil, details: [String: String] = [:]
    ) {
        self.init(
            code: code, time: time, actor: actor.description, subject: subject.description, outcome: outcome, reason: reason, requestID: requestID,
            sourceAddress: sourceAddress, details: details)
    }

    /// Details as canonical JSON (sorted keys), the form stored.
    public var detailsJSON: String {
        String(decoding: CanonicalJSON.object(self.details), as: UTF8.self)
    }
}

/// The result of a state-changing operation: its value and the audit events that describe it.
/// A store commits a `Change` only together with its events, and a `Change` cannot be built
/// without at least one, so no mutation escapes the log.
public struct Change<Value: Sendable>: Sendable {
    public let value: Value
    public let events: [AuditEvent]

    public init(_ value: Value, event: AuditEvent, _ more: AuditEvent...) {
        self.value = value
        self.events = [event] + more
    }

    public init(_ value: Value, first: AuditEvent, rest: [AuditEvent]) {
        self.value = value
        self.events = [first] + rest
    }
}
