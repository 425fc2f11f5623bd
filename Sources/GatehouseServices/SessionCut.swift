public import Foundation

/// What ends with a sign-in session (DESIGN.md invariant 10): the session, every OIDC grant
/// opened from it (and with them every access and refresh token, the CLI's included), and every
/// SSH certificate, X.509 certificate and WireGuard device issued with those grants' tokens.
/// Signing out, revoking a session, removing the passkey it was opened with and RP-initiated
/// logout all end a session through here, inside the transaction that audits it.
public enum SessionCut {
    public struct Ended: Sendable, Equatable {
        public var sessions = 0
        public var grants = 0
        public var issued = IssuedUnderGrants()

        /// As audit details: `sessions_ended`, `grants_revoked` and the issued counts.
        public var details: [String: String] {
            self.issued.details.merging(["sessions_ended": String(self.sessions), "grants_revoked": String(self.grants)]) { a, _ in a }
        }
    }

    /// Ends the sessions with these token hashes and what derives from them. A session that had
    /// already ended (idle, expired or revoked) still takes its grants with it: the CLI's refresh
    /// token outlives the browser session that approved it, but not its revocation.
    public static func end(tokenHashes: [String], reason: String, in tx: any StoreWriter, at now: Date) async throws -> Ended {
        var ended = Ended()
        for hash in Set(tokenHashes).sorted() {
            if try await tx.revokeSession(tokenHash: hash, at: now) { ended.sessions += 1 }
            let grants = try await tx.revokeOIDCGrants(sessionHash: hash, reason: reason, at: now)
            ended.grants += grants.count
            guard !grants.isEmpty else { continue }
            let issued = try await tx.revokeIssued(grantIDs: grants, at: now)
            ended.issued.sshCertificates += issued.sshCertificates
            ended.issued.x509Certificates += issued.x509Certificates
            ended.issued.networkDevices += issued.networkDevices
        }
        return ended
    }
}
