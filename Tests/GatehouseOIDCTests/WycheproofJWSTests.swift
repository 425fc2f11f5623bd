import Foundation
import GatehouseCore
import GatehouseOIDC
import Testing

/// Wycheproof vectors (Resources/wycheproof, Apache-2.0) through the keys that verify JWS
/// signatures. Ed25519 signatures are used as they are. ES256 in JWS is the fixed 64-byte R || S
/// form, so each DER vector that strictly decodes to two 32-byte-or-shorter integers is rewritten
/// to that form; vectors whose flaw is only in the DER encoding cannot be expressed and are skipped.
@Suite("JWS keys against Wycheproof")
struct WycheproofJWSTests {
    static func load(_ name: String) throws -> [String: Any] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "wycheproof"))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// Strict DER `SEQUENCE { INTEGER r, INTEGER s }` → 64-byte R || S, or nil.
    static func rawSignature(der: [UInt8]) -> [UInt8]? {
        guard der.count >= 8, der[0] == 0x30, Int(der[1]) == der.count - 2, der[1] < 0x80 else { return nil }
        var i = 2
        var out: [UInt8] = []
        for _ in 0..<2 {
            guard i + 2 <= der.count, der[i] == 0x02 else { return nil }
            let n = Int(der[i + 1])
            guard n >= 1, n < 0x80, i + 2 + n <= der.count else { return nil }
            var value = Array(der[(i + 2)..<(i + 2 + n)])
            if value[0] & 0x80 != 0 { return nil }  // negative
            if value.count > 1 && value[0] == 0 {
                guard value[1] & 0x80 != 0 else { return nil }  // non-minimal
                value.removeFirst()
            }
            guard value.count <= 32 else { return nil }
            out += [UInt8](repeating: 0, count: 32 - value.count) + value
            i += 2 + n
        }
        return i == der.count ? out : nil
    }

    @Test("ES256: ecdsa_secp256r1_sha256, rewritten to R || S")
    func es256() throws {
        var checked = 0
        var failures: [String] = []
        for group in try Self.load("ecdsa_secp256r1_sha256_test")["testGroups"] as! [[String: Any]] {
            let point = Hex.decode((group["publicKey"] as! [String: Any])["uncompressed"] as! String)!
            let key = try JWK(
                kty: "EC", crv: "P-256", x: Base64URL.encode(point[1..<33]), y: Base64URL.encode(point[33..<65]), kid: nil, alg: nil, use: nil
            ).verificationKey()
            for test in group["tests"] as! [[String: Any]] {
                guard let raw = Self.rawSignature(der: Hex.decode(test["sig"] as! String)!) else { continue }
                let flags = test["flags"] as! [String]
                if flags.contains(where: { ["BerEncodedSignature", "InvalidEncoding", "MissingZero", "InvalidTypesInSignature"].contains($0) }) {
                    continue
                }
                checked += 1
                let verified = key.isValidSignature(raw, for: Hex.decode(test["msg"] as! String)!)
                if verified != (test["result"] as! String == "valid") { failures.append("tc \(test["tcId"]!): \(test["comment"]!)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
        #expect(checked == 249, "\(checked) vectors were expressible; the file changed?")
    }

    @Test("EdDSA: ed25519")
    func edDSA() throws {
        var checked = 0
        var failures: [String] = []
        for group in try Self.load("ed25519_test")["testGroups"] as! [[String: Any]] {
            let pk = Hex.decode((group["publicKey"] as! [String: Any])["pk"] as! String)!
            let key = try JWK(kty: "OKP", crv: "Ed25519", x: Base64URL.encode(pk), y: nil, kid: nil, alg: nil, use: nil).verificationKey()
            for test in group["tests"] as! [[String: Any]] {
                checked += 1
                let verified = key.isValidSignature(Hex.decode(test["sig"] as! String)!, for: Hex.decode(test["msg"] as! String)!)
                if verified != (test["result"] as! String == "valid") { failures.append("tc \(test["tcId"]!): \(test["comment"]!)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
        #expect(checked == 151)
    }
}
