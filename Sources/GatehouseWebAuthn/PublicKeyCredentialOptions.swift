import GatehouseCore

/// `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3 §5.1.8): what the browser passes
/// to `PublicKeyCredential.parseCreationOptionsFromJSON()`. Binary values are base64url.
public struct CreationOptions: Codable, Sendable, Equatable {
    public struct Entity: Codable, Sendable, Equatable {
        public var id: String?
        public var name: String
        public var displayName: String?
    }

    public struct Parameter: Codable, Sendable, Equatable {
        public var type = "public-key"
        public var alg: Int64
    }

    public struct Descriptor: Codable, Sendable, Equatable {
        public var type = "public-key"
        public var id: String
        public var transports: [String]?
    }

    public struct Selection: Codable, Sendable, Equatable {
        public var residentKey = "required"
        public var requireResidentKey = true
        public var userVerification = "required"
    }

    public var rp: Entity
    public var user: Entity
    public var challenge: String
    public var pubKeyCredParams: [Parameter]
    public var timeout: Int
    public var excludeCredentials: [Descriptor]
    public var authenticatorSelection: Selection
    public var attestation: String

    /// Options for a discoverable passkey with user verification and no attestation.
    public init(rp: RelyingParty, userHandle: [UInt8], userName: String, displayName: String, challenge: [UInt8], exclude: [[UInt8]] = []) {
        self.rp = Entity(id: rp.id, name: rp.name, displayName: nil)
        self.user = Entity(id: Base64URL.encode(userHandle), name: userName, displayName: displayName)
        self.challenge = Base64URL.encode(challenge)
        self.pubKeyCredParams = rp.algorithms.map { Parameter(alg: $0.rawValue) }
        self.timeout = 300_000
        self.excludeCredentials = exclude.map { Descriptor(id: Base64URL.encode($0), transports: nil) }
        self.authenticatorSelection = Selection()
        self.attestation = rp.attestation.conveyance
    }
}

/// `PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3 §5.1.8) for sign-in.
public struct RequestOptions: Codable, Sendable, Equatable {
    public var challenge: String
    public var rpId: String
    public var timeout: Int
    public var userVerification: String
    /// Empty for discoverable credentials (the authenticator offers its passkeys).
    public var allowCredentials: [CreationOptions.Descriptor]

    public init(rp: RelyingParty, challenge: [UInt8], allow: [[UInt8]]) {
        self.challenge = Base64URL.encode(challenge)
        self.rpId = rp.id
        self.timeout = 300_000
        self.userVerification = "required"
        self.allowCredentials = allow.map { CreationOptions.Descriptor(id: Base64URL.encode($0), transports: nil) }
    }
}
