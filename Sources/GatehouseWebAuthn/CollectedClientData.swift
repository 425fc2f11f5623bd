import Foundation
import GatehouseCore

/// The browser's `clientDataJSON` (WebAuthn §5.8.1), parsed from the exact bytes that were
/// hashed into the signature.
public struct CollectedClientData: Sendable, Equatable {
    public static let maxBytes = 16 * 1024

    public let type: String
    public let challenge: [UInt8]
    public let origin: String
    public let crossOrigin: Bool
    public let topOrigin: String?

    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        guard bytes.count <= Self.maxBytes else { throw WebAuthnError(.tooLarge, "clientDataJSON is larger than \(Self.maxBytes) bytes") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw WebAuthnError(.malformed, "clientDataJSON is not a JSON object")
        }
        guard let type = object["type"] as? String else { throw WebAuthnError(.malformed, "clientDataJSON has no type") }
        guard let challengeText = object["challenge"] as? String, let challenge = Base64URL.decode(challengeText) else {
            throw WebAuthnError(.malformed, "clientDataJSON has no base64url challenge")
        }
        guard let origin = object["origin"] as? String else { throw WebAuthnError(.malformed, "clientDataJSON has no origin") }
        if let value = object["crossOrigin"], !(value is Bool) { throw WebAuthnError(.malformed, "clientDataJSON crossOrigin is not a boolean") }
        if let value = object["topOrigin"], !(value is String) { throw WebAuthnError(.malformed, "clientDataJSON topOrigin is not a string") }
        self.type = type
        self.challenge = challenge
        self.origin = origin
        self.crossOrigin = object["crossOrigin"] as? Bool ?? false
        self.topOrigin = object["topOrigin"] as? String
    }
}
