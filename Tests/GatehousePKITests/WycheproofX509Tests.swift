import Crypto
import Foundation
import GatehouseCore
import Testing
import X509

/// Wycheproof vectors (Resources/wycheproof, Apache-2.0) through the call that checks a
/// certificate request's own signature (`Certificate.PublicKey.isValidSignature`, DER ECDSA and
/// raw Ed25519), the path every CSR Gatehouse signs goes through.
@Suite("X.509 signature checks against Wycheproof")
struct WycheproofX509Tests {
    static func load(_ name: String) throws -> [String: Any] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "wycheproof"))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    @Test("ecdsa_secp256r1_sha256 (DER signatures)")
    func ecdsa() throws {
        var checked = 0
        var failures: [String] = []
        for group in try Self.load("ecdsa_secp256r1_sha256_test")["testGroups"] as! [[String: Any]] {
            let point = Hex.decode((group["publicKey"] as! [String: Any])["uncompressed"] as! String)!
            let key = Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
            for test in group["tests"] as! [[String: Any]] {
                let result = test["result"] as! String
                if result == "acceptable" { continue }
                checked += 1
                let verified = key.isValidSignature(
                    Hex.decode(test["sig"] as! String)!, for: Hex.decode(test["msg"] as! String)!, signatureAlgorithm: .ecdsaWithSHA256)
                if verified != (result == "valid") { failures.append("tc \(test["tcId"]!): \(test["comment"]!)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
        #expect(checked > 400, "only \(checked) vectors checked")
    }

    @Test("ed25519")
    func ed25519() throws {
        var checked = 0
        var failures: [String] = []
        for group in try Self.load("ed25519_test")["testGroups"] as! [[String: Any]] {
            let pk = Hex.decode((group["publicKey"] as! [String: Any])["pk"] as! String)!
            let key = Certificate.PublicKey(try Curve25519.Signing.PublicKey(rawRepresentation: pk))
            for test in group["tests"] as! [[String: Any]] {
                checked += 1
                let verified = key.isValidSignature(
                    Hex.decode(test["sig"] as! String)!, for: Hex.decode(test["msg"] as! String)!, signatureAlgorithm: .ed25519)
                if verified != (test["result"] as! String == "valid") { failures.append("tc \(test["tcId"]!): \(test["comment"]!)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
        #expect(checked == 151)
    }
}
