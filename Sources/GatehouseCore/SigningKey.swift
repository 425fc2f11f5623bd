public import Crypto
import Foundation

/// An unsealed private key, held only in memory.
public enum SigningKey: Sendable {
    case ed25519(Curve25519.Signing.PrivateKey)
    case p256(P256.Signing.PrivateKey)

    /// Generates a key for `algorithm` from `random` (so tests can pin it).
    public static func generate(_ algorithm: KeyAlgorithm, using random: some RandomSource) -> SigningKey {
        switch algorithm {
        case .ed25519:
            // Any 32 bytes are a valid Ed25519 seed.
            return .ed25519(try! Curve25519.Signing.PrivateKey(rawRepresentation: random.bytes(32)))
        case .p256:
            // A P-256 scalar must be in [1, n-1]; a random 32-byte string misses that with probability ~2^-32.
            while true {
                if let key = try? P256.Signing.PrivateKey(rawRepresentation: random.bytes(32)) {
                    return .p256(key)
                }
            }
        }
    }

    /// Rebuilds a key from its raw private bytes, as sealed in the store.
    public init(algorithm: KeyAlgorithm, rawPrivate: [UInt8]) throws(GatehouseError) {
        do {
            switch algorithm {
            case .ed25519: self = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: rawPrivate))
            case .p256: self = .p256(try P256.Signing.PrivateKey(rawRepresentation: rawPrivate))
            }
        } catch {
            throw GatehouseError(.keyMaterialCorrupted, "stored \(algorithm.rawValue) private key is malformed")
        }
    }

    public var algorithm: KeyAlgorithm {
        switch self {
        case .ed25519: .ed25519
        case .p256: .p256
        }
    }

    /// Raw private bytes (Ed25519 seed, P-256 scalar). Only ever passed to ``KeySealer``.
    public var rawPrivate: [UInt8] {
        switch self {
        case .ed25519(let key): Array(key.rawRepresentation)
        case .p256(let key): Array(key.rawRepresentation)
        }
    }

    /// Public key bytes: Ed25519 raw 32 bytes; P-256 uncompressed X9.63 point (65 bytes).
    public var publicKeyBytes: [UInt8] {
        switch self {
        case .ed25519(let key): Array(key.publicKey.rawRepresentation)
        case .p256(let key): Array(key.publicKey.x963Representation)
        }
    }

    /// SHA-256 of the public key bytes, hex: how operators and logs name a key.
    public var fingerprint: String { Hex.encode(SHA256.hash(data: self.publicKeyBytes)) }
}
