import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Pages")
struct PageRoutesTests {
    @Test func pagesCarryTheirOwnPolicyAndTheAccountNeedsASession() async throws {
        let app = Application(router: try PublicRoutes.makeRouter(try await HTTPTestSupport.dependencies()))
        try await app.test(.router) { client in
            for path in ["/enroll", "/signin"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    let csp = response.headers[.init("Content-Security-Policy")!] ?? ""
                    #expect(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"))
                    let html = String(buffer: response.body)
                    #expect(html.contains("<script src=\"/assets/gatehouse.js\" defer></script>"))
                    #expect(!html.contains("http://") && !html.contains("https://"), "no external resources")
                }
            }
            try await client.execute(uri: "/account", method: .get) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/signin")
            }
            try await client.execute(uri: "/account", method: .get, headers: [.cookie: "gatehouse_session=forged"]) { response in
                #expect(response.status == .seeOther)
            }
            try await client.execute(uri: "/assets/gatehouse.js", method: .get) { response in
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(String(buffer: response.body).contains("navigator.credentials.create"))
            }
            // The JSON API keeps the strict default policy.
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.headers[.init("Content-Security-Policy")!] == "default-src 'none'; frame-ancestors 'none'")
            }
        }
    }
}
