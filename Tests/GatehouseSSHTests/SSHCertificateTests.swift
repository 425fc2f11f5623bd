import Crypto
import Foundation
import GatehouseCore
import GatehouseSSH
import Testing

/// OpenSSH certificates: the bytes are pinned by golden files (regenerate with
/// GATEHOUSE_UPDATE_GOLDEN=1 after a deliberate change), every field is read back with an
/// independent walk of the wire format, the CA signature verifies, and what must never be
/// signed is refused.
@Suite("OpenSSH certificates")
struct SSHCertificateTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let nonce = [UInt8](repeating: 0xA5, count: 32)

    static func userKey(_ kind: String) -> SSHPublicKey {
        switch kind {
        case "ed25519": SSHPublicKey(try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 1, count: 32)).publicKey)
        default: SSHPublicKey(try! P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 2, count: 32)).publicKey)
        }
    }

    static func ca(_ kind: String) -> SigningKey {
        kind == "ed25519"
            ? .ed25519(try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 3, count: 32)))
            : .p256(try! P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 4, count: 32)))
    }

    static func certificate(_ key: SSHPublicKey) -> SSHCertificate {
        SSHCertificate(
            kind: .user, publicKey: key, serial: 0x0123_4567_89AB_CDEF, keyID: "alice request:r-1", principals: ["alice", "deploy"],
            validAfter: 1_800_000_000 - 60, validBefore: 1_800_000_000 + 8 * 3600,
            criticalOptions: ["source-address": "10.0.0.0/8,192.168.1.0/24", "force-command": "/usr/bin/true"],
            extensions: ["permit-pty", "permit-port-forwarding"])
    }

    @Test("golden bytes, and the line ssh-keygen reads", arguments: [("ed25519", "ed25519"), ("ecdsa", "ed25519")])
    func golden(userKind: String, caKind: String) throws {
        let signed = try Self.certificate(Self.userKey(userKind)).signed(by: Self.ca(caKind), nonce: Self.nonce)
        let file = Self.golden.appendingPathComponent("\(userKind)-user-by-\(caKind)-ca.cert")
        if ProcessInfo.processInfo.environment["GATEHOUSE_UPDATE_GOLDEN"] == "1" {
            try (signed.line + "\n").write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(signed.line + "\n" == expected, "the signed bytes changed; if deliberate, regenerate with GATEHOUSE_UPDATE_GOLDEN=1")
    }

    @Test("every field reads back, and the CA signature verifies", arguments: ["ed25519", "ecdsa"])
    func readBack(_ kind: String) throws {
        let cert = Self.certificate(Self.userKey(kind))
        for caKind in ["ed25519", "ecdsa"] {
            let ca = Self.ca(caKind)
            let signed = try cert.signed(by: ca, nonce: Self.nonce)
            var r = SSHReader(signed.blob)
            #expect(try r.text() == Self.userKey(kind).certificateTypeName)
            #expect(try r.string() == Self.nonce)
            if kind == "ed25519" {
                #expect(try r.string().count == 32)
            } else {
                #expect(try r.text() == "nistp256")
                #expect(try r.string().count == 65)
            }
            #expect(try r.uint64() == 0x0123_4567_89AB_CDEF)
            #expect(try r.uint32() == 1)
            #expect(try r.text() == "alice request:r-1")
            var principals = SSHReader(try r.string())
            #expect(try principals.text() == "alice" && principals.text() == "deploy" && principals.isAtEnd)
            #expect(try r.uint64() == 1_800_000_000 - 60)
            #expect(try r.uint64() == 1_800_000_000 + 8 * 3600)
            var options = SSHReader(try r.string())
            #expect(try options.text() == "force-command")  // sorted by name
            var value = SSHReader(try options.string())
            #expect(try value.text() == "/usr/bin/true")
            #expect(try options.text() == "source-address")
            value = SSHReader(try options.string())
            #expect(try value.text() == "10.0.0.0/8,192.168.1.0/24")
            var extensions = SSHReader(try r.string())
            #expect(try extensions.text() == "permit-port-forwarding" && extensions.string().isEmpty)
            #expect(try extensions.text() == "permit-pty" && extensions.string().isEmpty && extensions.isAtEnd)
            #expect(try r.string().isEmpty)  // reserved
            #expect(try r.string() == SSHCertificate.publicKey(of: ca).blob)
            let signedPart = Array(signed.blob[0..<r.offset])
            var signature = SSHReader(try r.string())
            #expect(r.isAtEnd)
            switch ca {
            case .ed25519(let key):
                #expect(try signature.text() == "ssh-ed25519")
                #expect(key.publicKey.isValidSignature(try signature.string(), for: signedPart))
            case .p256(let key):
                #expect(try signature.text() == "ecdsa-sha2-nistp256")
                var rs = SSHReader(try signature.string())
                let r1 = try rs.string().drop { $0 == 0 }
                let s1 = try rs.string().drop { $0 == 0 }
                let raw = [UInt8](repeating: 0, count: 32 - r1.count) + r1 + [UInt8](repeating: 0, count: 32 - s1.count) + s1
                #expect(key.publicKey.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: raw), for: signedPart))
            }
        }
    }

    @Test("what a CA must never sign is refused")
    func refusals() {
        let key = Self.userKey("ed25519")
        var cases: [(SSHCertificate, String)] = []
        func with(_ change: (inout SSHCertificate) -> Void, _ reason: String) {
            var c = Self.certificate(key)
            change(&c)
            cases.append((c, reason))
        }
        with({ $0.principals = [] }, "at least one principal")
        with({ $0.principals = (0...256).map { "u\($0)" } }, "at most 256")
        with({ $0.principals = ["a b"] }, "not printable")
        with({ $0.principals = ["a,b"] }, "not printable")
        with({ $0.principals = ["*"] }, "wildcards")
        with({ $0.principals = ["web-?"] }, "wildcards")
        with({ $0.principals = ["alice", "alice"] }, "twice")
        with({ $0.keyID = "" }, "key id")
        with({ $0.keyID = "a\nb" }, "key id")
        with({ $0.validBefore = $0.validAfter }, "valid-before")
        with({ $0.serial = 0 }, "serial 0")
        with({ $0.criticalOptions["verify-required"] = "" }, "unknown critical option")
        with({ $0.extensions.insert("permit-everything") }, "unknown extension")
        with({ $0.kind = .host }, "host certificates carry no")
        for (cert, reason) in cases {
            do {
                _ = try cert.signed(by: Self.ca("ed25519"), nonce: Self.nonce)
                Issue.record("signed: \(reason)")
            } catch {
                #expect(error.code == .invalidCertificate && error.message.contains(reason), "\(error.message)")
            }
        }
        #expect(throws: SSHError.self) { try Self.certificate(key).signed(by: Self.ca("ed25519"), nonce: [1, 2, 3]) }
    }

    @Test("public keys: authorized_keys lines parse strictly")
    func publicKeys() throws {
        let ed = Self.userKey("ed25519")
        #expect(try SSHPublicKey(authorizedKey: ed.authorizedKey + " alice@laptop") == ed)
        let ec = Self.userKey("ecdsa")
        #expect(try SSHPublicKey(authorizedKey: ec.authorizedKey) == ec)
        #expect(ed.fingerprint.hasPrefix("SHA256:") && !ed.fingerprint.hasSuffix("="))
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 x"
        let bad = [
            ("", SSHError.Code.malformed), ("ssh-ed25519", .malformed), ("ssh-ed25519 !!!!", .malformed),
            (
                "ssh-rsa "
                    + Data(
                        {
                            var w = SSHWriter()
                            w.string("ssh-rsa")
                            w.string([1])
                            w.string([1])
                            return w.bytes
                        }()
                    ).base64EncodedString(), .unsupportedKey
            ),
            ("ecdsa-sha2-nistp256 " + ed.authorizedKey.split(separator: " ")[1], .malformed),  // label differs from blob
            ("ssh-ed25519 " + Data(ed.blob + [0]).base64EncodedString(), .malformed),  // trailing data
            (
                "ssh-ed25519 "
                    + Data(
                        {
                            var w = SSHWriter()
                            w.string("ssh-ed25519")
                            w.string([UInt8](repeating: 1, count: 31))
                            return w.bytes
                        }()
                    ).base64EncodedString(), .malformed
            ),
            (
                "ecdsa-sha2-nistp256 "
                    + Data(
                        {
                            var w = SSHWriter()
                            w.string("ecdsa-sha2-nistp256")
                            w.string("nistp256")
                            w.string([4] + [UInt8](repeating: 0, count: 64))
                            return w.bytes
                        }()
                    ).base64EncodedString(), .malformed
            ),
            (
                "ssh-ed25519 "
                    + Data(
                        {
                            var w = SSHWriter()
                            w.string("ssh-ed25519")
                            w.uint32(1 << 30)
                            return w.bytes
                        }()
                    ).base64EncodedString(), .malformed
            ),
            (String(repeating: "A", count: 5000), .tooLarge),
        ]
        _ = rsa
        for (line, code) in bad {
            do {
                _ = try SSHPublicKey(authorizedKey: line)
                Issue.record("accepted \(line.prefix(60))")
            } catch {
                #expect(error.code == code, "\(line.prefix(60)): \(error)")
            }
        }
    }
}

