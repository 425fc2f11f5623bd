import Crypto
import Foundation
import GatehouseCore
import GatehouseWebAuthn
import SwiftASN1
import Testing
import X509

/// Attestation with certificate chains: a test vendor CA issues an attestation certificate,
/// and authenticators built here sign `packed` and `fido-u2f` statements with it.
@Suite("Attestation")
struct AttestationTests {
    static let now = Date()
    static let aaguid: [UInt8] = Array(0x10..<0x20)

    struct Vendor {
        let root: Certificate
        let attestationKey: P256.Signing.PrivateKey
        let attestation: Certificate

        init(ou: String = "Authenticator Attestation", aaguid: [UInt8]? = AttestationTests.aaguid, ca: Bool = false) throws {
            let rootKey = P256.Signing.PrivateKey()
            let rootName = try DistinguishedName {
                CommonName("Test Vendor Root")
                OrganizationName("Test Vendor")
            }
            self.root = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(rootKey.publicKey),
                notValidBefore: AttestationTests.now - 3600, notValidAfter: AttestationTests.now + 86400 * 365,
                issuer: rootName, subject: rootName, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    KeyUsage(keyCertSign: true)
                },
                issuerPrivateKey: .init(rootKey)
            )
            self.attestationKey = P256.Signing.PrivateKey()
            let subject = try DistinguishedName {
                CountryName("US")
                OrganizationName("Test Vendor")
                OrganizationalUnitName(ou)
                CommonName("Test Key Attestation")
            }
            var extensions = try Certificate.Extensions {
                Critical(ca ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : BasicConstraints.notCertificateAuthority)
            }
            if let aaguid {
                var serializer = DER.Serializer()
                try serializer.serialize(ASN1OctetString(contentBytes: ArraySlice(aaguid)))
                try extensions.append(
                    Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], critical: false, value: ArraySlice(serializer.serializedBytes)))
            }
            self.attestation = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(self.attestationKey.publicKey),
                notValidBefore: AttestationTests.now - 3600, notValidAfter: AttestationTests.now + 86400 * 365,
                issuer: rootName, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: .init(rootKey)
            )
        }

        var der: [UInt8] {
            var serializer = DER.Serializer()
            try! serializer.serialize(self.attestation)
            return serializer.serializedBytes
        }
    }

    /// A registration whose statement is built by `statement(authData, clientDataHash, x, y)`.
    static func registration(
        fmt: String, aaguid: [UInt8] = Self.aaguid, challenge: [UInt8], statement: ([UInt8], [UInt8], [UInt8], [UInt8], [UInt8]) -> CBORValue
    ) -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let raw = Array(key.publicKey.x963Representation)
        let x = Array(raw[1..<33])
        let y = Array(raw[33..<65])
        let id: [UInt8] = Array(repeating: 0x42, count: 16)
        let cose = CBOREncoder.encode(
            .map([
                (.unsigned(1), .unsigned(2)), (.unsigned(3), .negative(-7)), (.negative(-1), .unsigned(1)), (.negative(-2), .bytes(x)),
                (.negative(-3), .bytes(y)),
            ]))
        let auth = Array(SHA256.hash(data: Array("localhost".utf8))) + [0x45, 0, 0, 0, 0] + aaguid + [0, 16] + id + cose
        let client = Array(#"{"type":"webauthn.create","challenge":"\#(Base64URL.encode(challenge))","origin":"http://localhost:8080"}"#.utf8)
        let hash = Array(SHA256.hash(data: client))
        let att = CBOREncoder.encode(
            .map([(.text("fmt"), .text(fmt)), (.text("attStmt"), statement(auth, hash, id, x, y)), (.text("authData"), .bytes(auth))]))
        return Array(
            #"{"id":"\#(Base64URL.encode(id))","rawId":"\#(Base64URL.encode(id))","type":"public-key","response":{"clientDataJSON":"\#(Base64URL.encode(client))","attestationObject":"\#(Base64URL.encode(att))"}}"#
                .utf8)
    }

    static func packed(_ vendor: Vendor, challenge: [UInt8], aaguid: [UInt8] = Self.aaguid, tamper: Bool = false) -> [UInt8] {
        Self.registration(fmt: "packed", aaguid: aaguid, challenge: challenge) { auth, hash, _, _, _ in
            var sig = Array(try! vendor.attestationKey.signature(for: auth + hash).derRepresentation)
            if tamper { sig[sig.count - 2] ^= 1 }
            return .map([(.text("alg"), .negative(-7)), (.text("sig"), .bytes(sig)), (.text("x5c"), .array([.bytes(vendor.der)]))])
        }
    }

    static func u2f(_ vendor: Vendor, challenge: [UInt8]) -> [UInt8] {
        Self.registration(fmt: "fido-u2f", aaguid: Array(repeating: 0, count: 16), challenge: challenge) { auth, hash, id, x, y in
            let data = [0x00] + Array(auth[0..<32]) + hash + id + [0x04] + x + y
            let sig = Array(try! vendor.attestationKey.signature(for: data).derRepresentation)
            return .map([(.text("sig"), .bytes(sig)), (.text("x5c"), .array([.bytes(vendor.der)]))])
        }
    }

    let challenge = Array(repeating: UInt8(9), count: 32)

    func rp(_ policy: AttestationPolicy) -> RelyingParty {
        RelyingParty(id: "localhost", name: "t", origins: ["http://localhost:8080"], attestation: policy)
    }

    func register(_ rp: RelyingParty, _ json: [UInt8]) async throws(WebAuthnError) -> RelyingParty.VerifiedRegistration {
        let verified = try rp.verifyRegistration(try RegistrationResponse(json: json), challenge: self.challenge)
        try await rp.verifyAttestationTrust(verified, now: Self.now)
        return verified
    }

    @Test("packed with a chain and fido-u2f verify, and hardware-only mode trusts the vendor's root")
    func accepted() async throws {
        let vendor = try Vendor()
        let open = self.rp(.anyAuthenticator)
        #expect(try await self.register(open, Self.packed(vendor, challenge: self.challenge)).attestationChain.count == 1)
        #expect(try await self.register(open, Self.u2f(vendor, challenge: self.challenge)).attestationFormat == "fido-u2f")
        let strict = self.rp(AttestationPolicy(mode: .attested, trustAnchors: [vendor.root], allowedAAGUIDs: [Self.aaguid]))
        #expect(try await self.register(strict, Self.packed(vendor, challenge: self.challenge)).aaguid == Self.aaguid)
        let anyModel = self.rp(AttestationPolicy(mode: .attested, trustAnchors: [vendor.root]))
        _ = try await self.register(anyModel, Self.u2f(vendor, challenge: self.challenge))
        #expect(CreationOptions(rp: strict, userHandle: [1], userName: "a", displayName: "a", challenge: self.challenge).attestation == "direct")
        #expect(CreationOptions(rp: open, userHandle: [1], userName: "a", displayName: "a", challenge: self.challenge).attestation == "none")
    }

    @Test("hardware-only mode refuses everything that is not a trusted, allowed, well-formed attestation")
    func refused() async throws {
        let vendor = try Vendor()
        let strict = self.rp(AttestationPolicy(mode: .attested, trustAnchors: [vendor.root], allowedAAGUIDs: [Self.aaguid]))
        let other = try Vendor()
        let cases: [(String, [UInt8], RelyingParty)] = [
            ("no attestation", TestAuthenticator().registration(challenge: self.challenge), strict),
            ("model not on the allowlist", Self.packed(vendor, challenge: self.challenge, aaguid: Array(repeating: 0xEE, count: 16)), strict),
            ("another vendor's chain", Self.packed(other, challenge: self.challenge), strict),
            ("tampered statement signature", Self.packed(vendor, challenge: self.challenge, tamper: true), strict),
            (
                "certificate AAGUID differs", Self.packed(try Vendor(aaguid: Array(repeating: 1, count: 16)), challenge: self.challenge),
                self.rp(.anyAuthenticator)
            ),
            ("wrong OU", Self.packed(try Vendor(ou: "Marketing"), challenge: self.challenge), self.rp(.anyAuthenticator)),
            ("attestation certificate is a CA", Self.packed(try Vendor(ca: true), challenge: self.challenge), self.rp(.anyAuthenticator)),
            ("no trust anchors configured", Self.packed(vendor, challenge: self.challenge), self.rp(AttestationPolicy(mode: .attested))),
        ]
        for (name, json, rp) in cases {
            do {
                _ = try await self.register(rp, json)
                Issue.record("\(name): accepted")
            } catch {
                #expect(error.code == .attestationInvalid, "\(name): \(error)")
            }
        }
        // x5c that is not a certificate at all.
        let garbage = Self.registration(fmt: "packed", challenge: self.challenge) { _, _, _, _, _ in
            .map([(.text("alg"), .negative(-7)), (.text("sig"), .bytes([1])), (.text("x5c"), .array([.bytes([0x30, 0x03, 0x02, 0x01, 0x01])]))])
        }
        await #expect(throws: WebAuthnError.self) { try await self.register(self.rp(.anyAuthenticator), garbage) }
    }
}
