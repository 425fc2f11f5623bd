import Crypto
import Foundation
import GatehouseCore
import Testing

/// The private network's address plan (docs/network.md), WireGuard keys and endpoints.
@Suite("Network addressing and keys")
struct NetworkAddressingTests {
    @Test
    func thePlanIsTheDocumentedOne() throws {
        let plan = MeshAddressing(trustDomain: "corp.example")
        // fd + the first 40 bits of SHA-256("gatehouse ula corp.example"), a /48.
        var base = UInt128(0xFD)
        for b in Array(SHA256.hash(data: Array("gatehouse ula corp.example".utf8))).prefix(5) { base = base << 8 | UInt128(b) }
        #expect(plan.prefix.base == base << 80 && plan.prefix.length == 48 && !plan.prefix.isIPv4)
        #expect(plan.prefix.contains(plan.devicePrefix) && plan.devicePrefix.length == 64 && plan.devicePrefix.base == plan.prefix.base)
        #expect(plan.deviceAddress(index: 1).base == plan.prefix.base + 1 && plan.deviceAddress(index: 1).isSingleAddress)
        let acme = plan.organizationPrefix("acme")
        #expect(acme.length == 64 && plan.prefix.contains(acme) && acme != plan.devicePrefix)
        let web = plan.hostAddress(organization: "acme", host: "web-1")
        #expect(acme.contains(web) && web == plan.hostAddress(organization: "acme", host: "web-1"))
        #expect(web != plan.hostAddress(organization: "acme", host: "web-2"))
        // Organizations' subnets are 1...FFFE, never the devices' 0 and never FFFF.
        for i in 0..<5000 {
            let s = MeshAddressing.subnet(organization: "org-\(i)")
            #expect(s >= 1 && s <= 0xFFFE)
        }
        // Another trust domain, another /48.
        #expect(MeshAddressing(trustDomain: "other.example").prefix != plan.prefix)
    }

    @Test
    func anOperatorsPrefixMustBeAULA48() throws {
        #expect(try MeshAddressing(prefix: IPPrefix(parsing: "fd12:3456:789a::/48")).prefix.description == "fd12:3456:789a::/48")
        for bad in ["fd12:3456::/32", "2001:db8::/48", "fc00::/48", "10.0.0.0/8", "fd12:3456:789a:1::/64"] {
            #expect(throws: GatehouseError.self) { try MeshAddressing(prefix: IPPrefix(parsing: bad)) }
        }
    }

    @Test
    func wireGuardKeysAreExactly32BytesOfCanonicalBase64() throws {
        let key = Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        #expect(try WireGuardKey(base64: key).description == key)
        // The last character before '=' carries 4 bits of the key and 2 of padding: set one.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var nonCanonical = Array(key)
        nonCanonical[42] = alphabet[alphabet.firstIndex(of: nonCanonical[42])! ^ 1]
        let bad = [
            "", "AAAA", String(repeating: "A", count: 43) + "=", key + "=", String(key.dropLast()) + "!", String(repeating: "/", count: 44),
            String(nonCanonical), Data(Array(repeating: 1, count: 31)).base64EncodedString(),
            Data(Array(repeating: 1, count: 33)).base64EncodedString(),
        ]
        for text in bad where text != key {
            #expect(throws: GatehouseError.self, "\(text)") { try WireGuardKey(base64: text) }
        }
        let decoded = try JSONDecoder().decode([WireGuardKey].self, from: Data("[\"\(key)\"]".utf8))
        #expect(decoded.first?.description == key)
        #expect(throws: (any Error).self) { try JSONDecoder().decode([WireGuardKey].self, from: Data("[\"nope\"]".utf8)) }
    }

    @Test
    func endpoints() {
        for good in ["10.0.0.1:51820", "gw.example.org:1", "[fd00::1]:65535"] { #expect(NetworkEndpoint.isValid(good), "\(good)") }
        for bad in [
            "10.0.0.1", "10.0.0.1:0", "10.0.0.1:65536", ":51820", "[fd00::1]", "[10.0.0.1]:1", "[fd00::/64]:1", "a b:1", "a;b:1", "a\nb:1",
            "host:+1", "host:٣", String(repeating: "a", count: 252) + ":123",
        ] {
            #expect(!NetworkEndpoint.isValid(bad), "\(bad)")
        }
    }
}
