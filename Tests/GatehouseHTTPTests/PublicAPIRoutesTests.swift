import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The public API routes in process (the live tests drive them with real clients too):
/// `/api/webauthn`, `/api/passkeys`, `/api/ssh`, `/api/hosts`, `/api/network` and `/oauth2`
/// refuse malformed, oversized and hostile requests with a clear code, and write nothing.
@Suite("Public API routes")
struct PublicAPIRoutesTests {
    struct Case: Sendable, CustomStringConvertible {
        let method: HTTPRequest.Method
        let uri: String
        let body: String?
        let contentType: String?
        let headers: [(String, String)]
        let status: HTTPResponse.Status
        let code: String?
        var description: String { "\(self.method) \(self.uri) \(self.body.map { String($0.prefix(40)) } ?? "")" }

        init(
            _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, contentType: String? = "application/json",
            headers: [(String, String)] = [],
            _ status: HTTPResponse.Status, _ code: String? = nil
        ) {
            self.method = method
            self.uri = uri
            self.body = body
            self.contentType = contentType
            self.headers = headers
            self.status = status
            self.code = code
        }
    }

    static let huge = String(repeating: "x", count: 2 << 20)

    static let cases: [Case] = [
        // Passkey ceremonies: shape, size and unknown fields before any lookup.
        Case(.post, "/api/webauthn/registration/options", "{", .badRequest, "input.invalid"),
        Case(.post, "/api/webauthn/registration/options", #"{"token":5}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/webauthn/registration/options", #"{"token":"x","admin":true}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/webauthn/registration/options", #"{"token":"ghit_nope"}"#, .notFound, "not_found"),
        Case(.post, "/api/webauthn/registration/options", #"{"token":"x"}"#, contentType: "text/plain", .badRequest, "input.invalid"),
        Case(.post, "/api/webauthn/registration/verify", #"{"ceremony":"nope","credential":{}}"#, .badRequest),
        Case(.post, "/api/webauthn/registration/verify", Self.huge, .contentTooLarge, "input.too_large"),
        Case(.post, "/api/webauthn/authentication/options", #"{"username":["a"]}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/webauthn/authentication/verify", #"{"ceremony":"","credential":"AAAA"}"#, .badRequest),
        Case(.post, "/api/webauthn/authentication/verify", "[]", .badRequest),
        // Account endpoints without a session cookie.
        Case(.get, "/api/passkeys", nil, .unauthorized, "unauthenticated"),
        Case(.post, "/api/passkeys/rename", #"{"id":"AAAA","name":"x"}"#, .unauthorized, "unauthenticated"),
        Case(.post, "/api/passkeys/remove", #"{"id":"AAAA"}"#, .unauthorized, "unauthenticated"),
        Case(
            .post, "/api/passkeys/rename", #"{"id":"AAAA","name":"x"}"#,
            headers: [("Cookie", "gatehouse_session=" + String(repeating: "A", count: 5000))],
            .unauthorized, "unauthenticated"),
        // SSH and network: a bearer token or nothing.
        Case(.post, "/api/ssh/certificates", #"{"public_key":"ssh-ed25519 AAAA"}"#, .unauthorized, "unauthenticated"),
        Case(
            .post, "/api/ssh/certificates", #"{"public_key":"ssh-ed25519 AAAA"}"#,
            headers: [("Authorization", "Bearer ghat_" + String(repeating: "A", count: 43))],
            .unauthorized, "unauthenticated"),
        Case(.post, "/api/ssh/certificates", "{}", headers: [("Authorization", "Basic YTpi")], .unauthorized, "unauthenticated"),
        Case(
            .get, "/api/ssh/hosts", nil, headers: [("Authorization", "Bearer " + String(repeating: "x", count: 300))], .unauthorized,
            "unauthenticated"),
        Case(.post, "/api/network/devices", #"{"public_key":"x","name":"laptop"}"#, .unauthorized, "unauthenticated"),
        Case(.get, "/api/network/devices", nil, .unauthorized, "unauthenticated"),
        Case(.delete, "/api/network/devices/abc", nil, .unauthorized, "unauthenticated"),
        // Host enrollment: bad tokens and bodies are refused before anything is issued.
        Case(.post, "/api/hosts/join", #"{"token":"ghjt_nope","host_key":"ssh-ed25519 AAAA"}"#, .unauthorized),
        Case(.post, "/api/hosts/join", #"{"token":"x"}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/hosts/join", #"{"token":1,"host_key":2}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/hosts/join", #"{"token":"x","host_key":"y","extra":"z"}"#, .badRequest, "input.invalid"),
        Case(.post, "/api/hosts/renew", #"{"host_key":"x"}"#, .unauthorized, "unauthenticated"),
        Case(.post, "/api/hosts/join", Self.huge, .contentTooLarge, "input.too_large"),
    ]

    @Test("hostile requests get a clear code and write nothing")
    func hostileRequests() async throws {
        let store = InMemoryStore()
        let deps = try await HTTPTestSupport.withControls(store, network: true)
        let before = try await store.read { tx in try await tx.latestAuditSequence() }
        try await Application(router: try PublicRoutes.makeRouter(deps)).test(.router) { client in
            for c in Self.cases {
                var headers = HTTPFields()
                if let type = c.contentType, c.body != nil { headers[.contentType] = type }
                for (name, value) in c.headers { headers[HTTPField.Name(name)!] = value }
                try await client.execute(uri: c.uri, method: c.method, headers: headers, body: c.body.map { ByteBuffer(string: $0) }) { response in
                    #expect(response.status == c.status, "\(c): \(String(buffer: response.body).prefix(200))")
                    if let code = c.code {
                        #expect(HTTPTestSupport.errorCode(response.body) == code, "\(c): \(String(buffer: response.body).prefix(200))")
                    }
                    // Never a stack trace, a type name or an internal path in an answer.
                    let text = String(buffer: response.body)
                    #expect(!text.contains("Swift.") && !text.contains("/work/") && !text.contains("Error("), "\(c): \(text.prefix(200))")
                }
            }
        }
        // Refusals may be audited (aggregated failure counts), but nothing else was written.
        let users = try await store.read { tx in try await tx.countUsers() }
        #expect(users == 0)
        let codes = try await store.read { tx in try await tx.auditRecords(after: before, limit: 1000) }.map(\.event.code)
        #expect(codes.allSatisfy { [.enrollmentFailed, .signInFailed, .hostJoinRefused, .failuresAggregated].contains($0) }, "\(codes)")
    }

    @Test("the token endpoint answers in OAuth's shape, whatever it is sent")
    func tokenEndpoint() async throws {
        let deps = try await HTTPTestSupport.withControls(network: true)
        try await Application(router: try PublicRoutes.makeRouter(deps)).test(.router) { client in
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            for (body, headers, status, error) in [
                ("grant_type=authorization_code&code=x&client_id=nobody", form, HTTPResponse.Status.unauthorized, "invalid_client"),
                ("grant_type=password&username=a&password=b&client_id=gatehouse-cli", form, .unauthorized, "invalid_client"),
                ("grant_type=refresh_token", form, .unauthorized, "invalid_client"),  // no client named: OAuth says invalid_client
                (#"{"grant_type":"refresh_token"}"#, HTTPTestSupport.jsonHeaders, .badRequest, "invalid_request"),
                ("grant_type=refresh_token&grant_type=refresh_token&refresh_token=a", form, .badRequest, "invalid_request"),
                (String(repeating: "a=b&", count: 100_000), form, .badRequest, "invalid_request"),
            ] as [(String, HTTPFields, HTTPResponse.Status, String)] {
                try await client.execute(uri: "/oauth2/token", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    let object = HTTPTestSupport.object(response.body)
                    #expect(response.status == status, "\(body.prefix(60)): \(String(buffer: response.body).prefix(200))")
                    #expect(object["error"] as? String == error, "\(body.prefix(60)): \(String(buffer: response.body).prefix(200))")
                    #expect(object["error_description"] is String)
                    #expect(response.headers[.cacheControl] == "no-store")
                }
            }
        }
    }
}
