import Crypto
import Foundation
import GatehouseCore
import GatehousePKI
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// Every request is checked before the policy is asked: its own signature, its key type, and
/// that it asks for nothing Gatehouse would not issue anyway. Hostile input gets a clear error.
@Suite("Certificate signing requests")
struct SigningRequestTests {
    static func der(
        _ key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm? = nil,
        @ExtensionsBuilder extensions: () throws -> Result<Certificate.Extensions, any Error> = { .success(Certificate.Extensions()) },
        extraAttribute: Bool = false
    ) throws -> [UInt8] {
        var attributes = CertificateSigningRequest.Attributes()
        let ext = try extensions().get()
        if !ext.isEmpty { attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: ext))) }
        if extraAttribute {
            attributes.insert(
                CertificateSigningRequest.Attribute(oid: [1, 2, 840, 113549, 1, 9, 7], values: [try ASN1Any(erasing: ASN1UTF8String("password"))]))
        }
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: key, attributes: attributes,
            signatureAlgorithm: algorithm ?? (key.publicKey.pkiAlgorithm == .ed25519 ? .ed25519 : .ecdsaWithSHA256))
        var s = DER.Serializer()
        try s.serialize(csr)
        return s.serializedBytes
    }

    static let p256 = Certificate.PrivateKey(P256.Signing.PrivateKey())

    /// A correctly signed request with two extension-request attributes, the second asking to be
    /// a CA. swift-certificates keeps one attribute per type (its API cannot even build this), so
    /// it is put together from DER here.
    static func twoExtensionRequests() throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        func parts(_ der: [UInt8]) throws -> [ASN1Node] {
            guard case .constructed(let top) = try DER.parse(der).content, case .constructed(let info) = Array(top)[0].content else {
                throw GatehouseError(.internal, "csr")
            }
            return Array(info)
        }
        func attribute(_ der: [UInt8]) throws -> ArraySlice<UInt8> {
            guard case .constructed(let attrs) = try parts(der)[3].content else { throw GatehouseError(.internal, "attrs") }
            return Array(attrs)[0].encodedBytes
        }
        let san = try Self.der(Certificate.PrivateKey(key)) { SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://corp.example/a")]) }
        let ca = try Self.der(Certificate.PrivateKey(key)) { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) }
        let info = try parts(san)
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { c in
            for node in info.prefix(3) { c.serializeRawBytes(node.encodedBytes) }
            try c.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { a in
                // DER orders a SET OF by encoding; in that order, so only the repetition is wrong.
                for encoded in try [attribute(san), attribute(ca)].sorted(by: { $0.lexicographicallyPrecedes($1) }) { a.serializeRawBytes(encoded) }
            }
        }
        let signature = try key.signature(for: tbs.serializedBytes).derRepresentation
        var out = DER.Serializer()
        try out.appendConstructedNode(identifier: .sequence) { c in
            c.serializeRawBytes(tbs.serializedBytes[...])
            try c.appendConstructedNode(identifier: .sequence) { a in
                let oid: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
                try a.serialize(oid)
            }
            try c.serialize(ASN1BitString(bytes: ArraySlice(signature)))
        }
        return out.serializedBytes
    }

    @Test("a P-256 request with a SPIFFE ID, DNS and IP names, in PEM and DER")
    func accepted() throws {
        let der = try Self.der(Self.p256) {
            SubjectAlternativeNames([
                .uniformResourceIdentifier("spiffe://corp.example/api"), .dnsName("api.corp.example"),
                .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 7])),
            ])
            try ExtendedKeyUsage([.serverAuth])
        }
        for input in [der, Array(PEM.encode(der, label: "CERTIFICATE REQUEST").utf8)] {
            let request = try SigningRequest(pemOrDER: input)
            #expect(request.algorithm == .p256 && request.spiffeID == "spiffe://corp.example/api")
            #expect(request.dnsNames == ["api.corp.example"] && request.ipAddresses.map(\.description) == ["10.0.0.7"])
        }
        let ed = try SigningRequest(der: try Self.der(Certificate.PrivateKey(Curve25519.Signing.PrivateKey())))
        #expect(ed.algorithm == .ed25519 && ed.spiffeID == nil)
    }

    static func refusal(_ bytes: [UInt8]) -> String {
        do {
            _ = try SigningRequest(pemOrDER: bytes)
            return "accepted"
        } catch {
            return error.message
        }
    }

    @Test("refused with a clear error: bad signature, RSA, P-384, CA, other usages, unknown extension or attribute, junk, oversize")
    func refused() throws {
        var tampered = try Self.der(Self.p256) { SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://corp.example/api")]) }
        // Change one byte inside the URI: the DER stays valid, the signature does not.
        let index = tampered.lastIndex(of: UInt8(ascii: "a"))!
        tampered[index] = UInt8(ascii: "b")
        #expect(Self.refusal(tampered).contains("signature does not verify"))
        let rsa = try Self.der(Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048)), algorithm: .sha256WithRSAEncryption)
        #expect(Self.refusal(rsa).contains("unsupported key"))
        let p384 = try Self.der(Certificate.PrivateKey(P384.Signing.PrivateKey()), algorithm: .ecdsaWithSHA384)
        #expect(Self.refusal(p384).contains("unsupported key"))
        #expect(Self.refusal(try Self.der(Self.p256) { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) }).contains("CA"))
        #expect(Self.refusal(try Self.der(Self.p256) { try ExtendedKeyUsage([.codeSigning]) }).contains("extended key usage"))
        #expect(Self.refusal(try Self.der(Self.p256) { KeyUsage(digitalSignature: true, keyCertSign: true) }).contains("key usages"))
        #expect(Self.refusal(try Self.der(Self.p256) { SubjectAlternativeNames([.rfc822Name("a@b.c")]) }).contains("only URI, DNS and IP"))
        #expect(
            Self.refusal(try Self.der(Self.p256) { SubjectAlternativeNames([.uniformResourceIdentifier("https://corp.example/")]) }).contains(
                "not a SPIFFE ID"))
        #expect(
            Self.refusal(
                try Self.der(Self.p256) {
                    SubjectAlternativeNames([
                        .uniformResourceIdentifier("spiffe://corp.example/a"), .uniformResourceIdentifier("spiffe://corp.example/b"),
                    ])
                }
            ).contains("exactly one"))
        #expect(Self.refusal(try Self.der(Self.p256) { SubjectAlternativeNames([.dnsName("Bad_Name.example")]) }).contains("DNS name"))
        #expect(Self.refusal(try Self.der(Self.p256) { SubjectKeyIdentifier(keyIdentifier: [1, 2, 3]) }).contains("does not issue"))
        #expect(Self.refusal(try Self.der(Self.p256, extraAttribute: true)).contains("attribute"))
        let twice = Self.refusal(try Self.twoExtensionRequests())
        #expect(twice.contains("repeats an attribute"), "\(twice)")
        #expect(Self.refusal(try Self.der(Self.p256, algorithm: .ecdsaWithSHA384)).contains("does not fit"))
        #expect(Self.refusal(Array(repeating: 0x30, count: 9000)).contains("over"))
        #expect(Self.refusal([0x30, 0x03, 0x02, 0x01, 0x00]).contains("PKCS#10"))
        #expect(Self.refusal(Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8)).contains("CERTIFICATE REQUEST"))
        #expect(Self.refusal(Array("hello".utf8)).contains("PEM"))
        #expect(Self.refusal([0xFF, 0xFE, 0x00]).contains("neither PEM nor DER"))
        let many = try Self.der(Self.p256) { SubjectAlternativeNames((0..<40).map { .dnsName("h\($0).corp.example") }) }
        #expect(Self.refusal(many).contains("more than"))
    }

    @Test("every truncation and single-byte corruption is refused or parsed, never a crash")
    func mutations() throws {
        let der = try Self.der(Self.p256) { SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://corp.example/api")]) }
        var accepted = 0
        for n in 0..<der.count where (try? SigningRequest(der: Array(der.prefix(n)))) != nil { accepted += 1 }
        for i in 0..<der.count {
            var copy = der
            copy[i] ^= 0x55
            if (try? SigningRequest(der: copy)) != nil { accepted += 1 }
        }
        #expect(accepted == 0)
    }
}
