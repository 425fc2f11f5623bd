public import Crypto
import Foundation

/// The 256-bit key that every other secret at rest is sealed under. It lives in a file of its own
/// (`root.key`, 0600), never in the store, so a copy of the database alone reveals no key material.
public struct RootKey: Sendable {
    /// The exact file length: 32 raw bytes, nothing else.
    public static let byteCount = 32

    let key: SymmetricKey

    /// Accepts exactly 32 bytes; anything else is an error (a truncated or padded file is not a key).
    public init(bytes: [UInt8]) throws(GatehouseError) {
        guard bytes.count == Self.byteCount else {
            throw GatehouseError(.rootKeyInvalid, "root key must be exactly \(Self.byteCount) bytes, found \(bytes.count)")
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A fresh key from `random`.
    public static func generate(using random: some RandomSource) -> (RootKey, [UInt8]) {
        let bytes = random.bytes(Self.byteCount)
        // 32 bytes always validate.
        return (try! RootKey(bytes: bytes), bytes)
    }

    /// A secret for one purpose, derived from the root key: HMAC-SHA256(root key, label). The
    /// same on every replica sharing the root key and across restarts; never stored.
    public func derive(label: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(label.utf8), using: self.key))
    }

    /// A public check value: HMAC-SHA256(root key, label). Stored beside the sealed keys so that
    /// starting with the wrong root key is told apart from a corrupted key blob.
    public var checkValue: String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("gatehouse/root-key-check/v1".utf8), using: self.key)
        return Hex.encode(mac)
    }
}
