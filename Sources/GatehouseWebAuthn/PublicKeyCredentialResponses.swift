import Foundation
import GatehouseCore

/// `RegistrationResponseJSON` (WebAuthn Level 3 §5.1.8): what `navigator.credentials.create()`
/// returns, as the browser's `toJSON()` writes it. Parsed strictly and bounded; unknown
/// top-level fields are ignored only where the specification says clients may add them.
public struct RegistrationResponse: Sendable, Equatable {
    public static let maxBytes = 64 * 1024

    public let credentialID: [UInt8]
    public let clientDataJSON: [UInt8]
    public let attestationObject: [UInt8]
    public let transports: [String]
    public let authenticatorAttachment: String?

    /// The wire shape. Decodable (JSONDecoder is several times faster than JSONSerialization
    /// here, and assertions sit on the sign-in hot path); fields a client may add are ignored.
    struct Wire: Decodable {
        struct Response: Decodable {
            let clientDataJSON: String
            let attestationObject: String?
            let authenticatorData: String?
            let signature: String?
            let userHandle: String?
            let transports: [String]?
        }
        let id: String
        let rawId: String
        let type: String
        let response: Response
        let authenticatorAttachment: String?
    }

    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        let wire = try Self.wire(bytes)
        self.credentialID = try Self.credentialID(wire)
        self.clientDataJSON = try Self.bytes(wire.response.clientDataJSON, "clientDataJSON")
        self.attestationObject = try Self.bytes(wire.response.attestationObject, "attestationObject")
        if let list = wire.response.transports {
            guard list.count <= 16, list.allSatisfy({ (1...32).contains($0.utf8.count) }) else {
                throw WebAuthnError(.malformed, "response.transports must be a short list of names")
            }
            self.transports = list
        } else {
            self.transports = []
        }
        self.authenticatorAttachment = wire.authenticatorAttachment
    }

    static func wire(_ bytes: [UInt8]) throws(WebAuthnError) -> Wire {
        guard bytes.count <= Self.maxBytes else { throw WebAuthnError(.tooLarge, "credential is larger than \(Self.maxBytes) bytes") }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw WebAuthnError(.malformed, "credential is not the JSON a browser returns (id, rawId, type, response)")
        }
        guard wire.type == "public-key" else { throw WebAuthnError(.malformed, "credential type must be public-key") }
        return wire
    }

    /// `id` and `rawId` must both be present and name the same bytes.
    static func credentialID(_ wire: Wire) throws(WebAuthnError) -> [UInt8] {
        guard let id = Base64URL.decode(wire.id), !id.isEmpty, let raw = Base64URL.decode(wire.rawId), raw == id else {
            throw WebAuthnError(.malformed, "id and rawId must be the same base64url credential ID")
        }
        guard id.count <= AuthenticatorData.maxCredentialIDLength else { throw WebAuthnError(.malformed, "credential ID is longer than 1023 bytes") }
        return id
    }

    static func bytes(_ text: String?, _ key: String) throws(WebAuthnError) -> [UInt8] {
        guard let text, let bytes = Base64URL.decode(text) else { throw WebAuthnError(.malformed, "response.\(key) must be base64url") }
        return bytes
    }
}

/// `AuthenticationResponseJSON` (WebAuthn Level 3 §5.1.8): what `navigator.credentials.get()`
/// returns.
public struct AuthenticationResponse: Sendable, Equatable {
    public let credentialID: [UInt8]
    public let clientDataJSON: [UInt8]
    public let authenticatorData: [UInt8]
    public let signature: [UInt8]
    /// The user handle a discoverable credential returns; nil for non-discoverable ones.
    public let userHandle: [UInt8]?

    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        let wire = try RegistrationResponse.wire(bytes)
        self.credentialID = try RegistrationResponse.credentialID(wire)
        self.clientDataJSON = try RegistrationResponse.bytes(wire.response.clientDataJSON, "clientDataJSON")
        self.authenticatorData = try RegistrationResponse.bytes(wire.response.authenticatorData, "authenticatorData")
        self.signature = try RegistrationResponse.bytes(wire.response.signature, "signature")
        guard !self.signature.isEmpty, self.signature.count <= 1024 else { throw WebAuthnError(.malformed, "signature must be 1 to 1024 bytes") }
        if let text = wire.response.userHandle {
            guard let handle = Base64URL.decode(text), (1...64).contains(handle.count) else {
                throw WebAuthnError(.malformed, "response.userHandle must be 1 to 64 bytes of base64url")
            }
            self.userHandle = handle
        } else {
            self.userHandle = nil
        }
    }
}
