import Crypto
import _CryptoExtras

/// A credential public key in COSE form (RFC 9052/9053), restricted to the algorithms Gatehouse
/// accepts: ES256 (P-256 with SHA-256), EdDSA (Ed25519) and RS256 (RSASSA-PKCS1-v1_5 with
/// SHA-256, 2048 bits or more). Anything else (other curves, missing or mismatched parameters)
/// is refused when the key is parsed, not when it is first used.
public struct COSEKey: Sendable, Equatable {
    public enum Algorithm: Int64, Sendable, CaseIterable {
        case es256 = -7
        case edDSA = -8
        case rs256 = -257

        public var name: String {
            switch self {
            case .es256: return "ES256"
            case .edDSA: return "EdDSA"
            case .rs256: return "RS256"
            }
        }
    }

    enum Key: @unchecked Sendable {
        // @unchecked: the swift-crypto public key types are immutable values.
        case p256(P256.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    public let algorithm: Algorithm
    /// The COSE encoding as received, which is what a credential record stores.
    public let encoded: [UInt8]
    let key: Key

    public static func == (a: Self, b: Self) -> Bool { a.algorithm == b.algorithm && a.encoded == b.encoded }

    /// Parses a COSE_Key that was already decoded from CBOR; `encoded` is its original bytes.
    public init(_ value: CBORValue, encoded: [UInt8]) throws(WebAuthnError) {
        guard value.mapPairs != nil else { throw WebAuthnError(.malformed, "COSE key is not a map") }
        guard let kty = value[int: 1]?.int else { throw WebAuthnError(.malformed, "COSE key has no kty") }
        guard let algValue = value[int: 3]?.int else { throw WebAuthnError(.malformed, "COSE key has no alg") }
        guard let alg = Algorithm(rawValue: algValue) else {
            throw WebAuthnError(.unsupportedAlgorithm, "COSE algorithm \(algValue) is not accepted (ES256, EdDSA, RS256 are)")
        }
        switch (alg, kty) {
        case (.es256, 2):
            guard value[int: -1]?.int == 1 else { throw WebAuthnError(.unsupportedAlgorithm, "ES256 key is not on P-256") }
            guard let x = value[int: -2]?.byteString, let y = value[int: -3]?.byteString, x.count == 32, y.count == 32 else {
                throw WebAuthnError(.malformed, "ES256 key needs 32-byte x and y coordinates")
            }
            do {
                self.key = .p256(try P256.Signing.PublicKey(x963Representation: [0x04] + x + y))
            } catch {
                throw WebAuthnError(.malformed, "ES256 key is not a point on P-256")
            }
        case (.edDSA, 1):
            guard value[int: -1]?.int == 6 else { throw WebAuthnError(.unsupportedAlgorithm, "EdDSA key is not Ed25519") }
            guard let x = value[int: -2]?.byteString, x.count == 32 else { throw WebAuthnError(.malformed, "Ed25519 key needs a 32-byte x") }
            do {
                self.key = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            } catch {
                throw WebAuthnError(.malformed, "Ed25519 key is invalid")
            }
        case (.rs256, 3):
            guard let n = value[int: -1]?.byteString, let e = value[int: -2]?.byteString, !n.isEmpty, !e.isEmpty, e.count <= 8 else {
                throw WebAuthnError(.malformed, "RS256 key needs n and e")
            }
            do {
                self.key = .rsa(try _RSA.Signing.PublicKey(n: n, e: e))
            } catch {
                throw WebAuthnError(.unsupportedAlgorithm, "RS256 key is invalid or shorter than 2048 bits")
            }
        default:
            throw WebAuthnError(.malformed, "COSE key type \(kty) does not match algorithm \(alg.name)")
        }
        self.algorithm = alg
        self.encoded = encoded
    }

    /// Parses COSE key bytes (as stored with a credential).
    public init(encoded: [UInt8]) throws(WebAuthnError) {
        try self.init(try CBORDecoder().decode(encoded), encoded: encoded)
    }

    /// Checks `signature` over `message`: a DER ECDSA signature for ES256, 64 raw bytes for
    /// EdDSA, a PKCS#1 v1.5 signature for RS256.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        switch self.key {
        case .p256(let key):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: message)
        case .ed25519(let key):
            return signature.count == 64 && key.isValidSignature(signature, for: message)
        case .rsa(let key):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(sig, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        }
    }
}