@Suite("Certificate plans from the policy")
struct SSHCertificatePlanTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let key = SSHCertificateTests.userKey("ed25519")

    static func permit(
        _ login: String, _ host: String, lifetime: TimeInterval? = nil, ext: Set<String> = ["permit-pty"], command: String? = nil,
        from: [String]? = nil
    ) -> SSHLoginPermit {
        SSHLoginPermit(login: login, host: host, maxLifetime: lifetime, extensions: ext, forceCommand: command, sourceAddresses: from)
    }

    func plan(_ permits: [SSHLoginPermit], ttl: TimeInterval? = nil) throws(SSHError) -> SSHCertificate {
        try SSHCertificatePlan.certificate(
            for: Self.key, username: "alice", permits: permits, requestedLifetime: ttl, serial: 42, requestID: "r1", now: Self.now)
    }

    @Test("principals name login and host; lifetime is the least of request, policy and default; backdated a minute")
    func basics() throws {
        let c = try self.plan([
            Self.permit("alice", "web-1", lifetime: 3600), Self.permit("deploy", "web-1"),
            Self.permit("alice", "web-2", ext: ["permit-pty", "permit-port-forwarding"]),
        ])
        #expect(c.principals == ["alice@web-1", "alice@web-2", "deploy@web-1"])
        #expect(c.validAfter == 1_800_000_000 - 60 && c.validBefore == 1_800_000_000 + 3600)
        #expect(c.extensions == ["permit-pty"] && c.criticalOptions.isEmpty)
        #expect(c.keyID == "alice serial:42 request:r1")
        #expect(try self.plan([Self.permit("alice", "web-1")]).validBefore == 1_800_000_000 + 8 * 3600)
        #expect(try self.plan([Self.permit("alice", "web-1")], ttl: 600).validBefore == 1_800_000_000 + 600)
        #expect(try self.plan([Self.permit("alice", "web-1")], ttl: 100 * 3600).validBefore == 1_800_000_000 + 8 * 3600)
        let restricted = try self.plan([Self.permit("backup", "db-1", command: "/usr/local/bin/backup", from: ["10.0.0.0/8"])])
        #expect(restricted.criticalOptions == ["force-command": "/usr/local/bin/backup", "source-address": "10.0.0.0/8"])
    }

    @Test("what cannot be one certificate is refused with a way out")
    func refusals() {
        let cases: [([SSHLoginPermit], TimeInterval?, String)] = [
            ([], nil, "allows you no SSH login"),
            ([Self.permit("a", "h1", command: "x"), Self.permit("a", "h2")], nil, "different force-commands"),
            ([Self.permit("a", "h1", from: ["10.0.0.0/8"]), Self.permit("a", "h2")], nil, "different source networks"),
            ((0...256).map { Self.permit("a", "h\($0)") }, nil, "ask for specific hosts"),
            ([Self.permit("a", "h1")], 5, "at least one minute"),
            ([Self.permit("a", "h1")], -1, "at least one minute"),
        ]
        for (permits, ttl, reason) in cases {
            do {
                _ = try self.plan(permits, ttl: ttl)
                Issue.record("planned: \(reason)")
            } catch {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
    }
}

@Suite("Key revocation lists")
struct SSHKeyRevocationListTests {
    @Test("header, a serial section under the CA, a SHA-256 section; sorted and without repeats")
    func layout() throws {
        let ca = SSHCertificate.publicKey(of: SSHCertificateTests.ca("ed25519"))
        let h1 = [UInt8](repeating: 9, count: 32)
        let h2 = [UInt8](repeating: 1, count: 32)
        let krl = SSHKeyRevocationList(
            version: 7, generatedAt: 1_800_000_000, comment: "c", caKey: ca, revokedSerials: [30, 10, 30, 20],
            revokedKeyHashes: [h1, h2, h1, [1, 2]]
        ).encoded()
        var r = SSHReader(krl)
        #expect(try r.uint64() == 0x5353_484B_524C_0A00 && r.uint32() == 1 && r.uint64() == 7 && r.uint64() == 1_800_000_000 && r.uint64() == 0)
        #expect(try r.string().isEmpty && r.text() == "c")
        #expect(Array(krl[r.offset...].prefix(1)) == [1])
        var rest = SSHReader(Array(krl[(r.offset + 1)...]))
        var certs = SSHReader(try rest.string())
        #expect(try certs.string() == ca.blob && certs.string().isEmpty)
        let afterReserved = Array(certs.bytes[certs.offset...])
        #expect(afterReserved.first == 0x20)
        var serials = SSHReader(Array(afterReserved.dropFirst()))
        var list = SSHReader(try serials.string())
        #expect(try [list.uint64(), list.uint64(), list.uint64()] == [10, 20, 30] && list.isAtEnd)
        let tail = Array(rest.bytes[rest.offset...])
        #expect(tail.first == 5)
        var hashes = SSHReader(Array(tail.dropFirst()))
        var entries = SSHReader(try hashes.string())
        #expect(try entries.string() == h2 && entries.string() == h1 && entries.isAtEnd && hashes.isAtEnd)
        // An empty list is a header alone.
        #expect(
            SSHKeyRevocationList(version: 0, generatedAt: 0, comment: "", caKey: ca, revokedSerials: [], revokedKeyHashes: []).encoded().count == 8
                + 4 + 8 + 8 + 8 + 4 + 4)
    }
}
