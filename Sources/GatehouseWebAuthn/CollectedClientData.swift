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

    struct Wire: Decodable {
        let type: String
        let challenge: String
        let origin: String
        let crossOrigin: Bool?
        let topOrigin: String?
    }

    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        guard bytes.count <= Self.maxBytes else { throw WebAuthnError(.tooLarge, "clientDataJSON is larger than \(Self.maxBytes) bytes") }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw WebAuthnError(.malformed, "clientDataJSON must be a JSON object with string type, challenge and origin")
        }
        guard let challenge = Base64URL.decode(wire.challenge) else { throw WebAuthnError(.malformed, "clientDataJSON challenge is not base64url") }
        self.type = wire.type
        self.challenge = challenge
        self.origin = wire.origin
        self.crossOrigin = wire.crossOrigin ?? false
        self.topOrigin = wire.topOrigin
    }
}
