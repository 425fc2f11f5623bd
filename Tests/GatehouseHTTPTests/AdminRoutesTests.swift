import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import GatehouseTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Admin routes")
struct AdminRoutesTests {
    @Test func statusAndInvite() async throws {
        let store = InMemoryStore()
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            let body = HTTPTestSupport.json(#"{"username":"alice","email":"alice@example.org","role":"admin"}"#)
            try await client.execute(uri: "/v1/invitations", method: .post, headers: HTTPTestSupport.jsonHeaders, body: body) { response in
                #expect(response.status == .created)
                let object = HTTPTestSupport.object(response.body)
                #expect(object["username"] as? String == "alice")
                #expect(object["role"] as? String == "admin")
                #expect((object["enrollment_url"] as? String)?.hasPrefix("http://localhost:8080/enroll#token=") == true)
            }
            try await client.execute(uri: "/v1/status", method: .get) { response in
                #expect(response.status == .ok)
                let object = HTTPTestSupport.object(response.body)
                #expect(object["pendingInvitations"] as? Int == 1)
                #expect(object["auditEvents"] as? Int64 == HTTPTestSupport.bootstrapEvents + 1)
                #expect(object["storeKind"] as? String == "memory")
            }
        }
        let records = try await store.read { tx in try await tx.auditRecords(after: HTTPTestSupport.bootstrapEvents, limit: 10) }
        #expect(records.count == 1)
        #expect(records.first?.event.sourceAddress == "unix:admin.sock")
        #expect(records.first?.event.requestID?.count == 36)
    }

