import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseSSH
import GatehouseWebAuthn
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import GatehouseHTTP

/// The HTTP kit's error middleware: whatever a route throws becomes its answer in one place,
/// with the status, code, message and headers the error carries, never parsed from words.
@Suite("Coded error middleware")
struct CodedErrorMiddlewareTests {
    struct Opaque: Error { let secret = "db password hunter2" }

    static func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: CodedErrorMiddleware())
        router.get("/limited") { _, _ -> Response in throw GatehouseError(.rateLimited, "slow down", retryAfter: 17) }
        router.get("/limited-unknown") { _, _ -> Response in throw GatehouseError(.rateLimited, "slow down") }
        router.get("/conflict") { _, _ -> Response in throw GatehouseError(.conflict, "already there") }
        router.get("/step-up") { _, _ -> Response in throw SSHError(.stepUpRequired, "root@web-1 needs a passkey check") }
        router.get("/not-permitted") { _, _ -> Response in throw SSHError(.notPermitted, "no login") }
        router.get("/webauthn") { _, _ -> Response in throw WebAuthnError(.tooLarge, "too big") }
        router.get("/oauth") { _, _ -> Response in throw OAuthError(.invalidClient, "who are you") }
        router.get("/opaque") { _, _ -> Response in throw Opaque() }
        router.get("/store") { _, _ -> Response in
            throw GatehouseError(.storeFailure, "could not read: password authentication failed for user \"gatehouse\"")
        }
        return router
    }

    @Test func theAdminSocketKeepsAServerFailuresWords() async throws {
        let router = Router()
        router.add(middleware: CodedErrorMiddleware(revealServerErrors: true))
        router.get("/checkpoint") { _, _ -> Response in throw GatehouseError(.internal, "refusing to sign a checkpoint: the log was rolled back") }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/checkpoint", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(String(buffer: response.body).contains("refusing to sign a checkpoint"))
            }
        }
    }

    @Test func everyErrorTypeIsAnsweredByWhatItCarries() async throws {
        try await Application(router: Self.router()).test(.router) { client in
            func check(_ path: String, _ status: HTTPResponse.Status, _ body: String, headers: [String: String] = [:]) async throws {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == status, "\(path)")
                    #expect(String(buffer: response.body) == body, "\(path)")
                    for (name, value) in headers { #expect(response.headers[HTTPField.Name(name)!] == value, "\(path) \(name)") }
                }
            }
            try await check("/limited", .tooManyRequests, #"{"error":{"code":"rate_limited","message":"slow down"}}"#, headers: ["Retry-After": "17"])
            try await check(
                "/limited-unknown", .tooManyRequests, #"{"error":{"code":"rate_limited","message":"slow down"}}"#, headers: ["Retry-After": "60"])
            try await check("/conflict", .conflict, #"{"error":{"code":"conflict","message":"already there"}}"#)
            try await check(
                "/step-up", .unauthorized, #"{"error":{"code":"step_up_required","message":"root@web-1 needs a passkey check"}}"#,
                headers: [
                    "WWW-Authenticate":
                        #"Bearer error="insufficient_user_authentication", error_description="a fresh passkey check is needed", max_age=0"#
                ])
            try await check("/not-permitted", .forbidden, #"{"error":{"code":"ssh.not_permitted","message":"no login"}}"#)
            try await check("/webauthn", .contentTooLarge, #"{"error":{"code":"webauthn.too_large","message":"too big"}}"#)
            try await check(
                "/oauth", .unauthorized, #"{"error":"invalid_client","error_description":"who are you"}"#,
                headers: ["WWW-Authenticate": #"Basic realm="gatehouse""#])
            // Anything else: 503, "try again", and nothing of the error itself.
            try await client.execute(uri: "/opaque", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(!String(buffer: response.body).contains("hunter2") && String(buffer: response.body).contains("store.failure"))
            }
            // A server-side failure keeps its code; its words (a database's) stay in the log.
            try await check(
                "/store", .serviceUnavailable, #"{"error":{"code":"store.failure","message":"Gatehouse cannot answer this right now; try again"}}"#)
            // Hummingbird's own answers pass through (an unknown path stays 404).
            try await client.execute(uri: "/nowhere", method: .get) { response in #expect(response.status == .notFound) }
        }
    }
}
