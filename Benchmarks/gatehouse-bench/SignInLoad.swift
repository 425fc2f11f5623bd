import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseCore
import NIOCore

/// A load generator for the sign-in endpoints of a running server: enrolls one passkey with the
/// bootstrap token, then `concurrency` clients sign in (options, then verify) as fast as they
/// can for `seconds`, and reports sign-ins per second and latency percentiles of a whole sign-in.
/// The passkey uses signature counter 0, as synced platform passkeys do, so concurrent
/// sign-ins do not trip the clone detection.
enum SignInLoad {
    static func run(url: String, origin: String, token: String, concurrency: Int, seconds: Double) async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let key = P256.Signing.PrivateKey()
        let id = Array(SHA256.hash(data: Array(key.publicKey.x963Representation)).prefix(16))
        let rpHash = Array(SHA256.hash(data: Array((URLComponents(string: origin)?.host ?? "localhost").utf8)))

        func post(_ path: String, _ body: [String: Any]) async throws -> (Int, [String: Any]) {
            var request = HTTPClientRequest(url: url + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            let response = try await client.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]) ?? [:])
        }

        func clientData(_ type: String, _ options: [String: Any]) -> [UInt8] {
            Array(#"{"type":"\#(type)","challenge":"\#(options["challenge"] as! String)","origin":"\#(origin)"}"#.utf8)
        }

        // Enroll.
        let (_, started) = try await post("/api/webauthn/registration/options", ["token": token])
        guard let options = started["publicKey"] as? [String: Any], let ceremony = started["ceremony"] as? String,
            let user = options["user"] as? [String: Any], let handle = user["id"] as? String
        else {
            throw GatehouseError(.invalidInput, "enrollment options not understood: \(started)")
        }
        let raw = Array(key.publicKey.x963Representation)
        let cose = [0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20] + Array(raw[1..<33]) + [0x22, 0x58, 0x20] + Array(raw[33..<65])
        let auth = rpHash + [0x45, 0, 0, 0, 0] + Array(repeating: 0, count: 16) + [0, UInt8(id.count)] + id + cose
        let client1 = clientData("webauthn.create", options)
        let attestation =
            [0xA3, 0x63] + Array("fmt".utf8) + [0x64] + Array("none".utf8) + [0x67] + Array("attStmt".utf8) + [0xA0, 0x68] + Array("authData".utf8)
            + [0x58, UInt8(auth.count)] + auth
        let (status, _) = try await post(
            "/api/webauthn/registration/verify",
            [
                "ceremony": ceremony,
                "credential": [
                    "id": Base64URL.encode(id), "rawId": Base64URL.encode(id), "type": "public-key",
                    "response": ["clientDataJSON": Base64URL.encode(client1), "attestationObject": Base64URL.encode(attestation)],
                ],
            ])
        guard status == 201 else { throw GatehouseError(.invalidInput, "enrollment failed with \(status)") }

        // Sign in, concurrently.
        let deadline = ContinuousClock.now + .seconds(seconds)
        let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var failures = 0
                    let signIn = rpHash + [0x05, 0, 0, 0, 0]
                    while ContinuousClock.now < deadline {
                        let start = ContinuousClock.now
                        let (_, started) = try await post("/api/webauthn/authentication/options", [:])
                        guard let options = started["publicKey"] as? [String: Any], let ceremony = started["ceremony"] as? String else {
                            failures += 1
                            continue
                        }
                        let client = clientData("webauthn.get", options)
                        let sig = Array(try key.signature(for: signIn + Array(SHA256.hash(data: client))).derRepresentation)
                        let (status, _) = try await post(
                            "/api/webauthn/authentication/verify",
                            [
                                "ceremony": ceremony,
                                "credential": [
                                    "id": Base64URL.encode(id), "rawId": Base64URL.encode(id), "type": "public-key",
                                    "response": [
                                        "clientDataJSON": Base64URL.encode(client), "authenticatorData": Base64URL.encode(signIn),
                                        "signature": Base64URL.encode(sig), "userHandle": handle,
                                    ],
                                ],
                            ])
                        let d = ContinuousClock.now - start
                        if status == 200 {
                            latencies.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                        } else {
                            failures += 1
                        }
                    }
                    return (latencies, failures)
                }
            }
            var all: [Double] = []
            var failures = 0
            for try await (l, f) in group {
                all += l
                failures += f
            }
            return (all.sorted(), failures)
        }
        let (latencies, failures) = results
        guard !latencies.isEmpty else { throw GatehouseError(.internal, "no sign-in succeeded (\(failures) failures)") }
        func p(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
        print(
            String(
                format: "sign-in over HTTP (options + verify), %d clients, %.0f s: %.0f sign-ins/s, p50 %.1f ms, p99 %.1f ms, %d failed",
                concurrency, seconds, Double(latencies.count) / seconds, p(0.5), p(0.99), failures))
    }
}
