import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Policy routes")
struct PolicyRoutesTests {
    static let policy = """
        group sre { members = [alice] }
        host web-1 { addresses = [10.0.0.1] }
        allow ssh sre-root { who = [sre] logins = [root] hosts = [web-1] step_up = 5m }
        tests {
          alice can ssh root@web-1
        }
        """

    static func body(_ object: [String: Any]) -> ByteBuffer {
        ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
    }

    func policyEvents(_ store: InMemoryStore) async throws -> [AuditEvent] {
        try await store.read { tx in try await tx.auditRecords(after: HTTPTestSupport.bootstrapEvents, limit: 100) }.map(\.event)
    }

    @Test func checkApplyShowHistoryExplain() async throws {
        let store = InMemoryStore()
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/v1/policy/check", method: .post, headers: HTTPTestSupport.jsonHeaders,
                body: Self.body(["source": Self.policy, "file_name": "p.policy"])
            ) { response in
                #expect(response.status == .ok)
                let o = HTTPTestSupport.object(response.body)
                #expect(o["valid"] as? Bool == true)
                #expect((o["tests"] as? [Any])?.count == 1)
            }
            try await client.execute(
                uri: "/v1/policy/apply", method: .post, headers: HTTPTestSupport.jsonHeaders,
                body: Self.body(["source": Self.policy, "file_name": "p.policy", "comment": "initial", "expected_version": 0])
            ) { response in
                #expect(response.status == .created)
                let o = HTTPTestSupport.object(response.body)
                #expect((o["version"] as? [String: Any])?["version"] as? Int == 1)
                #expect((o["added"] as? [String])?.count == 2)
            }
            try await client.execute(uri: "/v1/policy?version=1", method: .get) { response in
                #expect(HTTPTestSupport.object(response.body)["source"] as? String == Self.policy)
            }
            try await client.execute(uri: "/v1/policy/history", method: .get) { response in
                let list = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [[String: Any]]
                #expect(list?.first?["comment"] as? String == "initial")
            }
            let explain: [String: Any] = ["user": "alice", "ssh": "root@web-1", "step_up_age_seconds": 60]
            try await client.execute(uri: "/v1/policy/explain", method: .post, headers: HTTPTestSupport.jsonHeaders, body: Self.body(explain)) {
                response in
                let o = HTTPTestSupport.object(response.body)
                #expect(o["allowed"] as? Bool == true)
                #expect(o["rule"] as? String == "sre-root")
                #expect(o["location"] as? String == "policy@v1:3")
            }
            try await client.execute(
                uri: "/v1/policy/explain", method: .post, headers: HTTPTestSupport.jsonHeaders,
                body: Self.body(["user": "alice", "ssh": "root@web-1"])
            ) { response in
                let o = HTTPTestSupport.object(response.body)
                #expect(o["allowed"] as? Bool == false)
                #expect((o["reason"] as? String)?.contains("passkey check within the last 5m") == true)
            }
        }
        #expect(try await self.policyEvents(store).map(\.code) == [.policyApplied])
    }

    /// Every malformed, hostile or refused request: a clear error, and no new policy version.
    @Test(
        arguments: [
            ("/v1/policy/apply", "", 400, "input.invalid"),
            ("/v1/policy/apply", "[]", 400, "input.invalid"),
            ("/v1/policy/apply", #"{"source": 5}"#, 400, "input.invalid"),
            ("/v1/policy/apply", #"{"file_name": "x"}"#, 400, "input.invalid"),
            ("/v1/policy/apply", #"{"source": "group a {}", "force": true}"#, 400, "input.invalid"),
            ("/v1/policy/apply", #"{"source": "group a { color = red }"}"#, 422, "policy.invalid"),
            ("/v1/policy/apply", #"{"source": "group a {"}"#, 422, "policy.invalid"),
            ("/v1/policy/apply", #"{"source": "group a { members = [u] }\ntests {\n u cannot use x\n}\n"}"#, 422, "policy.tests_failed"),
            ("/v1/policy/apply", #"{"source": "group a {}", "expected_version": 4}"#, 409, "conflict"),
            ("/v1/policy/apply", #"{"source": "\u0000"}"#, 422, "policy.invalid"),
            ("/v1/policy/apply", "HUGE", 413, "input.too_large"),
            ("/v1/policy/diff", #"{"source": "allow ssh x {}"}"#, 422, "policy.invalid"),
            ("/v1/policy/explain", #"{"user": "alice"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "alice", "ssh": "root@h", "app": "a"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "Alice!", "app": "a"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "alice", "reach": "nowhere:22"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "alice", "reach": "10.0.0.1:99999"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "alice", "app": "a", "from": "10.0.0.0/8"}"#, 400, "input.invalid"),
            ("/v1/policy/explain", #"{"user": "alice", "app": "a", "step_up_age_seconds": -1}"#, 400, "input.invalid"),
        ] as [(String, String, Int, String)])
    func refused(path: String, body named: String, status: Int, code: String) async throws {
        let body = named == "HUGE" ? #"{"source":""# + String(repeating: "#", count: PolicyService.maxSourceBytes + 1) + #""}"# : named
        let store = InMemoryStore()
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            try await client.execute(uri: path, method: .post, headers: HTTPTestSupport.jsonHeaders, body: ByteBuffer(string: body)) { response in
                #expect(response.status.code == status, "\(String(buffer: response.body))")
                #expect(HTTPTestSupport.errorCode(response.body) == code)
            }
        }
        #expect(try await store.read { tx in try await tx.policyHistory(limit: 10) }.isEmpty)
        // Only refusals of a well-formed policy text are audited, as policy.rejected.
        let codes = try await self.policyEvents(store).map(\.code)
        #expect(codes.allSatisfy { $0 == .policyRejected })
        #expect(codes.count == (["policy.invalid", "policy.tests_failed"].contains(code) && path.hasSuffix("apply") ? 1 : 0))
    }

    @Test(arguments: ["/v1/policy?version=0", "/v1/policy?version=x", "/v1/policy/history?limit=0", "/v1/policy/history?limit=100000"])
    func badQueries(uri: String) async throws {
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies()))
        try await app.test(.router) { client in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/policy", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func graphQLAppliesAndExplains() async throws {
        let store = InMemoryStore()
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            let mutation: [String: Any] = [
                "query": "mutation($s: String!) { applyPolicy(source: $s, comment: \"via graphql\") { version { version sha256 } unchanged added } }",
                "variables": ["s": Self.policy],
            ]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: Self.body(mutation)) { response in
                let data = HTTPTestSupport.object(response.body)["data"] as? [String: Any]
                let applied = data?["applyPolicy"] as? [String: Any]
                #expect((applied?["version"] as? [String: Any])?["version"] as? Int == 1, "\(String(buffer: response.body))")
                #expect(applied?["unchanged"] as? Bool == false)
            }
            let query: [String: Any] = [
                "query":
                    "{ policyHistory { version appliedBy comment } explainPolicy(user: \"alice\", ssh: \"root@web-1\", stepUpAgeSeconds: 10) { allowed rule location } checkPolicy(source: \"group a { x = 1 }\") { valid diagnostics { line column message } } }"
            ]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: Self.body(query)) { response in
                let data = HTTPTestSupport.object(response.body)["data"] as? [String: Any]
                let history = data?["policyHistory"] as? [[String: Any]]
                #expect(history?.first?["appliedBy"] as? String == "admin-socket")
                #expect(history?.first?["comment"] as? String == "via graphql")
                let explain = data?["explainPolicy"] as? [String: Any]
                #expect(explain?["allowed"] as? Bool == true)
                let check = data?["checkPolicy"] as? [String: Any]
                #expect(check?["valid"] as? Bool == false)
                #expect(((check?["diagnostics"] as? [[String: Any]])?.first?["message"] as? String)?.contains("unknown field 'x'") == true)
            }
            let failing: [String: Any] = ["query": "mutation { applyPolicy(source: \"group a {\") { unchanged } }"]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: Self.body(failing)) { response in
                let errors = HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]]
                #expect(
                    (errors?.first?["message"] as? String)?.contains("policy:1:1: block 'a'") == true
                        || (errors?.first?["message"] as? String)?.contains("not closed") == true, "\(String(buffer: response.body))")
            }
        }
        #expect(try await store.read { tx in try await tx.policyHistory(limit: 10) }.count == 1)
    }

    @Test func publicSchemaHasNoPolicy() async throws {
        let app = Application(router: try PublicRoutes.makeRouter(try await HTTPTestSupport.dependencies()))
        try await app.test(.router) { client in
            let body: [String: Any] = ["query": "{ policyHistory { version } }"]
            try await client.execute(uri: "/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: Self.body(body)) { response in
                let errors = HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]]
                #expect((errors?.first?["message"] as? String)?.contains("policyHistory") == true)
            }
        }
    }
}

