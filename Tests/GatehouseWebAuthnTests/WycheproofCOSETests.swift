import Foundation
import GatehouseCore
import GatehouseWebAuthn
import Testing

/// Wycheproof vectors (Resources/wycheproof, Apache-2.0) through the path WebAuthn uses: each
/// group's public key is written as a COSE key, parsed by ``COSEKey`` and asked to verify. Every
/// `valid` case must verify and every `invalid` one must not.
@Suite("COSE signatures against Wycheproof")
struct WycheproofCOSETests {
    struct Outcome {
        var valid = 0, invalid = 0, acceptable = 0
        var failures: [String] = []
    }

    static func load(_ name: String) throws -> [String: Any] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "wycheproof"))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    static func run(_ file: String, key: ([String: Any]) throws -> COSEKey) throws -> Outcome {
        var outcome = Outcome()
        for group in try Self.load(file)["testGroups"] as! [[String: Any]] {
            let cose = try key(group["publicKey"] as! [String: Any])
            for test in group["tests"] as! [[String: Any]] {
                let message = Hex.decode(test["msg"] as! String)!
                let signature = Hex.decode(test["sig"] as! String)!
                let verified = cose.isValidSignature(signature, for: message)
                switch test["result"] as! String {
                case "valid":
                    outcome.valid += 1
                    if !verified { outcome.failures.append("tc \(test["tcId"]!) valid but rejected") }
                case "invalid":
                    outcome.invalid += 1
                    if verified { outcome.failures.append("tc \(test["tcId"]!) invalid but accepted: \(test["comment"]!)") }
                default:
                    outcome.acceptable += 1
                }
            }
        }
        return outcome
    }

    static func cose(_ pairs: [(Int64, CBORValue)]) throws -> COSEKey {
        let value = CBORValue.map(pairs.map { (key: $0.0 >= 0 ? CBORValue.unsigned(UInt64($0.0)) : .negative($0.0), value: $0.1) })
        return try COSEKey(encoded: CBOREncoder.encode(value))
    }

    @Test("ES256: ecdsa_secp256r1_sha256 (DER signatures)")
    func es256() throws {
        let outcome = try Self.run("ecdsa_secp256r1_sha256_test") { key in
            let point = Hex.decode(key["uncompressed"] as! String)!
            return try Self.cose([
                (1, .unsigned(2)), (3, .negative(-7)), (-1, .unsigned(1)), (-2, .bytes(Array(point[1..<33]))), (-3, .bytes(Array(point[33..<65]))),
            ])
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(10))")
        #expect(outcome.valid + outcome.invalid + outcome.acceptable == 484)
    }

    @Test("EdDSA: ed25519")
    func edDSA() throws {
        let outcome = try Self.run("ed25519_test") { key in
            try Self.cose([(1, .unsigned(1)), (3, .negative(-8)), (-1, .unsigned(6)), (-2, .bytes(Hex.decode(key["pk"] as! String)!))])
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(10))")
        #expect(outcome.valid + outcome.invalid == 151)
    }

    @Test("RS256: rsa_signature_2048_sha256 (PKCS#1 v1.5); the one 'acceptable' case is counted apart")
    func rs256() throws {
        let outcome = try Self.run("rsa_signature_2048_sha256_test") { key in
            var n = Hex.decode(key["modulus"] as! String)!
            while n.first == 0 { n.removeFirst() }
            return try Self.cose([
                (1, .unsigned(3)), (3, .negative(-257)), (-1, .bytes(n)), (-2, .bytes(Hex.decode(key["publicExponent"] as! String)!)),
            ])
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(10))")
        #expect(outcome.valid == 9 && outcome.invalid == 249 && outcome.acceptable == 1)
    }

    @Test("COSE keys that do not match their algorithm, curve or size are refused when parsed")
    func badKeys() throws {
        let x = Array(repeating: UInt8(1), count: 32)
        let cases: [[(Int64, CBORValue)]] = [
            [(1, .unsigned(2)), (3, .negative(-7)), (-1, .unsigned(2)), (-2, .bytes(x)), (-3, .bytes(x))],  // P-384 curve id
            [(1, .unsigned(2)), (3, .negative(-7)), (-1, .unsigned(1)), (-2, .bytes(x)), (-3, .bytes(x))],  // not on the curve
            [(1, .unsigned(2)), (3, .negative(-7)), (-1, .unsigned(1)), (-2, .bytes(x))],  // no y
            [(1, .unsigned(1)), (3, .negative(-7)), (-1, .unsigned(6)), (-2, .bytes(x))],  // OKP with ES256
            [(1, .unsigned(1)), (3, .negative(-8)), (-1, .unsigned(4)), (-2, .bytes(x))],  // X25519 curve
            [(1, .unsigned(2)), (3, .negative(-35)), (-1, .unsigned(2)), (-2, .bytes(x)), (-3, .bytes(x))],  // ES384 not accepted
            [(1, .unsigned(3)), (3, .negative(-257)), (-1, .bytes(Array(repeating: 0xC1, count: 128))), (-2, .bytes([1, 0, 1]))],  // RSA-1024
            [(3, .negative(-8)), (-1, .unsigned(6)), (-2, .bytes(x))],  // no kty
        ]
        for pairs in cases {
            #expect(throws: WebAuthnError.self) { try Self.cose(pairs) }
        }
    }
}
