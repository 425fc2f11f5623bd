import Crypto
import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseWebAuthn

/// Passkey verification: a whole ES256 assertion check (JSON and CBOR parsing, client data,
/// flags, COSE key, signature, counter) next to the bare P-256 signature check it contains,
/// then complete sign-ins (options + verify + session) through the service on the in-memory store.
enum WebAuthnBench {
    static func run() async throws {
        let rp = RelyingParty(id: "localhost", name: "bench", origins: ["http://localhost:8080"])
        let key = P256.Signing.PrivateKey()
        let raw = Array(key.publicKey.x963Representation)
        let cose = CBOREncoder.encode(
            .map([
                (.unsigned(1), .unsigned(2)), (.unsigned(3), .negative(-7)), (.negative(-1), .unsigned(1)),
                (.negative(-2), .bytes(Array(raw[1..<33]))), (.negative(-3), .bytes(Array(raw[33..<65]))),
            ]))
        let id = Array(repeating: UInt8(7), count: 16)
        let challenge = Array(repeating: UInt8(3), count: 32)
        let auth = Array(SHA256.hash(data: Array("localhost".utf8))) + [0x05, 0, 0, 0, 9]
        let client = Array(#"{"type":"webauthn.get","challenge":"\#(Base64URL.encode(challenge))","origin":"http://localhost:8080"}"#.utf8)
        let message = auth + Array(SHA256.hash(data: client))
        let signature = try key.signature(for: message)
        let der = Array(signature.derRepresentation)
        let json = Array(
            #"{"id":"\#(Base64URL.encode(id))","rawId":"\#(Base64URL.encode(id))","type":"public-key","response":{"clientDataJSON":"\#(Base64URL.encode(client))","authenticatorData":"\#(Base64URL.encode(auth))","signature":"\#(Base64URL.encode(der))"}}"#
                .utf8)
        let stored = RelyingParty.StoredCredential(id: id, publicKey: cose, signCount: 1, backupEligible: false, userHandle: [1])

        func rate(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
            var best = 0.0
            for _ in 0..<5 {
                let start = ContinuousClock.now
                for _ in 0..<n { try body() }
                let d = ContinuousClock.now - start
                best = max(best, Double(n) / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18))
            }
            return best
        }
        let full = try rate(2000) {
            _ = try rp.verifyAuthentication(try AuthenticationResponse(json: json), challenge: challenge, credential: stored)
        }
        let bare = rate(2000) { _ = key.publicKey.isValidSignature(signature, for: message) }
        if ProcessInfo.processInfo.environment["WEBAUTHN_BENCH_PHASES"] != nil {
            print(
                "  phases /s: COSE key parse", Int(try rate(2000) { _ = try COSEKey(encoded: cose) }),
                " response JSON", Int(try rate(2000) { _ = try AuthenticationResponse(json: json) }),
                " client data", Int(try rate(2000) { _ = try CollectedClientData(client) }),
                " DER parse", Int(try rate(2000) { _ = try P256.Signing.ECDSASignature(derRepresentation: der) }))
        }
        print("")
        print("passkeys: one core, best of 5 rounds")
        print(
            String(
                format: "  ES256 assertion, full relying-party check   %8.0f /s   baseline: bare P-256 verify %8.0f /s   ratio %.2fx", full, bare,
                bare / full))

        // Complete sign-ins through the service: begin (options) and finish (verify, counter, session, audit).
        let store = InMemoryStore()
        let env = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        try await store.commit { tx in
            try await tx.insertUser(
                User(id: "u1", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Date()))
            try await tx.insertCredential(
                CredentialRecord(
                    id: id, userID: "u1", userHandle: Array("u1".utf8), publicKey: cose, algorithm: -7, signCount: 0,
                    backupEligible: false, backedUp: false, aaguid: Array(repeating: 0, count: 16),
                    attestationFormat: "none", transports: [], createdAt: Date(), lastUsedAt: nil))
            return Change((), event: AuditEvent(code: .userCreated, time: Date(), actor: "bench", subject: "user:alice"))
        }
        let service = PasskeyService(
            environment: env, relyingParty: rp, ceremonies: CeremonyStore(time: env.time, random: env.random, capacity: 1_000_000),
            decoySecret: [1, 2, 3])
        // No enumeration by timing: sign-in options for a known and an unknown name, interleaved
        // so that neither runs against a fuller ceremony table than the other.
        var knownSamples: [Double] = []
        var unknownSamples: [Double] = []
        for i in 0..<4000 {
            let name = i % 2 == 0 ? "alice" : "ghost"
            let t0 = ContinuousClock.now
            _ = try await service.beginSignIn(username: name)
            let d = ContinuousClock.now - t0
            let us = Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6
            if i % 2 == 0 { knownSamples.append(us) } else { unknownSamples.append(us) }
        }
        let known = knownSamples.sorted()[knownSamples.count / 2]
        let unknown = unknownSamples.sorted()[unknownSamples.count / 2]
        print(
            String(
                format: "  sign-in options, known name %.1f µs   baseline: unknown name (decoy) %.1f µs   ratio %.2fx", known, unknown,
                known / unknown))

        var latencies: [Double] = []
        let total = 2000
        let start = ContinuousClock.now
        for i in 1...total {
            let t0 = ContinuousClock.now
            let (ceremony, options) = try await service.beginSignIn(username: "alice")
            let auth =
                Array(SHA256.hash(data: Array("localhost".utf8))) + [
                    0x05, UInt8(i >> 24 & 0xFF), UInt8(i >> 16 & 0xFF), UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF),
                ]
            let client = Array(#"{"type":"webauthn.get","challenge":"\#(options.challenge)","origin":"http://localhost:8080"}"#.utf8)
            let sig = Array(try key.signature(for: auth + Array(SHA256.hash(data: client))).derRepresentation)
            let body = Array(
                #"{"id":"\#(Base64URL.encode(id))","rawId":"\#(Base64URL.encode(id))","type":"public-key","response":{"clientDataJSON":"\#(Base64URL.encode(client))","authenticatorData":"\#(Base64URL.encode(auth))","signature":"\#(Base64URL.encode(sig))"}}"#
                    .utf8)
            _ = try await service.finishSignIn(ceremony: ceremony, credential: body, requestID: nil, sourceAddress: nil)
            let d = ContinuousClock.now - t0
            latencies.append(Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12)
        }
        let elapsed = ContinuousClock.now - start
        latencies.sort()
        let perSecond = Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        print(
            String(
                format:
                    "  sign-in (options + verify + session), memory store  %6.0f /s   p50 %5.0f µs   p99 %5.0f µs   (includes the test authenticator's own signing)",
                perSecond, latencies[total / 2], latencies[total * 99 / 100]))
    }
}
