public import Crypto
public import GatehouseCore
import SwiftASN1
public import X509

/// Key algorithms the authority signs with and accepts in requests.
public enum PKIKeyAlgorithm: String, Sendable, CaseIterable, Codable {
    case p256
    case ed25519

    public var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .p256: .ecdsaWithSHA256
        case .ed25519: .ed25519
        }
    }

    public var keyAlgorithm: KeyAlgorithm {
        switch self {
        case .p256: .p256
        case .ed25519: .ed25519
        }
    }

    public init(_ key: KeyAlgorithm) {
        switch key {
        case .p256: self = .p256
        case .ed25519: self = .ed25519
        }
    }
}

extension SigningKey {
    /// This key as swift-certificates' private key type.
    public var certificatePrivateKey: Certificate.PrivateKey {
        switch self {
        case .p256(let key): Certificate.PrivateKey(key)
        case .ed25519(let key): Certificate.PrivateKey(key)
        }
    }

    public var pkiAlgorithm: PKIKeyAlgorithm { PKIKeyAlgorithm(self.algorithm) }

    /// PKCS#8 PEM for the key file a host or an offline root keeps.
    public var pkcs8PEM: String {
        switch self {
        case .p256(let key): key.pemRepresentation
        case .ed25519(let key): PEM.encode(Self.ed25519PKCS8Prefix + Array(key.rawRepresentation), label: "PRIVATE KEY")
        }
    }

    /// Reads a PKCS#8 PEM private key (P-256 or Ed25519) as written by ``pkcs8PEM`` or openssl.
    public init(pkcs8PEM text: String) throws(GatehouseError) {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) {
            self = .p256(key)
            return
        }
        let der = try PEM.decode(text, label: "PRIVATE KEY", limit: 16 * 1024)
        guard der.count == Self.ed25519PKCS8Prefix.count + 32, Array(der.prefix(Self.ed25519PKCS8Prefix.count)) == Self.ed25519PKCS8Prefix,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
        else {
            throw GatehouseError(.invalidInput, "the key is neither a P-256 nor an Ed25519 PKCS#8 private key")
        }
        self = .ed25519(key)
    }

    /// RFC 8410 PKCS#8 framing of a 32-byte Ed25519 seed.
    static let ed25519PKCS8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
}

extension Certificate.PublicKey {
    /// The algorithm of a key we accept, or nil for anything else (RSA, P-384, ...).
    public var pkiAlgorithm: PKIKeyAlgorithm? {
        if P256.Signing.PublicKey(self) != nil { return .p256 }
        if Curve25519.Signing.PublicKey(self) != nil { return .ed25519 }
        return nil
    }

    /// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
    public var keyIdentifier: [UInt8] { Array(Insecure.SHA1.hash(data: Array(self.subjectPublicKeyInfoBytes))) }

    /// SHA-256 of the DER SubjectPublicKeyInfo, hex: how the inventory names a key.
    public var fingerprint: String {
        let spki = (try? DERBytes.of(self)) ?? Array(self.subjectPublicKeyInfoBytes)
        return Hex.encode(SHA256.hash(data: spki))
    }
}