@Suite("Offboarding over GraphQL")
struct OffboardingGraphQLTests {
    @Test func offboardUserMutation() async throws {
        let store = InMemoryStore()
        try await store.commit { tx in
            try await tx.insertUser(
                User(id: "u9", username: Username(uncheckedStored: "dana"), email: nil, role: .member, status: .active, createdAt: Date()))
            return Change((), event: AuditEvent(code: .userCreated, time: Date(), actor: "test", subject: "user:dana"))
        }
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            let body: [String: Any] = ["query": "mutation { offboardUser(username: \"dana\", reason: \"contract ended\") { username revoked } }"]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: PolicyRoutesTests.body(body)) {
                response in
                let result = (HTTPTestSupport.object(response.body)["data"] as? [String: Any])?["offboardUser"] as? [String: Any]
                #expect(result?["username"] as? String == "dana", "\(String(buffer: response.body))")
                #expect(
                    result?["revoked"] as? [String] == [
                        "invitations=0", "oidc_grants=0", "sessions=0", "ssh_certificates=0", "wireguard_devices=0", "x509_certificates=0",
                    ])
            }
            let again: [String: Any] = ["query": "mutation { offboardUser(username: \"dana\") { username } }"]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: PolicyRoutesTests.body(again)) {
                response in
                let errors = HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]]
                #expect((errors?.first?["message"] as? String)?.contains("already offboarded") == true)
            }
        }
        #expect(try await store.read { tx in try await tx.user(named: Username(uncheckedStored: "dana")) }?.status == .offboarded)
    }
}

