import Crypto
import Foundation
import GatehouseCore
import GatehouseWebAuthn
import Testing

@Suite("WebAuthn ceremonies")
struct CeremonyTests {
    let rp = RelyingParty(id: "localhost", name: "Gatehouse", origins: ["http://localhost:8080"])
    let challenge = Array((0..<32).map { UInt8($0) })

    func register(_ a: TestAuthenticator, _ o: TestAuthenticator.Options = .init()) throws(WebAuthnError) -> RelyingParty.VerifiedRegistration {
        try self.rp.verifyRegistration(try RegistrationResponse(json: a.registration(challenge: self.challenge, o)), challenge: self.challenge)
    }

    func stored(_ a: TestAuthenticator, _ r: RelyingParty.VerifiedRegistration) -> RelyingParty.StoredCredential {
        .init(id: r.credentialID, publicKey: r.publicKey.encoded, signCount: r.signCount, backupEligible: r.backupEligible, userHandle: a.userHandle)
    }

    @Test("register and sign in with ES256 and EdDSA, attestation none and packed self")
    func happyPaths() throws {
        for kind in [TestAuthenticator.KeyKind.p256, .ed25519] {
            for format in ["none", "packed"] {
                var a = TestAuthenticator(kind)
                var o = TestAuthenticator.Options()
                o.format = format
                let r = try self.register(a, o)
                #expect(r.attestationFormat == format)
                #expect(r.credentialID == a.credentialID)
                #expect(r.transports == ["internal"])
                var credential = self.stored(a, r)
                for _ in 0..<3 {
                    let assertion = try AuthenticationResponse(json: a.assertion(challenge: self.challenge))
                    let v = try self.rp.verifyAuthentication(
                        assertion, challenge: self.challenge, credential: credential, expectedUserHandle: a.userHandle)
                    #expect(v.signCount == a.counter)
                    credential.signCount = v.signCount
                }
            }
        }
    }

    static func registrationTweaks() -> [(String, WebAuthnError.Code, (inout TestAuthenticator.Options) -> Void)] {
        [
            ("wrong origin", .originMismatch, { $0.origin = "https://evil.example" }),
            ("origin with a port difference", .originMismatch, { $0.origin = "http://localhost:8081" }),
            ("wrong RP ID", .rpIDMismatch, { $0.rpID = "evil.example" }),
            ("assertion type in a registration", .typeMismatch, { $0.type = "webauthn.get" }),
            ("user not verified", .userNotVerified, { $0.flags = 0x01 }),
            ("user not present", .userNotPresent, { $0.flags = 0x04 }),
            ("backed up but not eligible", .backupStateInvalid, { $0.flags = 0x01 | 0x04 | 0x10 }),
            ("cross-origin frame", .crossOrigin, { $0.crossOrigin = true }),
            ("bytes after authenticator data", .malformed, { $0.trailing = [0x00] }),
            (
                "tampered packed signature", .attestationInvalid,
                {
                    $0.format = "packed"
                    $0.tamperSignature = true
                }
            ),
            ("unsupported attestation format", .attestationUnsupported, { $0.format = "tpm" }),
            ("id differs from the attested credential", .malformed, { $0.idOverride = [9, 9, 9] }),
        ]
    }

