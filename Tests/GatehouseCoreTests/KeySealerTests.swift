import Crypto
import Foundation
import GatehouseCore
import Testing

@Suite("Key sealing")
struct KeySealerTests {
    let rootKey = try! RootKey(bytes: Array(0..<32))

    @Test func roundTripsAndBindsThePurpose() throws {
        let sealer = KeySealer(rootKey: self.rootKey)
        let secret: [UInt8] = Array("private key bytes".utf8)
        let blob = sealer.seal(secret, purpose: .sshUserCA, random: SystemRandomSource())
        #expect(try sealer.open(blob, purpose: .sshUserCA) == secret)
        // Moved to another purpose's row, it does not open.
        #expect(throws: GatehouseError(.keyMaterialCorrupted, "sealed ssh-host-ca key does not open under this root key (corrupted or tampered)")) {
            try sealer.open(blob, purpose: .sshHostCA)
        }
    }

    @Test func refusesWrongKeyTamperingAndTruncation() throws {
        let sealer = KeySealer(rootKey: self.rootKey)
        let blob = sealer.seal(Array(repeating: 7, count: 32), purpose: .auditSigning, random: SystemRandomSource())
        let other = KeySealer(rootKey: try RootKey(bytes: Array(repeating: 9, count: 32)))
        #expect(throws: GatehouseError.self) { try other.open(blob, purpose: .auditSigning) }
        for index in [0, 1, 13, blob.count - 1] {
            var tampered = blob
            tampered[index] ^= 0x01
            #expect(throws: GatehouseError.self) { try sealer.open(tampered, purpose: .auditSigning) }
        }
        for length in [0, 1, 12, 28, blob.count - 1] {
            #expect(throws: GatehouseError.self) { try sealer.open(Array(blob.prefix(length)), purpose: .auditSigning) }
        }
    }

    /// Pins the sealed-blob layout: version byte, nonce, ciphertext, tag, with the purpose as AAD.
    /// The golden value was checked independently with Python's `cryptography` AESGCM
    /// (nonce = bytes 1..13, AAD = "gatehouse/sealed-key/v1/token-signing").
    @Test func goldenBlob() throws {
        let sealer = KeySealer(rootKey: self.rootKey)
        let blob = sealer.seal(Array("gatehouse".utf8), purpose: .tokenSigning, random: SeededRandomSource(seed: 1))
        #expect(Hex.encode(blob) == Self.golden)
        #expect(try sealer.open(blob, purpose: .tokenSigning) == Array("gatehouse".utf8))
    }

    static let golden = "01c15c0289ec2d0a9167ec8e65e45769ddd5af84d0135eb60a4f87bc2a98d814948903d16360"

    @Test func rootKeyMustBeExactly32Bytes() {
        for count in [0, 16, 31, 33, 64] {
            #expect(throws: GatehouseError.self) { try RootKey(bytes: Array(repeating: 1, count: count)) }
        }
        #expect(self.rootKey.checkValue != (try! RootKey(bytes: Array(repeating: 1, count: 32))).checkValue)
    }

    @Test func generatedKeysRoundTripThroughRawBytes() throws {
        for algorithm in [KeyAlgorithm.ed25519, .p256] {
            let key = SigningKey.generate(algorithm, using: SeededRandomSource(seed: 7))
            let again = try SigningKey(algorithm: algorithm, rawPrivate: key.rawPrivate)
            #expect(again.publicKeyBytes == key.publicKeyBytes)
            #expect(key.fingerprint.count == 64)
        }
        #expect(throws: GatehouseError.self) { try SigningKey(algorithm: .p256, rawPrivate: Array(repeating: 0, count: 32)) }
        #expect(throws: GatehouseError.self) { try SigningKey(algorithm: .ed25519, rawPrivate: [1, 2, 3]) }
    }
}

/// Project Wycheproof's AES-GCM vectors against the exact primitive calls that sealing makes.
@Suite("Wycheproof AES-GCM")
struct WycheproofAESGCMTests {
    struct File: Decodable {
        struct Group: Decodable {
            let ivSize: Int
            let keySize: Int
            let tagSize: Int
            let tests: [Case]
        }
        struct Case: Decodable {
            let tcId: Int
            let key: String
            let iv: String
            let aad: String
            let msg: String
            let ct: String
            let tag: String
            let result: String
        }
        let testGroups: [Group]
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let hi = iterator.next(), let lo = iterator.next() {
            out.append(UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16)!)
        }
        return out
    }

    @Test func vectors() throws {
        let url = try #require(Bundle.module.url(forResource: "aes_gcm_test", withExtension: "json", subdirectory: "Resources/wycheproof"))
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        var passed = 0
        var unsupported = 0
        for group in file.testGroups {
            // Sealing uses 96-bit nonces and 128-bit tags only; other parameters are unsupported by design.
            guard group.ivSize == 96, group.tagSize == 128 else {
                unsupported += group.tests.count
                continue
            }
            for test in group.tests {
                let key = SymmetricKey(data: Self.bytes(test.key))
                let iv = Self.bytes(test.iv)
                let aad = Self.bytes(test.aad)
                let msg = Self.bytes(test.msg)
                let ct = Self.bytes(test.ct)
                let tag = Self.bytes(test.tag)
                let opened = try? KeySealer.aeadOpen(key: key, nonce: iv, ciphertext: ct, tag: tag, aad: aad)
                switch test.result {
                case "valid":
                    #expect(opened == msg, "tcId \(test.tcId) should open")
                    let sealed = try KeySealer.aeadSeal(key: key, nonce: iv, plaintext: msg, aad: aad)
                    #expect(sealed.ciphertext == ct && sealed.tag == tag, "tcId \(test.tcId) should seal to the vector")
                case "invalid":
                    #expect(opened == nil, "tcId \(test.tcId) must be rejected")
                default:
                    break  // no "acceptable" cases for AES-GCM in this file
                }
                passed += 1
            }
        }
        #expect(passed > 100)
        #expect(unsupported > 0)
    }
}
