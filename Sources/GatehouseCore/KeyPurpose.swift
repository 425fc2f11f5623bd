/// What a piece of key material is for. Raw values are stored and bound into sealed blobs:
/// they never change meaning.
public enum KeyPurpose: String, Sendable, Hashable, CaseIterable, Codable {
    /// Signs OIDC ID tokens and JWT access tokens (ES256).
    case tokenSigning = "token-signing"
    /// Signs OpenSSH user certificates.
    case sshUserCA = "ssh-user-ca"
    /// Signs OpenSSH host certificates.
    case sshHostCA = "ssh-host-ca"
    /// The X.509 authority's root key (P-256).
    case x509Root = "x509-root"
    /// Signs audit-log checkpoints (Ed25519, C2SP signed-note).
    case auditSigning = "audit-signing"
    /// The X.509 authority's online intermediate. Not in the key ring: it is sealed with its
    /// certificate in the authority's own record, so it can be replaced (rotation, an
    /// intermediate signed by an offline root).
    case x509Intermediate = "x509-intermediate"
    /// A session recording's own data key (AES-256-GCM), one per recording, sealed into the
    /// recording file's preamble. Not in the key ring.
    case sessionRecording = "session-recording"
    /// The SSH bastion's host key (Ed25519), which clients pin in known_hosts.
    case sshBastionHost = "ssh-bastion-host"

    /// Whether the key ring holds (and the bootstrap generates) a key of this purpose.
    public var isInKeyRing: Bool { self != .x509Intermediate && self != .sessionRecording }

    /// The algorithm each purpose uses.
    public var algorithm: KeyAlgorithm {
        switch self {
        case .tokenSigning, .x509Root, .x509Intermediate: .p256
        case .sessionRecording: .ed25519  // not a signing key; never generated as one
        case .sshUserCA, .sshHostCA, .auditSigning, .sshBastionHost: .ed25519
        }
    }
}

/// Signature algorithms for Gatehouse's own keys. Raw values are stored.
public enum KeyAlgorithm: String, Sendable, Hashable, Codable {
    case ed25519
    case p256 = "ecdsa-p256"
}
