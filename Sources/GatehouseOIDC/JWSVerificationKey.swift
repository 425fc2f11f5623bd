public import Crypto
import Foundation

/// A public key that checks JWS signatures of exactly one algorithm.
public enum JWSVerificationKey: Sendable {
    case p256(P256.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    public var algorithm: JWSAlgorithm {
        switch self {
        case .p256: .es256
        case .ed25519: .edDSA
        }
    }

    /// Checks a JWS signature: ES256 is the 64-byte R || S form of RFC 7518 §3.4, not DER.
    public func isValidSignature(_ signature: [UInt8], for input: [UInt8]) -> Bool {
        switch self {
        case .p256(let key):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: input)
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: input)
        }
    }
}
