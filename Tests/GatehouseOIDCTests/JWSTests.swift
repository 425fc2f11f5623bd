import Crypto
import Foundation
import GatehouseCore
import GatehouseOIDC
import Testing

/// JWS signing and verification: RFC test vectors pin the bytes, Wycheproof checks the
/// signature primitives, and a battery of hostile tokens shows what the verifier refuses.
@Suite("JWS")
struct JWSTests {
    // RFC 8037 Appendix A.1: the Ed25519 example key.
    static let rfc8037D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    static let rfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

    static func rfc8037Signer() throws -> TokenSigner {
        TokenSigner(key: try SigningKey(algorithm: .ed25519, rawPrivate: #require(Base64URL.decode(Self.rfc8037D))))
    }

    @Test("RFC 8037 A.3: the Ed25519 key's public JWK and its RFC 7638 thumbprint")
    func rfc8037Thumbprint() throws {
        let signer = try Self.rfc8037Signer()
        #expect(signer.jwk.x == Self.rfc8037X)
        #expect(signer.jwk.thumbprint == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        #expect(signer.kid == signer.jwk.thumbprint)
    }

    @Test("RFC 8037 A.4: Ed25519 signing is byte for byte the RFC's")
    func rfc8037Signature() throws {
        let token = try Self.rfc8037Signer().signCompact(
            protectedHeader: Array(#"{"alg":"EdDSA"}"#.utf8), payload: Array("Example of Ed25519 signing".utf8))
        #expect(
            token
                == "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        )
    }

    @Test("RFC 7515 A.3: the ES256 example signature verifies with the example key")
    func rfc7515ES256() throws {
        let jwk = JWK(
            kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: nil,
            alg: nil, use: nil)
        let key = try jwk.verificationKey()
        let input = Array("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ".utf8)
        let signature = try #require(Base64URL.decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"))
        #expect(key.isValidSignature(signature, for: input))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!key.isValidSignature(flipped, for: input))
    }

    @Test("sign then verify, for both algorithms, naming the kid", arguments: [KeyAlgorithm.p256, .ed25519])
    func roundTrip(_ algorithm: KeyAlgorithm) throws {
        let signer = TokenSigner(key: SigningKey.generate(algorithm, using: SeededRandomSource(seed: 7)))
        let token = signer.sign(payload: Array(#"{"sub":"u1"}"#.utf8))
        let verified = try JWS.verify(token, keys: [signer.kid: try signer.jwk.verificationKey()])
        #expect(verified.payload == Array(#"{"sub":"u1"}"#.utf8))
        #expect(verified.kid == signer.kid)
        #expect(verified.type == "JWT")
        #expect(verified.algorithm == (algorithm == .p256 ? .es256 : .edDSA))
    }

    static func forge(header: String, payload: String = #"{"sub":"u1"}"#, signature: [UInt8] = Array(repeating: 1, count: 64)) -> String {
        "\(Base64URL.encode(Array(header.utf8))).\(Base64URL.encode(Array(payload.utf8))).\(Base64URL.encode(signature))"
    }

    @Test("hostile tokens are refused with a clear reason")
    func hostile() throws {
        let signer = TokenSigner(key: SigningKey.generate(.p256, using: SeededRandomSource(seed: 1)))
        let other = TokenSigner(key: SigningKey.generate(.p256, using: SeededRandomSource(seed: 2)))
        let keys = [signer.kid: try signer.jwk.verificationKey()]
        let good = signer.sign(payload: Array("{}".utf8))
        let parts = good.split(separator: ".").map(String.init)
        let hmac = HMAC<SHA256>.authenticationCode(for: Array("\(parts[0]).\(parts[1])".utf8), using: SymmetricKey(data: Array(signer.jwk.x.utf8)))
        let cases: [(String, String)] = [
            (Self.forge(header: #"{"alg":"none","kid":"\#(signer.kid)"}"#, signature: []), "not accepted"),
            (Self.forge(header: #"{"alg":"HS256","kid":"\#(signer.kid)"}"#, signature: Array(hmac)), "not accepted"),
            (Self.forge(header: #"{"alg":"RS256","kid":"\#(signer.kid)"}"#), "not accepted"),
            (Self.forge(header: #"{"alg":"ES256"}"#), "names no key"),
            (Self.forge(header: #"{"alg":"ES256","kid":"nope"}"#), "unknown key"),
            (Self.forge(header: #"{"alg":"EdDSA","kid":"\#(signer.kid)"}"#), "does not match"),
            (Self.forge(header: #"{"alg":"ES256","kid":"\#(signer.kid)","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b"}}"#), "not accepted"),
            (Self.forge(header: #"{"alg":"ES256","kid":"\#(signer.kid)","crit":["exp"]}"#), "not accepted"),
            (Self.forge(header: #"{"alg":"ES256","kid":"\#(signer.kid)"}"#), "signature is invalid"),
            (other.sign(payload: Array("{}".utf8)), "unknown key"),
            ("\(parts[0]).\(parts[1]).\(parts[2])=", "base64url"),
            ("\(parts[0]).\(parts[1])", "three parts"),
            ("\(parts[0]).\(parts[1]).\(parts[2]).x", "three parts"),
            ("\(Base64URL.encode(Array("[1]".utf8))).\(parts[1]).\(parts[2])", "JSON object"),
            (String(repeating: "a", count: JWS.maxTokenSize + 1), "too large"),
            ("", "three parts"),
        ]
        for (token, reason) in cases {
            #expect(throws: OAuthError.self) { try JWS.verify(token, keys: keys) }
            do {
                _ = try JWS.verify(token, keys: keys)
            } catch {
                #expect(error.code == .invalidToken)
                #expect(error.description.contains(reason), "\(token.prefix(60)): \(error.description)")
            }
        }
        // The payload cannot be swapped under a valid signature.
        let swapped = "\(parts[0]).\(Base64URL.encode(Array(#"{"sub":"admin"}"#.utf8))).\(parts[2])"
        #expect(throws: OAuthError.self) { try JWS.verify(swapped, keys: keys) }
        #expect(try JWS.verify(good, keys: keys).payload == Array("{}".utf8))
    }

    @Test("a JWK of another type or a malformed point is refused")
    func badKeys() {
        let bad = [
            JWK(kty: "RSA", crv: "", x: "AQAB", y: nil, kid: "r", alg: nil, use: nil),
            JWK(kty: "EC", crv: "P-384", x: "AA", y: "AA", kid: nil, alg: nil, use: nil),
            JWK(
                kty: "EC", crv: "P-256", x: Base64URL.encode([UInt8](repeating: 0, count: 32)), y: Base64URL.encode([UInt8](repeating: 0, count: 32)),
                kid: nil, alg: nil, use: nil),
            JWK(kty: "OKP", crv: "Ed25519", x: "short", y: nil, kid: nil, alg: nil, use: nil),
            JWK(kty: "OKP", crv: "Ed25519", x: JWSTests.rfc8037X, y: nil, kid: nil, alg: nil, use: "enc"),
        ]
        for jwk in bad {
            #expect(throws: OAuthError.self) { try jwk.verificationKey() }
        }
    }
}

@Suite("Proxy tickets")
struct ProxyTicketTests {
    @Test("a ticket verifies for its app until it expires; tampering and other keys fail")
    func tickets() {
        let key = [UInt8](repeating: 3, count: 32)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let ticket = ProxyTicket(sessionHash: "abc", app: "wiki", expiresAt: now.addingTimeInterval(60), nonce: "n1")
        let text = ticket.encode(key: key)
        #expect(ProxyTicket.verify(text, app: "wiki", key: key, now: now) == ticket)
        #expect(ProxyTicket.verify(text, app: "grafana", key: key, now: now) == nil)
        #expect(ProxyTicket.verify(text, app: "wiki", key: key, now: now.addingTimeInterval(61)) == nil)
        #expect(ProxyTicket.verify(text, app: "wiki", key: [UInt8](repeating: 4, count: 32), now: now) == nil)
        let forged = ProxyTicket(sessionHash: "other", app: "wiki", expiresAt: now.addingTimeInterval(60), nonce: "n1").encode(
            key: [UInt8](repeating: 9, count: 32))
        #expect(ProxyTicket.verify(forged, app: "wiki", key: key, now: now) == nil)
        for junk in ["", ".", "a.b", String(repeating: "x", count: 600), text + "x", "x" + text] {
            #expect(ProxyTicket.verify(junk, app: "wiki", key: key, now: now) == nil)
        }
    }
}
