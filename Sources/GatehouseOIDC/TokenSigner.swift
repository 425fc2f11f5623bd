public import Crypto
import Foundation
public import GatehouseCore

/// A private key that signs JWS compact tokens, with the key id (`kid`) every token names.
public struct TokenSigner: Sendable {
    public let key: SigningKey
    public let jwk: JWK

    public init(key: SigningKey) {
        self.key = key
        self.jwk = JWK(publicKeyOf: key)
    }

    public var kid: String { self.jwk.kid ?? self.jwk.thumbprint }
    public var algorithm: JWSAlgorithm { self.key.algorithm == .p256 ? .es256 : .edDSA }

    /// Signs `payload` (JSON bytes) as a compact JWS whose header names `alg`, `kid` and `typ`.
    public func sign(payload: [UInt8], type: String = "JWT") -> String {
        var header: [UInt8] = []
        header += Array("{\"alg\":".utf8)
        CanonicalJSON.appendString(self.algorithm.rawValue, to: &header)
        header += Array(",\"kid\":".utf8)
        CanonicalJSON.appendString(self.kid, to: &header)
        header += Array(",\"typ\":".utf8)
        CanonicalJSON.appendString(type, to: &header)
        header += Array("}".utf8)
        return self.signCompact(protectedHeader: header, payload: payload)
    }

    /// Signs exactly the given header and payload bytes (the primitive under ``sign(payload:type:)``,
    /// public so that the RFC 8037 test vectors can pin its output).
    public func signCompact(protectedHeader: [UInt8], payload: [UInt8]) -> String {
        let input = Array("\(Base64URL.encode(protectedHeader)).\(Base64URL.encode(payload))".utf8)
        let signature: [UInt8]
        switch self.key {
        case .p256(let k): signature = Array((try! k.signature(for: input)).rawRepresentation)  // signing with a valid key does not fail
        case .ed25519(let k): signature = Array(try! k.signature(for: input))
        }
        return String(decoding: input, as: UTF8.self) + "." + Base64URL.encode(signature)
    }
}