@Suite("Account routes")
struct AccountRoutesTests {
    /// Locking ends what offboarding ends but keeps the account; unlocking lets it sign in again.
    /// Both are audited with their reason; neither can be done twice, and the last active
    /// administrator cannot be locked.
    @Test func lockAndUnlock() async throws {
        let store = InMemoryStore()
        try await store.commit { tx in
            try await tx.insertUser(
                User(id: "u9", username: Username(uncheckedStored: "dana"), email: nil, role: .member, status: .active, createdAt: Date()))
            try await tx.insertUser(
                User(id: "u1", username: Username(uncheckedStored: "root"), email: nil, role: .admin, status: .active, createdAt: Date()))
            return Change((), event: AuditEvent(code: .userCreated, time: Date(), actor: "test", subject: "user:dana"))
        }
        @Sendable func status(_ name: String) async throws -> User.Status? {
            try await store.read { tx in try await tx.user(named: Username(uncheckedStored: name)) }?.status
        }
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            func post(_ path: String, _ body: String, _ expected: Int) async throws -> [String: Any] {
                try await client.execute(uri: path, method: .post, headers: HTTPTestSupport.jsonHeaders, body: ByteBuffer(string: body)) { response in
                    #expect(response.status.code == expected, "\(path) \(String(buffer: response.body))")
                    return HTTPTestSupport.object(response.body)
                }
            }
            let locked = try await post("/v1/users/lock", #"{"username": "dana", "reason": "laptop stolen"}"#, 200)
            #expect(locked["username"] as? String == "dana" && (locked["revoked"] as? [String: Int])?["sessions"] == 0, "\(locked)")
            #expect(try await status("dana") == .locked)
            _ = try await post("/v1/users/lock", #"{"username": "dana"}"#, 409)
            // The last active administrator stays: nobody could administer Gatehouse otherwise.
            _ = try await post("/v1/users/lock", #"{"username": "root"}"#, 409)
            #expect(try await status("root") == .active)
            let unlocked = try await post("/v1/users/unlock", #"{"username": "dana", "reason": "laptop found"}"#, 200)
            let danaNow = try await status("dana")
            #expect(unlocked["status"] as? String == "active" && danaNow == .active)
            _ = try await post("/v1/users/unlock", #"{"username": "dana"}"#, 409)
            // Over GraphQL too; an offboarded account cannot be unlocked.
            let lockQuery: [String: Any] = ["query": "mutation { lockUser(username: \"dana\", reason: \"again\") { username revoked } }"]
            try await client.execute(uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: PolicyRoutesTests.body(lockQuery))
            { response in
                let result = (HTTPTestSupport.object(response.body)["data"] as? [String: Any])?["lockUser"] as? [String: Any]
                #expect((result?["revoked"] as? [String])?.contains("ssh_certificates=0") == true, "\(String(buffer: response.body))")
            }
            #expect(try await status("dana") == .locked)
            _ = try await post("/v1/users/offboard", #"{"username": "dana"}"#, 200)
            let unlockQuery: [String: Any] = ["query": "mutation { unlockUser(username: \"dana\") }"]
            try await client.execute(
                uri: "/v1/graphql", method: .post, headers: HTTPTestSupport.jsonHeaders, body: PolicyRoutesTests.body(unlockQuery)
            ) { response in
                let errors = HTTPTestSupport.object(response.body)["errors"] as? [[String: Any]]
                #expect((errors?.first?["message"] as? String)?.contains("is offboarded, not locked") == true, "\(String(buffer: response.body))")
            }
        }
        let events = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.map(\.event)
        #expect(events.filter { $0.code == .userLocked }.map(\.reason) == ["laptop stolen", "again"])
        #expect(events.filter { $0.code == .userUnlocked }.map(\.reason) == ["laptop found"])
        #expect(try await status("dana") == .offboarded)
    }

    /// Malformed, hostile and refused bodies: a clear error, and no account or invitation touched.
    @Test(
        arguments: [
            ("/v1/users/offboard", "", 400, "input.invalid"),
            ("/v1/users/offboard", "[]", 400, "input.invalid"),
            ("/v1/users/offboard", #"{"reason": "x"}"#, 400, "input.invalid"),
            ("/v1/users/offboard", #"{"username": 7}"#, 400, "input.invalid"),
            ("/v1/users/offboard", #"{"username": "dana", "reason": ["x"]}"#, 400, "input.invalid"),
            ("/v1/users/offboard", #"{"username": "dana", "force": true}"#, 400, "input.invalid"),
            ("/v1/users/offboard", #"{"username": "Dana'; DROP TABLE users;--"}"#, 400, "input.invalid"),
            ("/v1/users/offboard", #"{"username": "ghost"}"#, 404, "not_found"),
            ("/v1/users/recover", #"{"username": "ghost"}"#, 404, "not_found"),
            ("/v1/users/recover", #"{"username": "dana", "role": "admin"}"#, 400, "input.invalid"),
            ("/v1/users/recover", "HUGE", 413, "input.too_large"),
            ("/v1/users/lock", #"{"username": "dana", "until": "tomorrow"}"#, 400, "input.invalid"),
            ("/v1/users/lock", #"{"username": "ghost"}"#, 404, "not_found"),
            ("/v1/users/lock", "HUGE", 413, "input.too_large"),
            ("/v1/users/unlock", #"{"username": "dana"}"#, 409, "conflict"),  // not locked
            ("/v1/users/unlock", #"{"username": "../dana"}"#, 400, "input.invalid"),
            ("/v1/users/unlock", #"{"username": "dana", "reason": 1}"#, 400, "input.invalid"),
            ("/v1/users/lock", "LONG_REASON", 400, "input.invalid"),
            ("/v1/users/offboard", "LONG_REASON", 400, "input.invalid"),
        ] as [(String, String, Int, String)])
    func refused(path: String, body named: String, status: Int, code: String) async throws {
        let body =
            named == "HUGE"
            ? #"{"username":""# + String(repeating: "a", count: 20_000) + #""}"#
            : named == "LONG_REASON" ? #"{"username":"dana","reason":""# + String(repeating: "r", count: 501) + #""}"# : named
        let store = InMemoryStore()
        try await store.commit { tx in
            try await tx.insertUser(
                User(id: "u9", username: Username(uncheckedStored: "dana"), email: nil, role: .member, status: .active, createdAt: Date()))
            return Change((), event: AuditEvent(code: .userCreated, time: Date(), actor: "test", subject: "user:dana"))
        }
        let app = Application(router: AdminRoutes.makeRouter(try await HTTPTestSupport.dependencies(store)))
        try await app.test(.router) { client in
            try await client.execute(uri: path, method: .post, headers: HTTPTestSupport.jsonHeaders, body: ByteBuffer(string: body)) { response in
                #expect(response.status.code == status, "\(String(buffer: response.body))")
                #expect(HTTPTestSupport.errorCode(response.body) == code)
            }
        }
        let (dana, invitations) = try await store.read { tx in
            (try await tx.user(named: Username(uncheckedStored: "dana")), try await tx.invitations(state: nil))
        }
        #expect(dana?.status == .active)
        #expect(invitations.isEmpty)
    }
}
