public import X509

/// Which authenticators may register. `.anyAuthenticator` asks for no attestation (the
/// default: passkeys that sync between devices cannot be attested). `.attested` is the
/// hardware-only mode: every registration must carry an attestation certificate chain that
/// ends at one of `trustAnchors`, from an authenticator model (AAGUID) on the allowlist.
public struct AttestationPolicy: Sendable {
    public enum Mode: Sendable, Equatable { case anyAuthenticator, attested }

    public var mode: Mode
    public var trustAnchors: [Certificate]
    /// Allowed authenticator models; nil allows any model whose chain verifies.
    public var allowedAAGUIDs: Set<[UInt8]>?

    public init(mode: Mode, trustAnchors: [Certificate] = [], allowedAAGUIDs: Set<[UInt8]>? = nil) {
        self.mode = mode
        self.trustAnchors = trustAnchors
        self.allowedAAGUIDs = allowedAAGUIDs
    }

    public static let anyAuthenticator = AttestationPolicy(mode: .anyAuthenticator)

    /// What the creation options ask for.
    var conveyance: String { self.mode == .attested ? "direct" : "none" }
}
