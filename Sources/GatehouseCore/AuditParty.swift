/// Who acted, or what was acted on, as the audit log names it: one vocabulary for every
/// service, made only through these constructors, so no call site spells `"user:" + name` by
/// hand and no two spell one party two ways. The text (``description``) is what the canonical
/// audit encoding stores; it never changes for a given party.
public struct AuditParty: Sendable, Hashable, CustomStringConvertible {
    public let description: String

    private init(_ text: String) { self.description = text }

    // MARK: who acts

    /// A person.
    public static func user(_ name: Username) -> AuditParty { AuditParty("user:\(name.rawValue)") }
    /// A person by a name as stored (a record that keeps the name as text).
    public static func user(_ name: String) -> AuditParty { AuditParty("user:\(name)") }
    /// An enrolled host (its agent, or the host as a network peer).
    public static func host(_ name: String) -> AuditParty { AuditParty("host:\(name)") }
    /// A host whose name is not known (a refused join token).
    public static let unknownHost = AuditParty("host:unknown")
    /// An OpenID Connect client.
    public static func client(_ id: String) -> AuditParty { AuditParty("client:\(id)") }
    /// A workload or agent by its SPIFFE ID (a refused mutual-TLS peer).
    public static func workload(_ spiffeID: String) -> AuditParty { AuditParty("spiffe:\(spiffeID)") }
    /// Whoever holds the local admin socket.
    public static let adminSocket = AuditParty("admin-socket")
    /// Gatehouse itself (bootstrap, key generation, superseded links).
    public static let system = AuditParty("system")
    /// A host agent before it has a name (a refused join).
    public static let agent = AuditParty("agent")
    /// A party named by a caller as text (an actor handed through an API that still takes text).
    public static func stored(_ text: String) -> AuditParty { AuditParty(text) }

    // MARK: what is acted on

    /// A sign-in session (by its public id) or a bastion session (by its id).
    public static func session(_ id: String) -> AuditParty { AuditParty("session:\(id)") }
    /// A passkey, by the first 22 characters of its base64url credential ID.
    public static func passkey(_ credentialID: [UInt8]) -> AuditParty { AuditParty("passkey:\(Base64URL.encode(credentialID).prefix(22))") }
    public static func invitation(_ id: String) -> AuditParty { AuditParty("invitation:\(id)") }
    public static func sshCertificate(_ serial: UInt64) -> AuditParty { AuditParty("ssh-cert:\(serial)") }
    /// An X.509 certificate, by serial (hex).
    public static func x509(_ serial: String) -> AuditParty { AuditParty("x509:\(serial)") }
    /// An X.509 authority (root and intermediate), by id.
    public static func pki(_ id: String) -> AuditParty { AuditParty("pki:\(id)") }
    /// Key material: a sealed key's purpose, or a token-signing key's id.
    public static func key(_ name: String) -> AuditParty { AuditParty("key:\(name)") }
    /// An application behind the identity-aware proxy, by its policy name.
    public static func app(_ name: String) -> AuditParty { AuditParty("app:\(name)") }
    /// A person's WireGuard device.
    public static func device(_ id: String) -> AuditParty { AuditParty("device:\(id)") }
    /// One applied policy version.
    public static func policy(version: Int64) -> AuditParty { AuditParty("policy:v\(version)") }
    /// The policy as a whole (a refused apply).
    public static let policy = AuditParty("policy")
    /// The mutual-TLS listener.
    public static let mtls = AuditParty("mtls")
    /// This installation (its first start).
    public static let installation = AuditParty("installation")
    /// No party could be named (a sign-in with an unknown passkey).
    public static let unknown = AuditParty("unknown")
}
