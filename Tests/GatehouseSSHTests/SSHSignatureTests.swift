import Crypto
import Foundation
import GatehouseCore
import GatehouseSSH
import Testing

/// Proof of possession for SSH certificate requests: OpenSSH's own `ssh-keygen -Y sign` output
/// (captured below) verifies; our encoder round-trips; anything else (another key, namespace,
/// message, a flipped bit, hostile blobs) is refused with a clear error and never a crash.
@Suite("SSH signatures (proof of possession)")
struct SSHSignatureTests {
    /// `ssh-keygen -Y sign -n gatehouse-ssh-certificate` (OpenSSH 9.2) over the message for the
    /// access token `ghat_example-token`, by an Ed25519 and an ECDSA P-256 key.
    static let token = "ghat_example-token"
    static let ed25519Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILTdZKhHP1VRceENgh2rAWwlSdkSHqjZexqloGfRQQD9"
    static let ed25519Proof = """
        -----BEGIN SSH SIGNATURE-----
        U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgtN1kqEc/VVFx4Q2CHasBbCVJ2R
        IeqNl7GqWgZ9FBAP0AAAAZZ2F0ZWhvdXNlLXNzaC1jZXJ0aWZpY2F0ZQAAAAAAAAAGc2hh
        NTEyAAAAUwAAAAtzc2gtZWQyNTUxOQAAAECO9LzZoyx5xvB7ne2vfZTWyholvkkuiIiBs2
        0A7E6G9VIN68HRf27ZwPEhoCl6lJRRCONaS/KSnzU7LMM0JU0A
        -----END SSH SIGNATURE-----
        """
    static let ecdsaKey =
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHUj1qbW03qp/l6/Fs9oHdIKD4rODBmRfHW+XW5HTY0ST7bvqycWW+4r7BeE7/pQNcaj4NvbFQZAeQad31hhfp8="
    static let ecdsaProof = """
        -----BEGIN SSH SIGNATURE-----
        U1NIU0lHAAAAAQAAAGgAAAATZWNkc2Etc2hhMi1uaXN0cDI1NgAAAAhuaXN0cDI1NgAAAE
        EEdSPWptbTeqn+Xr8Wz2gd0goPis4MGZF8db5dbkdNjRJPtu+rJxZb7ivsF4Tv+lA1xqPg
        29sVBkB5Bp3fWGF+nwAAABlnYXRlaG91c2Utc3NoLWNlcnRpZmljYXRlAAAAAAAAAAZzaG
        E1MTIAAABjAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAABIAAAAIAe8aJvw1KLHE2SLFThI
        RK4kOfAoUdCDw9wkrZGK8ZmYAAAAIECjb2PJsLE/SipJyM/AhSuIUYDHRDKC21N2J8+8eT
        UX
        -----END SSH SIGNATURE-----
        """

