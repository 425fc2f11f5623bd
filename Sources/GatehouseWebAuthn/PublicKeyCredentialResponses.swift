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

    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        let object = try Self.object(bytes)
        self.credentialID = try Self.credentialID(object)
        guard let response = object["response"] as? [String: Any] else { throw WebAuthnError(.malformed, "response is missing") }
        self.clientDataJSON = try Self.bytes(response, "clientDataJSON")
        self.attestationObject = try Self.bytes(response, "attestationObject")
        if let transports = response["transports"] {
            guard let list = transports as? [String], list.count <= 16, list.allSatisfy({ (1...32).contains($0.utf8.count) }) else {
                throw WebAuthnError(.malformed, "response.transports must be a short list of names")
            }
            self.transports = list
        } else {
            self.transports = []
        }
        self.authenticatorAttachment = object["authenticatorAttachment"] as? String
    }

    static func object(_ bytes: [UInt8]) throws(WebAuthnError) -> [String: Any] {
        guard bytes.count <= Self.maxBytes else { throw WebAuthnError(.tooLarge, "credential is larger than \(Self.maxBytes) bytes") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw WebAuthnError(.malformed, "credential is not a JSON object")
        }
        guard object["type"] as? String == "public-key" else { throw WebAuthnError(.malformed, "credential type must be public-key") }
        return object
    }

    /// `id` and `rawId` must both be present and name the same bytes.
    static func credentialID(_ object: [String: Any]) throws(WebAuthnError) -> [UInt8] {
        guard let idText = object["id"] as? String, let id = Base64URL.decode(idText), !id.isEmpty,
              let rawText = object["rawId"] as? String, let raw = Base64URL.decode(rawText), raw == id else {
            throw WebAuthnError(.malformed, "id and rawId must be the same base64url credential ID")
        }
        guard id.count <= AuthenticatorData.maxCredentialIDLength else { throw WebAuthnError(.malformed, "credential ID is longer than 1023 bytes") }
        return id
    }

    static func bytes(_ object: [String: Any], _ key: String) throws(WebAuthnError) -> [UInt8] {
        guard let text = object[key] as? String, let bytes = Base64URL.decode(text) else {
            throw WebAuthnError(.malformed, "response.\(key) must be base64url")
        }
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
        let object = try RegistrationResponse.object(bytes)
        self.credentialID = try RegistrationResponse.credentialID(object)
        guard let response = object["response"] as? [String: Any] else { throw WebAuthnError(.malformed, "response is missing") }
        self.clientDataJSON = try RegistrationResponse.bytes(response, "clientDataJSON")
        self.authenticatorData = try RegistrationResponse.bytes(response, "authenticatorData")
        self.signature = try RegistrationResponse.bytes(response, "signature")
        guard !self.signature.isEmpty, self.signature.count <= 1024 else { throw WebAuthnError(.malformed, "signature must be 1 to 1024 bytes") }
        if let value = response["userHandle"], !(value is NSNull) {
            guard let text = value as? String, let handle = Base64URL.decode(text), (1...64).contains(handle.count) else {
                throw WebAuthnError(.malformed, "response.userHandle must be 1 to 64 bytes of base64url")
            }
            self.userHandle = handle
        } else {
            self.userHandle = nil
        }
    }
}
