public import Crypto
public import Foundation

/// Seals and opens key material under the ``RootKey`` with AES-256-GCM.
///
/// Blob layout (version 1), pinned by a golden test:
/// `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`, with associated data
/// `"gatehouse/sealed-key/v1/" + purpose`. Binding the purpose means a blob moved to another
/// purpose's row (say, the audit key swapped for the SSH CA key) fails to open.
public struct KeySealer: Sendable {
    public static let version: UInt8 = 1
    static let nonceLength = 12
    static let tagLength = 16

    private let rootKey: RootKey

    public init(rootKey: RootKey) { self.rootKey = rootKey }

    public func seal(_ plaintext: [UInt8], purpose: KeyPurpose, random: some RandomSource) -> [UInt8] {
        let nonce = random.bytes(Self.nonceLength)
        // A 12-byte nonce and a 32-byte key are always accepted, so sealing cannot fail.
        let (ciphertext, tag) = try! Self.aeadSeal(key: self.rootKey.key, nonce: nonce, plaintext: plaintext, aad: Self.associatedData(purpose))
        return [Self.version] + nonce + ciphertext + tag
    }

    public func open(_ blob: [UInt8], purpose: KeyPurpose) throws(GatehouseError) -> [UInt8] {
        guard blob.count >= 1 + Self.nonceLength + Self.tagLength, blob[0] == Self.version else {
            throw GatehouseError(.keyMaterialCorrupted, "sealed \(purpose.rawValue) key is corrupted (bad header or length)")
        }
        let nonce = blob[1..<(1 + Self.nonceLength)]
        let ciphertext = blob[(1 + Self.nonceLength)..<(blob.count - Self.tagLength)]
        let tag = blob[(blob.count - Self.tagLength)...]
        do {
            return try Self.aeadOpen(key: self.rootKey.key, nonce: nonce, ciphertext: ciphertext, tag: tag, aad: Self.associatedData(purpose))
        } catch {
            throw GatehouseError(.keyMaterialCorrupted, "sealed \(purpose.rawValue) key does not open under this root key (corrupted or tampered)")
        }
    }

    /// The AEAD primitive (AES-GCM, 96-bit nonce, 128-bit tag), exposed to the package so the
    /// Wycheproof vectors exercise exactly the calls sealing makes.
    package static func aeadSeal(key: SymmetricKey, nonce: some DataProtocol, plaintext: some DataProtocol, aad: some DataProtocol) throws -> (
        ciphertext: [UInt8], tag: [UInt8]
    ) {
        let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
        return (Array(box.ciphertext), Array(box.tag))
    }

    package static func aeadOpen(
        key: SymmetricKey, nonce: some DataProtocol, ciphertext: some DataProtocol, tag: some DataProtocol, aad: some DataProtocol
    ) throws -> [UInt8] {
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
        return Array(try AES.GCM.open(box, using: key, authenticating: aad))
    }

    static func associatedData(_ purpose: KeyPurpose) -> [UInt8] {
        Array("gatehouse/sealed-key/v1/\(purpose.rawValue)".utf8)
    }
}
