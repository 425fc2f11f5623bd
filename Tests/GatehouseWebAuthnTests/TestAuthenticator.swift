import Crypto
import Foundation
import GatehouseCore
import GatehouseWebAuthn

/// A software authenticator and browser, written from the specification, for driving the relying
/// party through whole ceremonies, including ones no honest authenticator would produce.
struct TestAuthenticator {
    enum KeyKind { case p256, ed25519 }

    let p256 = P256.Signing.PrivateKey()
    let ed25519 = Curve25519.Signing.PrivateKey()
    let kind: KeyKind
    let credentialID: [UInt8]
    let userHandle: [UInt8]
    var counter: UInt32 = 0

    init(
        _ kind: KeyKind = .p256, credentialID: [UInt8] = Array((0..<16).map { UInt8($0 * 7 & 0xFF) }),
        userHandle: [UInt8] = Array(repeating: 0xAB, count: 16)
    ) {
        self.kind = kind
        self.credentialID = credentialID
        self.userHandle = userHandle
    }

    /// What an ordinary browser and authenticator would send, each field open to tampering.
    struct Options {
        var rpID = "localhost"
        var origin = "http://localhost:8080"
        var type: String? = nil
        var flags: UInt8 = 0x01 | 0x04  // UP | UV
        var counter: UInt32? = nil
        var format = "none"
        var crossOrigin: Bool? = nil
        var tamperSignature = false
        var trailing: [UInt8] = []
        var idOverride: [UInt8]? = nil
    }

    var coseKey: [UInt8] {
        switch self.kind {
        case .p256:
            let raw = Array(self.p256.publicKey.x963Representation)
            return CBOREncoder.encode(
                .map([
                    (.unsigned(1), .unsigned(2)), (.unsigned(3), .negative(-7)), (.negative(-1), .unsigned(1)),
                    (.negative(-2), .bytes(Array(raw[1..<33]))), (.negative(-3), .bytes(Array(raw[33..<65]))),
                ]))
        case .ed25519:
            return CBOREncoder.encode(
                .map([
                    (.unsigned(1), .unsigned(1)), (.unsigned(3), .negative(-8)), (.negative(-1), .unsigned(6)),
                    (.negative(-2), .bytes(Array(self.ed25519.publicKey.rawRepresentation))),
                ]))
        }
    }

    func sign(_ message: [UInt8]) -> [UInt8] {
        switch self.kind {
        case .p256: return Array(try! self.p256.signature(for: message).derRepresentation)
        case .ed25519: return Array(try! self.ed25519.signature(for: message))
        }
    }

    func authData(_ o: Options, attested: Bool) -> [UInt8] {
        var out = Array(SHA256.hash(data: Array(o.rpID.utf8)))
        out.append(o.flags | (attested ? 0x40 : 0))
        let c = o.counter ?? self.counter
        out += [UInt8(c >> 24), UInt8(c >> 16 & 0xFF), UInt8(c >> 8 & 0xFF), UInt8(c & 0xFF)]
        if attested {
            out += Array(repeating: 0, count: 16)
            out += [UInt8(self.credentialID.count >> 8), UInt8(self.credentialID.count & 0xFF)] + self.credentialID + self.coseKey
        }
        return out + o.trailing
    }

    func clientData(_ o: Options, type: String, challenge: [UInt8]) -> [UInt8] {
        var object: [String: Any] = ["type": o.type ?? type, "challenge": Base64URL.encode(challenge), "origin": o.origin]
        if let c = o.crossOrigin { object["crossOrigin"] = c }
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    func registration(challenge: [UInt8], _ o: Options = Options()) -> [UInt8] {
        let clientData = self.clientData(o, type: "webauthn.create", challenge: challenge)
        let auth = self.authData(o, attested: true)
        var statement: [(key: CBORValue, value: CBORValue)] = []
        if o.format == "packed" {
            var sig = self.sign(auth + Array(SHA256.hash(data: clientData)))
            if o.tamperSignature { sig[sig.count - 1] ^= 1 }
            statement = [(.text("alg"), .negative(self.kind == .p256 ? -7 : -8)), (.text("sig"), .bytes(sig))]
        }
        let attestation = CBOREncoder.encode(
            .map([(.text("fmt"), .text(o.format)), (.text("attStmt"), .map(statement)), (.text("authData"), .bytes(auth))]))
        let id = Base64URL.encode(o.idOverride ?? self.credentialID)
        return Self.json([
            "id": id, "rawId": id, "type": "public-key",
            "response": [
                "clientDataJSON": Base64URL.encode(clientData), "attestationObject": Base64URL.encode(attestation), "transports": ["internal"],
            ],
            "clientExtensionResults": [String: Any](),
        ])
    }

    mutating func assertion(challenge: [UInt8], _ o: Options = Options(), userHandle: [UInt8]? = nil) -> [UInt8] {
        self.counter += 1
        let clientData = self.clientData(o, type: "webauthn.get", challenge: challenge)
        let auth = self.authData(o, attested: false)
        var sig = self.sign(auth + Array(SHA256.hash(data: clientData)))
        if o.tamperSignature { sig[sig.count / 2] ^= 0x40 }
        let id = Base64URL.encode(o.idOverride ?? self.credentialID)
        var response: [String: Any] = [
            "clientDataJSON": Base64URL.encode(clientData), "authenticatorData": Base64URL.encode(auth), "signature": Base64URL.encode(sig),
        ]
        if let h = userHandle ?? self.userHandle as [UInt8]? { response["userHandle"] = Base64URL.encode(h) }
        return Self.json(["id": id, "rawId": id, "type": "public-key", "response": response])
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