    @Test func openSSHSignaturesVerifyForTheirKeyAndTokenOnly() throws {
        let ed = try SSHPublicKey(authorizedKey: Self.ed25519Key)
        let ec = try SSHPublicKey(authorizedKey: Self.ecdsaKey)
        try SSHKeyPossession.check(proof: Self.ed25519Proof, key: ed, accessToken: Self.token)
        try SSHKeyPossession.check(proof: Self.ecdsaProof, key: ec, accessToken: Self.token)
        #expect(
            String(decoding: SSHKeyPossession.message(accessToken: Self.token), as: UTF8.self)
                == "gatehouse ssh certificate request\nbfd12bc0c476d30c5cfdeb5d6efaefa7c57f42b3f8962b78a3f40a72ec524e3f\n")
        // Another token, another key, or no proof at all: refused.
        for (proof, key, token) in [(Self.ed25519Proof, ed, "ghat_other"), (Self.ed25519Proof, ec, Self.token), (Self.ecdsaProof, ed, Self.token)] {
            #expect(throws: SSHError.self) { try SSHKeyPossession.check(proof: proof, key: key, accessToken: token) }
        }
        let missing = #expect(throws: SSHError.self) { try SSHKeyPossession.check(proof: nil, key: ed, accessToken: Self.token) }
        #expect(missing?.code == .proofRequired && missing?.message.contains("ssh-keygen -Y sign -n gatehouse-ssh-certificate") == true)
    }

    @Test func ourOwnSignaturesRoundTripAndAnotherNamespaceIsRefused() throws {
        let key = Curve25519.Signing.PrivateKey()
        let pub = SSHPublicKey(key.publicKey)
        let message = SSHKeyPossession.message(accessToken: "ghat_t")
        func sign(_ namespace: String, _ hash: String = "sha512", _ body: [UInt8] = message, labelled label: String? = nil) throws -> String {
            var w = SSHWriter()
            w.string(namespace)
            w.string([UInt8]())
            w.string(hash)
            w.string(hash == "sha512" ? Array(SHA512.hash(data: body)) : Array(SHA256.hash(data: body)))
            var inner = SSHWriter()
            inner.string("ssh-ed25519")
            inner.string(Array(try key.signature(for: Array("SSHSIG".utf8) + w.bytes)))
            return SSHSignature.armored(publicKey: pub, namespace: label ?? namespace, hashAlgorithm: hash, signature: inner.bytes)
        }
        try SSHKeyPossession.check(proof: try sign(SSHKeyPossession.namespace), key: pub, accessToken: "ghat_t")
        try SSHKeyPossession.check(proof: try sign(SSHKeyPossession.namespace, "sha256"), key: pub, accessToken: "ghat_t")
        // A signature made for git (or file signing) is not a certificate request.
        #expect(throws: SSHError.self) { try SSHKeyPossession.check(proof: try sign("git"), key: pub, accessToken: "ghat_t") }
        // The namespace is bound inside the signed data too: relabelling one fails.
        let relabelled = try sign("git", labelled: SSHKeyPossession.namespace)
        #expect(throws: SSHError.self) { try SSHKeyPossession.check(proof: relabelled, key: pub, accessToken: "ghat_t") }
    }

    @Test func everyFlippedBitIsRefused() throws {
        let ed = try SSHPublicKey(authorizedKey: Self.ed25519Key)
        let blob = [UInt8](Data(base64Encoded: Self.ed25519Proof.split(separator: "\n").dropFirst().dropLast().joined())!)
        for i in stride(from: 0, to: blob.count, by: 1) {
            var bad = blob
            bad[i] ^= 0x01
            let text = "-----BEGIN SSH SIGNATURE-----\n" + Data(bad).base64EncodedString() + "\n-----END SSH SIGNATURE-----\n"
            #expect(throws: SSHError.self, "byte \(i)") { try SSHKeyPossession.check(proof: text, key: ed, accessToken: Self.token) }
        }
    }

    @Test func hostileProofsGetAClearErrorAndNeverCrash() throws {
        let ed = try SSHPublicKey(authorizedKey: Self.ed25519Key)
        let armor = { (b: [UInt8]) in "-----BEGIN SSH SIGNATURE-----\n" + Data(b).base64EncodedString() + "\n-----END SSH SIGNATURE-----" }
        var huge = SSHWriter()
        huge.uint32(1)
        huge.uint32(0xFFFF_FFFF)
        let cases: [String] = [
            "", "not a signature", String(repeating: "A", count: 9000), "-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----",
            armor([]), armor(Array("SSHSIG".utf8)), armor(Array("SSHSIG".utf8) + [0, 0, 0, 2]), armor(Array("SSHSIG".utf8) + huge.bytes),
            armor(Array("SSHSIG".utf8) + [0, 0, 0, 1, 0, 0, 0, 0]), armor(Array("XXXSIG".utf8) + [0, 0, 0, 1]),
        ]
        for text in cases {
            #expect(throws: SSHError.self, "\(text.prefix(40))") { try SSHKeyPossession.check(proof: text, key: ed, accessToken: Self.token) }
        }
        // Random garbage inside valid armour, many times: only SSHError, never a trap.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes =
                Array("SSHSIG".utf8) + (0..<Int.random(in: 0..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: SSHError.self) { try SSHKeyPossession.check(proof: armor(bytes), key: ed, accessToken: Self.token) }
        }
    }
}