    /// Every bad request gets a clear error, and nothing is written.
    @Test(
        arguments: [
            ("", 400, "input.invalid"),
            ("[]", 400, "input.invalid"),
            ("{", 400, "input.invalid"),
            (#"{"email":"a@b.c"}"#, 400, "input.invalid"),
            (#"{"username":"Alice"}"#, 400, "input.invalid"),
            (#"{"username":"alice","email":"nope"}"#, 400, "input.invalid"),
            (#"{"username":"alice","role":"Root!"}"#, 400, "input.invalid"),
            (#"{"username":"alice","admin":true}"#, 400, "input.invalid"),
            (#"{"username":5}"#, 400, "input.invalid"),
            (#"{"username":"alice","email":["a@b.c"]}"#, 400, "input.invalid"),
            (#"{"username":"'; DROP TABLE invitations; --"}"#, 400, "input.invalid"),
            ("HUGE", 413, "input.too_large"),
            (#"{"username":"existing"}"#, 409, "conflict"),
        ] as [(String, Int, String)])
    func badInvitations(body named: String, status: Int, code: String) async throws {
        let body = named == "HUGE" ? #"{"username":""# + String(repeating: "a", count: 20_000) + #""}"# : named
        let store = InMemoryStore()
        let deps = try await HTTPTestSupport.dependencies(store)
        _ = try await InvitationService(environment: deps.environment, publicURL: deps.publicURL)
            .invite(username: try Username(validating: "existing"), email: nil, role: .member, actor: "test")
        let app = Application(router: AdminRoutes.makeRouter(deps))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/invitations", method: .post, headers: HTTPTestSupport.jsonHeaders, body: HTTPTestSupport.json(body)) {
                response in
                #expect(Int(response.status.code) == status, "body: \(body.prefix(60))")
                #expect(HTTPTestSupport.errorCode(response.body) == code, "body: \(body.prefix(60))")
                let message = (HTTPTestSupport.object(response.body)["error"] as? [String: Any])?["message"] as? String
                #expect(message?.isEmpty == false)
            }
        }
        let (invitations, audit) = try await store.read { tx in (try await tx.invitations(state: nil).count, try await tx.latestAuditSequence()) }
        #expect(invitations == 1)
        #expect(audit == HTTPTestSupport.bootstrapEvents + 1)
    }

    @Test func auditEventsQueryFiltersAndPaginates() async throws {
        let store = InMemoryStore()
        let deps = try await HTTPTestSupport.dependencies(store)
        let service = InvitationService(environment: deps.environment, publicURL: deps.publicURL)
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            _ = try await service.invite(username: try Username(validating: name), email: nil, role: .member, actor: "admin-socket")
        }
        let app = Application(router: AdminRoutes.makeRouter(deps))
        try await app.test(.router) { client in
            var cursor: String? = nil
            var seen: [String] = []
            for _ in 0..<3 {
                let after = cursor.map { #", after: "\#($0)""# } ?? ""
                let result = try await Self.query(
                    client,
                    #"{ auditEvents(first: 2, code: "invitation.created"\#(after)) { events { sequence details { key value } canonical } endCursor hasNextPage } }"#
                )
                let page = (result["data"] as? [String: Any])?["auditEvents"] as? [String: Any]
                let events = page?["events"] as? [[String: Any]] ?? []
                for event in events {
                    let details = event["details"] as? [[String: String]] ?? []
                    seen.append(details.first { $0["key"] == "username" }?["value"] ?? "?")
                    #expect((event["canonical"] as? String)?.hasPrefix(#"{"actor":"admin-socket""#) == true)
                }
                cursor = page?["endCursor"] as? String
                if page?["hasNextPage"] as? Bool == false { break }
            }
            #expect(seen == ["a1", "a2", "a3", "a4", "a5"])

            let bad = try await Self.query(client, #"{ auditEvents(first: 5000) { hasNextPage } }"#)
            #expect(((bad["errors"] as? [[String: Any]])?.first?["message"] as? String)?.contains("first must be 1 to 500") == true)
            let badCursor = try await Self.query(client, #"{ auditEvents(after: "-1") { hasNextPage } }"#)
            #expect((badCursor["errors"] as? [[String: Any]])?.isEmpty == false)
            let badCode = try await Self.query(client, #"{ auditEvents(code: "nope") { hasNextPage } }"#)
            #expect((badCode["errors"] as? [[String: Any]])?.isEmpty == false)
        }
        // The public endpoint has no such field.
        let publicApp = Application(router: try PublicRoutes.makeRouter(deps))
        try await publicApp.test(.router) { client in
            let body = HTTPTestSupport.json(#"{"query":"{ auditEvents { hasNextPage } }"}"#)
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: body) { response in
                let errors = HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]]
                #expect((errors?.first?["message"] as? String)?.contains("auditEvents") == true)
                #expect(HTTPTestSupport.object(response.body)["data"] == nil || !(String(buffer: response.body).contains("canonical")))
            }
        }
    }

    @Test func invitationsOverGraphQL() async throws {
        let store = InMemoryStore()
        let deps = try await HTTPTestSupport.dependencies(store)
        let app = Application(router: AdminRoutes.makeRouter(deps))
        try await app.test(.router) { client in
            func data(_ result: [String: Any], _ field: String) -> [String: Any]? { (result["data"] as? [String: Any])?[field] as? [String: Any] }
            func error(_ result: [String: Any]) -> String? { (result["errors"] as? [[String: Any]])?.first?["message"] as? String }
            let invited = try await Self.query(
                client, #"mutation { inviteUser(username: "carol", email: "carol@example.org") { username role kind enrollmentUrl expired } }"#)
            #expect(data(invited, "inviteUser")?["role"] as? String == "member" && data(invited, "inviteUser")?["expired"] as? Bool == false)
            let first = data(invited, "inviteUser")?["enrollmentUrl"] as? String
            #expect(first?.hasPrefix("http://localhost:8080/enroll#token=") == true)
            let listed = try await Self.query(client, "{ invitations { username kind enrollmentUrl } }")
            let rows = (listed["data"] as? [String: Any])?["invitations"] as? [[String: Any]] ?? []
            #expect(rows.count == 1 && rows[0]["username"] as? String == "carol" && rows[0]["enrollmentUrl"] is NSNull)  // the secret is never listed
            let resent = try await Self.query(client, #"mutation { resendInvitation(username: "carol") { enrollmentUrl } }"#)
            let second = data(resent, "resendInvitation")?["enrollmentUrl"] as? String
            #expect(second != nil && second != first)
            let revoked = try await Self.query(
                client, #"mutation { revokeInvitation(username: "carol", reason: "sent to the wrong address") { username } }"#)
            #expect(data(revoked, "revokeInvitation")?["username"] as? String == "carol")
            // Refusals in words, nothing written.
            let before = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 1000) }.count
            for (text, words) in [
                (#"mutation { revokeInvitation(username: "carol") { username } }"#, "no pending invitation"),
                (#"mutation { inviteUser(username: "Bad Name") { username } }"#, "a-z"),
                (#"mutation { inviteUser(username: "dave", role: "totally-made-up") { username } }"#, "admin or member"),
                (#"mutation { inviteUser(username: "dave", email: "not-an-address") { username } }"#, "mail"),
                (#"mutation { resendInvitation(username: "nobody") { username } }"#, "no pending invitation"),
            ] {
                let result = try await Self.query(client, text)
                #expect(error(result)?.contains(words) == true, "\(text): \(error(result) ?? "no error")")
            }
            #expect(try await store.read { tx in try await tx.auditRecords(after: 0, limit: 1000) }.count == before)
        }
        // Not on the public endpoint.
        try await Application(router: try PublicRoutes.makeRouter(deps)).test(.router) { client in
            let body = HTTPTestSupport.json(#"{"query":"mutation { inviteUser(username: \"eve\") { enrollmentUrl } }"}"#)
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: body) { response in
                #expect(String(buffer: response.body).contains("enroll#token") == false)
                #expect((HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]])?.isEmpty == false)
            }
        }
    }

    static func query(_ client: some TestClientProtocol, _ text: String) async throws -> [String: Any] {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["query": text]), as: UTF8.self)
        return try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: HTTPTestSupport.json(body)) {
            HTTPTestSupport.object($0.body)
        }
    }

    @Test func storeOutageIsAClearError() async throws {
        let store = SwitchableStore()
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        store.down.value = true
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/status", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(HTTPTestSupport.errorCode(response.body) == "store.unreachable")
            }
        }
    }
}
