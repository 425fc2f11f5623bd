import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import Hummingbird
import HummingbirdTesting
import Testing

/// The admin socket's OIDC client, key and host endpoints refuse malformed, oversized and
/// hostile bodies with a clear error and write nothing (no client, no audit event).
@Suite("Admin OIDC and host endpoints")
struct OIDCAdminRoutesTests {
    @Test("hostile bodies are refused and nothing is written")
    func hostileBodies() async throws {
        let store = InMemoryStore()
        let deps = try await HTTPTestSupport.withControls(store)
        let before = try await store.read { tx in try await tx.latestAuditSequence() }
        let app = Application(router: AdminRoutes.makeRouter(deps))
        try await app.test(.router) { client in
            let cases: [(String, String, HTTPResponse.Status)] = [
                ("/v1/oidc/clients", "{", .badRequest),
                ("/v1/oidc/clients", "[]", .badRequest),
                ("/v1/oidc/clients", #"{"id":"app","kind":"confidential"}"#, .badRequest),
                ("/v1/oidc/clients", #"{"id":"app","kind":"admin","redirect_uris":["https://a.example/cb"]}"#, .badRequest),
                ("/v1/oidc/clients", #"{"id":"App!","kind":"public","redirect_uris":["https://a.example/cb"]}"#, .badRequest),
                ("/v1/oidc/clients", #"{"id":"app","kind":"public","redirect_uris":["http://evil.example/cb"]}"#, .badRequest),
                ("/v1/oidc/clients", #"{"id":"app","kind":"public","redirect_uris":["https://a.example/cb"],"secret":"mine"}"#, .badRequest),
                (
                    "/v1/oidc/clients",
                    #"{"id":"app","kind":"confidential","redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"RSA","crv":"","x":"AQAB"}]}}"#,
                    .badRequest
                ),
                ("/v1/oidc/clients", #"{"id":"app","kind":"public","redirect_uris":[1]}"#, .badRequest),
                (
                    "/v1/oidc/clients",
                    #"{"id":"app","kind":"public","redirect_uris":[""# + String(repeating: #""https://a.example/x","#, count: 20)
                        + #""https://a.example/y"]}"#, .badRequest
                ),
                ("/v1/oidc/clients", String(repeating: "x", count: 20_000), .contentTooLarge),
                ("/v1/oidc/clients/remove", #"{"id":"nobody"}"#, .notFound),
                ("/v1/oidc/clients/remove", #"{"id":5}"#, .badRequest),
                ("/v1/oidc/keys/rotate", #"{"algorithm":"rsa"}"#, .badRequest),
                ("/v1/oidc/keys/rotate", #"{"algorithm":"ed25519","size":4096}"#, .badRequest),
                ("/v1/hosts", #"{"name":"web-1"}"#, .notFound),  // not in the (empty) policy
                ("/v1/hosts", #"{"name":""}"#, .badRequest),
                ("/v1/hosts", #"{"name":"web-1","labels":["env"]}"#, .badRequest),
                ("/v1/hosts", #"{"name":"web-1","owner":"me"}"#, .badRequest),
            ]
            for (uri, body, status) in cases {
                try await client.execute(uri: uri, method: .post, headers: HTTPTestSupport.jsonHeaders, body: HTTPTestSupport.json(body)) {
                    response in
                    #expect(response.status == status, "\(uri) \(body.prefix(60)): \(String(buffer: response.body))")
                    #expect(
                        (HTTPTestSupport.object(response.body)["error"] as? [String: Any])?["message"] as? String != nil, "\(uri): no clear error")
                }
            }
        }
        #expect(try await deps.oidc!.clients().isEmpty)
        #expect(try await store.read { tx in try await tx.latestAuditSequence() } == before)
    }
}
