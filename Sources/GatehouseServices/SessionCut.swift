public import Foundation
import GatehouseCore

/// What ends with a sign-in session (a credential dies with the identity that obtained it; see
/// docs/identity.md): the session, every OIDC grant
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
        // Ordered with issuance, which checks its grant under the same lock (PostgreSQL; SQLite
        // writes one transaction at a time): a credential is either revoked here or refused there.
        try await tx.lockAccountChanges()
        var ended = Ended()
        for hash in Set(tokenHashes).sorted() {
            if try await tx.revokeSession(tokenHash: hash, at: now) { ended.sessions += 1 }
            // Every grant of the session, also one revoked before (a revoked refresh token, a
            // replayed code): what was issued under it must not outlive the session either.
            let grants = try await tx.revokeOIDCGrants(sessionHash: hash, reason: reason, at: now)
            ended.grants += grants.revoked
            guard !grants.all.isEmpty else { continue }
            let issued = try await tx.revokeIssued(grantIDs: grants.all, at: now)
            ended.issued.sshCertificates += issued.sshCertificates
            ended.issued.x509Certificates += issued.x509Certificates
            ended.issued.networkDevices += issued.networkDevices
        }
        return ended
    }

    /// Revokes one grant and everything issued under it (a revoked refresh token, a replayed
    /// code or refresh token, a policy that no longer allows the client).
    public static func revokeGrant(id: String, reason: String, in tx: any StoreWriter, at now: Date) async throws {
        _ = try await tx.revokeOIDCGrant(id: id, reason: reason, at: now)
        _ = try await tx.revokeIssued(grantIDs: [id], at: now)
    }

    /// Refuses issuance under a grant that is no longer live: checked inside the issuing
    /// transaction, after ``StoreWriter/lockAccountChanges()``, so a request authenticated just
    /// before its session was cut gets nothing.
    public static func requireLiveGrant(_ grantID: String?, in tx: any StoreWriter, at now: Date) async throws {
        guard let grantID else { return }
        guard let grant = try await tx.oidcGrant(id: grantID), grant.isLive(at: now) else {
            throw GatehouseError(.unauthenticated, "this sign-in has ended; run gatehouse login again")
        }
    }
}
