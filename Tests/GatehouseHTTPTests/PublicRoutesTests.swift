import Foundation
import GatehouseCore
import GatehouseGraphQL
import GatehouseHTTP
import GatehouseServices
import GatehouseTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Public routes")
struct PublicRoutesTests {
    func app(_ store: any Store = InMemoryStore()) async throws -> some ApplicationProtocol {
        Application(router: try PublicRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
    }

    @Test func healthAndReadiness() async throws {
        let store = SwitchableStore()
        try await self.app(store).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"alive"}"#)
                #expect(response.headers[.init("X-Content-Type-Options")!] == "nosniff")
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            store.down.value = true
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("store unreachable"))
            }
            // Liveness does not depend on the store.
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func metricsCountRequestsByRouteAndStatusWithBoundedLabels() async throws {
        try await self.app().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get)
            try await client.execute(uri: "/healthz", method: .get)
            for i in 0..<5 { try await client.execute(uri: "/scan/\(i)", method: .get) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(text.contains(#"gatehouse_http_requests_total{route="/healthz",method="GET",status="200"} 2"#))
                #expect(text.contains(#"gatehouse_http_requests_total{route="NotFound",method="GET",status="404"} 5"#))
                #expect(text.contains(#"gatehouse_http_request_duration_seconds_bucket{route="/healthz",method="GET",status="200",le="0.005"}"#))
                #expect(text.contains("process_resident_memory_bytes "))
                #expect(text.contains("process_cpu_seconds_total "))
                #expect(text.contains("process_open_fds "))
                #expect(!text.contains("/scan/"))
            }
        }
    }

    @Test func serverInfoQuery() async throws {
        try await self.app().test(.router) { client in
            let body = HTTPTestSupport.json(#"{"query":"{ serverInfo { name version publicUrl relyingPartyId startedAt } }"}"#)
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: body) { response in
                #expect(response.status == .ok)
                let info = (HTTPTestSupport.object(response.body)["data"] as? [String: Any])?["serverInfo"] as? [String: String]
                #expect(
                    info == [
                        "name": "Gatehouse", "version": "test", "publicUrl": "http://localhost:8080",
                        "relyingPartyId": "localhost", "startedAt": "2027-01-15T08:00:00Z",
                    ])
            }
        }
    }

    /// Malformed, oversized and hostile GraphQL requests get GraphQL errors, never a crash.
    @Test(
        arguments: [
            ("not json", 400, "BAD_REQUEST"),
            (#"{"query": 5}"#, 400, "BAD_REQUEST"),
            (#"{"query": "{ serverInfo { "}"#, 200, "GRAPHQL_PARSE_FAILED"),
            (#"{"query": "{ a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } } }"}"#, 400, "QUERY_TOO_DEEP"),
            ("BRACES", 400, "QUERY_TOO_DEEP"),
            ("BRACKETS", 400, "QUERY_TOO_DEEP"),
            (#"{"query": "query Q { ...A } fragment A on Query { serverInfo { ...B } } fragment B on ServerInfo { ...A }"}"#, 400, "QUERY_TOO_DEEP"),
            ("LONG", 400, "QUERY_TOO_LARGE"),
            ("BLOCKSTRING", 400, "QUERY_TOO_DEEP"),
            ("COMMENT", 400, "QUERY_TOO_DEEP"),
            ("FANOUT", 400, "QUERY_TOO_DEEP"),
            ("WIDE", 200, nil),
            (#"{"query": "{ nothingHere }"}"#, 200, nil),
            (#"{"query": "mutation { x }"}"#, 200, nil),
        ] as [(String, Int, String?)])
    func hostileGraphQL(body named: String, status: Int, code: String?) async throws {
        // Large inputs are named in the arguments and built here, to keep test output readable.
        let body =
            switch named {
            case "BRACES": #"{"query": ""# + String(repeating: "{", count: 20_000) + #""}"#
            case "BRACKETS": #"{"query": ""# + String(repeating: "[", count: 5_000) + #""}"#
            case "LONG": #"{"query": ""# + String(repeating: "a", count: 40_000) + #""}"#
            // An odd quote inside a block string must not make the scanner miss what follows.
            case "BLOCKSTRING": Self.body("{serverInfo(x:\"\"\"a\"b\"\"\" y:" + String(repeating: "[", count: 15_000) + ")}")
            // A quote inside a comment is not a string.
            case "COMMENT": Self.body("# \"\n{ serverInfo(y: " + String(repeating: "[", count: 15_000) + ") }")
            // Fragments that each spread the next twice, one level deeper: 2^40 paths, one linear walk.
            case "FANOUT":
                Self.body(
                    "query Q { ...F0 } " + (0..<40).map { "fragment F\($0) on Query { a { ...F\($0 + 1) ...F\($0 + 1) } }" }.joined(separator: " ")
                        + " fragment F40 on Query { serverInfo { name } }")
            // The same fan-out kept shallow, so it reaches validation and execution.
            case "WIDE":
                Self.body(
                    "query Q { ...F0 } "
                        + (0..<40).map { "fragment F\($0) on Query { serverInfo { name } ...F\($0 + 1) ...F\($0 + 1) }" }.joined(separator: " ")
                        + " fragment F40 on Query { serverInfo { name } }")
            default: named
            }
        try await self.app().test(.router) { client in
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: HTTPTestSupport.json(body)) {
                response in
                #expect(Int(response.status.code) == status, "body prefix: \(body.prefix(60))")
                let object = HTTPTestSupport.object(response.body)
                let errors = object["errors"] as? [[String: Any]]
                if named == "WIDE" {
                    #expect(object["data"] != nil || errors != nil, "a JSON answer, in bounded time")
                } else {
                    #expect(errors?.isEmpty == false, "an error must be reported")
                }
                if let code { #expect(HTTPTestSupport.errorCode(response.body) == code) }
            }
        }
    }

    static func body(_ query: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: ["query": query]), as: UTF8.self)
    }

    @Test func fragmentsCountTowardDepth() async throws {
        let gateway = try GraphQLGateway()
        var fragments = "query Q { ...F0 } "
        for i in 0..<14 { fragments += "fragment F\(i) on Query { serverInfo { ...F\(i + 1) } } " }
        let body = try JSONSerialization.data(withJSONObject: ["query": fragments])
        let response = await gateway.handle(
            body: [UInt8](body),
            context: GraphQLContext(serverInfo: ServerInfo(version: "t", publicURL: try PublicURL(parsing: "http://localhost:1"), startedAt: Date())))
        #expect(response.status == 400)
        #expect(String(decoding: response.body, as: UTF8.self).contains("QUERY_TOO_DEEP"))
    }

    @Test func oversizedBodyAndWrongContentType() async throws {
        try await self.app().test(.router) { client in
            let huge = ByteBuffer(repeating: UInt8(ascii: " "), count: 70_000)
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: huge) { response in
                #expect(response.status == .contentTooLarge)
                #expect(HTTPTestSupport.errorCode(response.body) == "REQUEST_TOO_LARGE")
            }
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            try await client.execute(uri: "/graphql", method: .post, headers: form, body: HTTPTestSupport.json("query={serverInfo{name}}")) {
                response in
                #expect(response.status == .unsupportedMediaType)
            }
            try await client.execute(uri: "/graphql", method: .post, body: HTTPTestSupport.json(#"{"query":"{serverInfo{name}}"}"#)) { response in
                #expect(response.status == .unsupportedMediaType)
            }
        }
    }

    /// The checked-in schema.graphql is what the server serves; regenerate it with
    /// `swift run gatehouse graphql schema > schema.graphql`.
    @Test func checkedInSchemaMatches() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let checkedIn = try String(contentsOf: root.appendingPathComponent("schema.graphql"), encoding: .utf8)
        #expect(try GatehouseSchema.printed() == checkedIn, "schema.graphql is stale: run `swift run gatehouse graphql schema > schema.graphql`")
        let admin = try String(contentsOf: root.appendingPathComponent("schema.admin.graphql"), encoding: .utf8)
        #expect(
            try GatehouseSchema.printed(.admin) == admin,
            "schema.admin.graphql is stale: run `swift run gatehouse graphql schema --admin > schema.admin.graphql`")
        // The public schema has no way to read the audit log.
        #expect(!checkedIn.contains("audit"))
    }
}