    @Test("registration negative battery: each refused with its own code", arguments: 0..<12)
    func badRegistrations(index: Int) {
        let (name, code, tweak) = Self.registrationTweaks()[index]
        var o = TestAuthenticator.Options()
        tweak(&o)
        do {
            _ = try self.register(TestAuthenticator(), o)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.code == code, "\(name): \(error)")
        }
    }

    @Test("a replayed or foreign challenge is refused")
    func challenges() throws {
        let a = TestAuthenticator()
        let response = try RegistrationResponse(json: a.registration(challenge: self.challenge))
        #expect(throws: WebAuthnError(.challengeMismatch, "the challenge is not the one issued")) {
            try self.rp.verifyRegistration(response, challenge: Array(repeating: 7, count: 32))
        }
    }

    @Test("authentication negative battery")
    func badAssertions() throws {
        var a = TestAuthenticator()
        let credential = self.stored(a, try self.register(a))
        func expect(
            _ code: WebAuthnError.Code, _ name: String, _ json: [UInt8], credential c: RelyingParty.StoredCredential? = nil, user: [UInt8]? = nil
        ) {
            do {
                let r = try AuthenticationResponse(json: json)
                _ = try self.rp.verifyAuthentication(r, challenge: self.challenge, credential: c ?? credential, expectedUserHandle: user)
                Issue.record("\(name): accepted")
            } catch {
                #expect(error.code == code, "\(name): \(error)")
            }
        }
        var o = TestAuthenticator.Options()
        o.tamperSignature = true
        expect(.badSignature, "tampered signature", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.flags = 0x01
        expect(.userNotVerified, "UV=0", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.flags = 0x04
        expect(.userNotPresent, "UP=0", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.origin = "https://login.evil.example"
        expect(.originMismatch, "wrong origin", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.rpID = "evil.example"
        expect(.rpIDMismatch, "wrong RP ID", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.type = "webauthn.create"
        expect(.typeMismatch, "registration type in an assertion", a.assertion(challenge: self.challenge, o))
        o = .init()
        o.flags = 0x01 | 0x04 | 0x08
        expect(.backupStateInvalid, "backup eligibility appears after registration", a.assertion(challenge: self.challenge, o))

        // Counter: a clone replays an older count.
        var advanced = credential
        advanced.signCount = 50
        o = .init()
        o.counter = 50
        expect(.counterRegression, "counter equal to stored", a.assertion(challenge: self.challenge, o), credential: advanced)
        o.counter = 3
        expect(.counterRegression, "counter below stored", a.assertion(challenge: self.challenge, o), credential: advanced)

        // Another credential, another user's credential, a user handle that does not belong.
        let other = TestAuthenticator(credentialID: [1, 2, 3, 4], userHandle: Array(repeating: 0xCD, count: 16))
        let otherCredential = self.stored(other, try self.register(other))
        expect(.credentialNotAllowed, "assertion for another credential", a.assertion(challenge: self.challenge), credential: otherCredential)
        expect(.credentialNotAllowed, "credential of another user", a.assertion(challenge: self.challenge), user: other.userHandle)
        expect(.userHandleMismatch, "user handle of someone else", a.assertion(challenge: self.challenge, userHandle: other.userHandle))
        // A signature by another key over the right data.
        var impostor = TestAuthenticator(credentialID: a.credentialID)
        expect(.badSignature, "same credential ID, other key", impostor.assertion(challenge: self.challenge))
    }

    static let garbage: [(String, String)] = [
        ("", "webauthn.malformed"),
        ("[]", "webauthn.malformed"),
        ("{\"type\":\"public-key\"}", "webauthn.malformed"),
        ("{\"id\":\"AAA\",\"rawId\":\"AAE\",\"type\":\"public-key\",\"response\":{}}", "webauthn.malformed"),
        ("{\"id\":\"AA\",\"rawId\":\"AA\",\"type\":\"password\",\"response\":{}}", "webauthn.malformed"),
        (
            "{\"id\":\"AA\",\"rawId\":\"AA\",\"type\":\"public-key\",\"response\":{\"clientDataJSON\":\"e30\",\"attestationObject\":\"!!\"}}",
            "webauthn.malformed"
        ),
        (
            "{\"id\":\"AA\",\"rawId\":\"AA\",\"type\":\"public-key\",\"response\":{\"clientDataJSON\":\"e30\",\"attestationObject\":\"oA\"}}",
            "webauthn.malformed"
        ),
    ]

    @Test("garbage, truncated and oversized registration JSON and CBOR: a clear error, no crash", arguments: garbage)
    func garbageRegistrations(json: String, code: String) {
        do {
            let r = try RegistrationResponse(json: Array(json.utf8))
            _ = try self.rp.verifyRegistration(r, challenge: self.challenge)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.code.rawValue == code)
        }
    }

    @Test("every truncation and single-byte corruption of a good registration is refused")
    func truncationsAndBitFlips() throws {
        let a = TestAuthenticator()
        let good = try RegistrationResponse(json: a.registration(challenge: self.challenge))
        var refused = 0
        var total = 0
        for cut in 0..<good.attestationObject.count {
            total += 1
            let r = try RegistrationResponse(
                json: TestAuthenticator.json([
                    "id": Base64URL.encode(a.credentialID), "rawId": Base64URL.encode(a.credentialID), "type": "public-key",
                    "response": [
                        "clientDataJSON": Base64URL.encode(good.clientDataJSON),
                        "attestationObject": Base64URL.encode(Array(good.attestationObject.prefix(cut))),
                    ],
                ]))
            if (try? self.rp.verifyRegistration(r, challenge: self.challenge)) == nil { refused += 1 }
        }
        #expect(refused == total)
        // With packed self attestation the signature covers the authenticator data, so every
        // single-bit change anywhere in the attestation object must be caught.
        var o = TestAuthenticator.Options()
        o.format = "packed"
        let packed = try RegistrationResponse(json: a.registration(challenge: self.challenge, o))
        var accepted: [Int] = []
        for i in 0..<packed.attestationObject.count {
            var flipped = packed.attestationObject
            flipped[i] ^= 0x01
            let r = try RegistrationResponse(
                json: TestAuthenticator.json([
                    "id": Base64URL.encode(a.credentialID), "rawId": Base64URL.encode(a.credentialID), "type": "public-key",
                    "response": ["clientDataJSON": Base64URL.encode(packed.clientDataJSON), "attestationObject": Base64URL.encode(flipped)],
                ]))
            if (try? self.rp.verifyRegistration(r, challenge: self.challenge)) != nil { accepted.append(i) }
        }
        #expect(accepted.isEmpty, "bit flips accepted at offsets \(accepted)")
        let big = Array(repeating: UInt8(ascii: "a"), count: RegistrationResponse.maxBytes + 1)
        #expect(throws: WebAuthnError.self) { try RegistrationResponse(json: big) }
    }
}
