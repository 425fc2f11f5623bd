import Crypto
import Foundation
import GatehouseCore
import GatehousePKI
import SwiftASN1
import Testing
import X509
import _CryptoExtras

@Suite("X.509 authority: chains, name constraints, requests, CRL")
struct AuthorityTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let random = SeededRandomSource(seed: 9)

    struct CA {
        let rootKey: SigningKey
        let root: Certificate
        let key: SigningKey
        let intermediate: Certificate
    }

    static func authority(_ algorithm: KeyAlgorithm = .p256, trustDomain: String = "corp.example") throws -> CA {
        let rootKey = SigningKey.generate(algorithm, using: Self.random)
        let root = try Authority.root(key: rootKey, trustDomain: trustDomain, serial: Authority.randomSerial(using: Self.random), now: Self.now)
        let key = SigningKey.generate(algorithm, using: Self.random)
        let intermediate = try Authority.intermediate(
            publicKey: key.certificatePrivateKey.publicKey, trustDomain: trustDomain, root: root, rootKey: rootKey,
            serial: Authority.randomSerial(using: Self.random), now: Self.now)
        return CA(rootKey: rootKey, root: root, key: key, intermediate: intermediate)
    }

    static func leaf(_ ca: CA, id: String = "spiffe://corp.example/host/web-1/api", key: SigningKey? = nil, lifetime: TimeInterval = 3600) throws
        -> Certificate
    {
        let k = key ?? SigningKey.generate(.p256, using: Self.random)
        return try Authority.leaf(
            publicKey: k.certificatePrivateKey.publicKey,
            profile: .init(spiffeID: id, dnsNames: ["api.corp.example"], ipAddresses: [try IPPrefix(parsing: "10.0.0.7")], lifetime: lifetime),
            issuer: ca.intermediate, issuerKey: ca.key, serial: Authority.randomSerial(using: Self.random), now: Self.now)
    }

    @Test("a leaf verifies through the intermediate to the root, for both key algorithms", arguments: [KeyAlgorithm.p256, .ed25519])
    func chainVerifies(algorithm: KeyAlgorithm) async throws {
        let ca = try Self.authority(algorithm)
        let leaf = try Self.leaf(ca)
        let result = await SPIFFELeafPolicy.verify(
            chain: [leaf, ca.intermediate], root: ca.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now)
        let (identity, _) = try result.get()
        #expect(identity.id == "spiffe://corp.example/host/web-1/api")
        #expect(leaf.notValidBefore == Self.now.addingTimeInterval(-60))
        #expect(leaf.subject == DistinguishedName())
        let names = Authority.names(of: leaf)
        #expect(names.dns == ["api.corp.example"] && names.ips == ["10.0.0.7"])
        #expect(try leaf.extensions.subjectAlternativeNames != nil)
        #expect(Authority.serialHex(leaf.serialNumber).count == 32)
        #expect(try ca.intermediate.extensions.nameConstraints?.permittedURIDomains.map { $0 } == ["corp.example"])
    }

    @Test("refused: another trust domain, expired, wrong root, a CA as leaf, a leaf as issuer")
    func refusals() async throws {
        let ca = try Self.authority()
        let other = try Self.authority(trustDomain: "other.example")
        // Name constraints: the intermediate for corp.example cannot vouch for other.example.
        let foreign = try Self.leaf(ca, id: "spiffe://other.example/x")
        let r1 = await SPIFFELeafPolicy.verify(
            chain: [foreign, ca.intermediate], root: ca.root, trustDomain: "other.example", usage: .clientAuth, time: Self.now)
        #expect(throws: GatehouseError.self) { try r1.get() }
        // Our own trust domain check, independent of name constraints.
        let theirs = try Self.leaf(other, id: "spiffe://other.example/x")
        let r2 = await SPIFFELeafPolicy.verify(
            chain: [theirs, other.intermediate], root: other.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now)
        #expect(throws: GatehouseError.self) { try r2.get() }
        let leaf = try Self.leaf(ca, lifetime: 3600)
        let r3 = await SPIFFELeafPolicy.verify(
            chain: [leaf, ca.intermediate], root: ca.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now.addingTimeInterval(7200))
        #expect(throws: GatehouseError.self) { try r3.get() }
        let r4 = await SPIFFELeafPolicy.verify(
            chain: [leaf, ca.intermediate], root: other.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now)
        #expect(throws: GatehouseError.self) { try r4.get() }
        let r5 = await SPIFFELeafPolicy.verify(
            chain: [ca.intermediate], root: ca.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now)
        #expect(throws: GatehouseError.self) { try r5.get() }
        // A leaf's key signing another "leaf": the first leaf is no CA.
        let leafKey = SigningKey.generate(.p256, using: Self.random)
        let issuerLeaf = try Self.leaf(ca, key: leafKey)
        let grandchild = try Authority.leaf(
            publicKey: SigningKey.generate(.p256, using: Self.random).certificatePrivateKey.publicKey,
            profile: .init(spiffeID: "spiffe://corp.example/evil"),
            issuer: issuerLeaf, issuerKey: leafKey, serial: Authority.randomSerial(using: Self.random), now: Self.now)
        let r6 = await SPIFFELeafPolicy.verify(
            chain: [grandchild, issuerLeaf, ca.intermediate], root: ca.root, trustDomain: "corp.example", usage: .clientAuth, time: Self.now)
        #expect(throws: GatehouseError.self) { try r6.get() }
    }

    @Test("the EKU and key usage checks that RFC 5280 verification leaves out")
    func usagePolicy() throws {
        let ca = try Self.authority()
        let key = SigningKey.generate(.p256, using: Self.random)
        func make(@ExtensionsBuilder _ build: () throws -> Result<Certificate.Extensions, any Error>) throws -> Certificate {
            try Certificate(
                version: .v3, serialNumber: Authority.randomSerial(using: Self.random), publicKey: key.certificatePrivateKey.publicKey,
                notValidBefore: Self.now, notValidAfter: Self.now + 3600, issuer: ca.intermediate.subject, subject: DistinguishedName(),
                signatureAlgorithm: .ecdsaWithSHA256, extensions: try build().get(), issuerPrivateKey: ca.key.certificatePrivateKey)
        }
        let serverOnly = try make {
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            Critical(SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://corp.example/a")]))
        }
        #expect(
            SPIFFELeafPolicy.failure(chain: [serverOnly, ca.intermediate], trustDomain: "corp.example", usage: .clientAuth)?.contains(
                "extended key usage") == true)
        #expect(SPIFFELeafPolicy.failure(chain: [serverOnly, ca.intermediate], trustDomain: "corp.example", usage: .serverAuth) == nil)
        let noDigital = try make {
            Critical(KeyUsage(keyEncipherment: true))
            try ExtendedKeyUsage([.clientAuth])
            Critical(SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://corp.example/a")]))
        }
        #expect(
            SPIFFELeafPolicy.failure(chain: [noDigital, ca.intermediate], trustDomain: "corp.example", usage: .clientAuth)?.contains(
                "digitalSignature") == true)
        let twoIDs = try make {
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth])
            Critical(
                SubjectAlternativeNames([
                    .uniformResourceIdentifier("spiffe://corp.example/a"), .uniformResourceIdentifier("spiffe://corp.example/b"),
                ]))
        }
        #expect(SPIFFELeafPolicy.failure(chain: [twoIDs, ca.intermediate], trustDomain: "corp.example", usage: .clientAuth) != nil)
    }

    @Test("serials are positive, 16 octets and random")
    func serials() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let s = Authority.randomSerial(using: SystemRandomSource())
            let bytes = Array(s.bytes)
            #expect(bytes.count == 16 && bytes[0] & 0x80 == 0 && bytes[0] != 0)
            seen.insert(Authority.serialHex(s))
        }
        #expect(seen.count == 1000)
    }

    @Test("CRL: DER structure, signature over the TBS, entries sorted")
    func crl() throws {
        let ca = try Self.authority()
        let list = RevocationList(
            entries: [.init(serialHex: "7f01", revokedAt: Self.now), .init(serialHex: "4a02", revokedAt: Self.now)], number: 7, thisUpdate: Self.now,
            nextUpdate: Self.now + 3600)
        let der = try list.der(issuer: ca.intermediate, key: ca.key)
        let root = try DER.parse(der)
        guard case .constructed(let parts) = root.content else {
            Issue.record("not a sequence")
            return
        }
        let nodes = Array(parts)
        #expect(nodes.count == 3)
        let tbs = Array(nodes[0].encodedBytes)
        let signature = try ASN1BitString(derEncoded: nodes[2])
        #expect(ca.intermediate.publicKey.isValidSignature(Array(signature.bytes), for: tbs, signatureAlgorithm: .ecdsaWithSHA256))
        guard case .constructed(let fields) = nodes[0].content else {
            Issue.record("tbs not a sequence")
            return
        }
        let f = Array(fields)
        #expect(try Int(derEncoded: f[0]) == 1)
        guard case .constructed(let revoked) = f[5].content else {
            Issue.record("no revoked list")
            return
        }
        let serials = try revoked.map { entry -> String in
            guard case .constructed(let e) = entry.content else { throw GatehouseError(.internal, "entry") }
            return Hex.encode(Array(try ArraySlice<UInt8>(derEncoded: Array(e)[0])))
        }
        #expect(serials == ["4a02", "7f01"])
    }
}

@Suite("Chains that verify to the root but break one of our rules")
struct RogueChainTests {
    @Test("a rogue intermediate without name constraints: other trust domain, server-only EKU, expired")
    func rogue() async throws {
        let ca = try AuthorityTests.authority()
        let rogueKey = SigningKey.generate(.p256, using: SystemRandomSource())
        let rogue = try Certificate(
            version: .v3, serialNumber: Authority.randomSerial(using: SystemRandomSource()), publicKey: rogueKey.certificatePrivateKey.publicKey,
            notValidBefore: AuthorityTests.now - 600, notValidAfter: AuthorityTests.now + 86400, issuer: ca.root.subject,
            subject: try DistinguishedName { CommonName("rogue") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            }, issuerPrivateKey: ca.rootKey.certificatePrivateKey)
        func leaf(
            _ id: String, eku: [ExtendedKeyUsage.Usage] = [.clientAuth], from: Date = AuthorityTests.now - 60, to: Date = AuthorityTests.now + 3600
        ) throws -> Certificate {
            try Certificate(
                version: .v3, serialNumber: Authority.randomSerial(using: SystemRandomSource()),
                publicKey: SigningKey.generate(.p256, using: SystemRandomSource()).certificatePrivateKey.publicKey,
                notValidBefore: from, notValidAfter: to, issuer: rogue.subject, subject: DistinguishedName(), signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(SubjectAlternativeNames([.uniformResourceIdentifier(id)]))
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage(eku)
                }, issuerPrivateKey: rogueKey.certificatePrivateKey)
        }
        func reason(_ c: Certificate) async -> String {
            switch await SPIFFELeafPolicy.verify(
                chain: [c, rogue], root: ca.root, trustDomain: "corp.example", usage: .clientAuth, time: AuthorityTests.now)
            {
            case .success: return "accepted"
            case .failure(let e): return e.message
            }
        }
        #expect(await reason(try leaf("spiffe://corp.example/ok")) == "accepted")
        #expect(await reason(try leaf("spiffe://other.example/x")).contains("trust domain other.example"))
        #expect(await reason(try leaf("spiffe://corp.example/x", eku: [.serverAuth])).contains("extended key usage"))
        let expired = await reason(try leaf("spiffe://corp.example/x", from: AuthorityTests.now - 7200, to: AuthorityTests.now - 3600))
        #expect(expired.contains("expired"), "\(expired)")
    }
}
