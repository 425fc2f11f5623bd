import Foundation
import GatehousePolicy
import Testing

@Suite("Policy checks")
struct PolicyCompilerTests {
    static let base = """
        group sre { members = [alice] }
        role dba {}
        host web-1 { addresses = [10.0.0.1] labels = { env = prod } }
        app grafana {}
        identity api { spiffe = "spiffe://corp.example/api" }

        """

    static let invalid: [(String, String)] = [
        ("group ops { memebers = [alice] }", "6:13: unknown field 'memebers' in group; expected one of members, description"),
        ("frobnicate x {}", "6:1: unknown block 'frobnicate'"),
        ("version = 2", "6:11: unsupported policy version"),
        ("color = blue", "6:1: unknown top-level setting 'color'"),
        ("group Sre {}", "6:1: 'Sre' is not a valid name"),
        ("group ops {}\ngroup ops {}", "7:1: group 'ops' is already defined at line 6"),
        ("group x {}\nrole x {}", "7:1: 'x' is already a group; groups and roles share names"),
        ("group ops { members = [Alice] }", "6:24: group member 'Alice' is not a valid user name"),
        ("host h {}", "6:1: host 'h' needs addresses = [...]"),
        ("host h { addresses = [10.0.0.0/24] }", "6:23: '10.0.0.0/24': addresses must be single addresses"),
        ("network n { cidrs = [10.0.5.1/24] }", "6:22: '10.0.5.1/24' has host bits set; did you mean 10.0.5.0/24?"),
        ("network n { cidrs = [300.0.0.0/8] }", "6:22: '300.0.0.0/8' is not an IP address or CIDR prefix"),
        ("host h { addresses = [10.0.0.1] labels = [env] }", "6:42: 'labels' must be a map"),
        ("allow ssh r { who = [sre] logins = [root] hosts = [web-9] }", "unknown host 'web-9'"),
        ("allow ssh r { who = [sre-team] logins = [root] hosts = [web-1] }", "unknown group or role 'sre-team'; write user:sre-team for a person"),
        ("allow ssh r { who = [group:nope] logins = [root] hosts = [web-1] }", "unknown group 'nope'"),
        ("allow ssh r { who = [sre] hosts = [web-1] }", "ssh rule needs logins = [...]"),
        ("allow ssh r { who = [sre] logins = [root] }", "ssh rule needs hosts = [...] or labels = { ... }"),
        ("allow ssh r { logins = [root] hosts = [web-1] }", "rule 'r' needs who = [...]"),
        ("allow ssh r { who = [sre] logins = [-oProxy] hosts = [web-1] }", "'-oProxy' is not a login"),
        ("allow ssh r { who = [sre] logins = [root] hosts = [web-1] options = [permit-everything] }", "unknown SSH option 'permit-everything'"),
        ("allow ssh r { who = [sre] logins = [root] hosts = [web-1] lifetime = 0s }", "lifetime: '0s' is not a duration"),
        ("allow ssh r { who = [sre] logins = [root] hosts = [web-1] lifetime = 500d }", "is longer than 400 days"),
        ("allow ssh r { who = [sre] logins = [root] hosts = [web-1] lifetime = [8h] }", "'lifetime' must be a single word"),
        ("deny ssh r { who = [sre] logins = [root] hosts = [web-1] lifetime = 8h }", "unknown field 'lifetime' in deny"),
        ("allow teleport r { who = [sre] }", "unknown rule kind 'teleport'"),
        ("allow ssh r { who = [everyone] logins = [*] hosts = [*] }", "rule 'r' grants everything to everyone; narrow it, or add deliberate = true"),
        ("allow reach r { who = [everyone] to = [*] ports = [*] }", "grants everything to everyone"),
        ("allow app r { who = [everyone] apps = [*] }", "grants everything to everyone"),
        ("allow reach r { who = [sre] to = [10.0.0.0/8] }", "reach rule needs ports = [...]"),
        ("allow reach r { who = [sre] to = [10.0.0.0/8] ports = [70000] }", "'70000' is not a port"),
        ("allow reach r { who = [sre] to = [10.0.0.0/8] ports = [22/sctp] }", "protocol must be tcp or udp"),
        ("allow reach r { who = [sre] to = [10.0.0.0/8] ports = [22] step_up = 5m }", "step_up is not possible on reach rules"),
        ("allow reach r { who = [sre] to = [nowhere] ports = [22] }", "'nowhere' is not an address, a prefix, or a host, network or service name"),
        ("allow request r { who = [sre] roles = [dba] }", "request rule needs approvers = [...]"),
        ("allow request r { who = [sre] roles = [dba] approvers = [sre] approvals = 0 }", "'approvals' must be a whole number from 1 to 10"),
        ("allow request r { who = [sre] roles = [dba] approvers = [sre] reason = maybe }", "reason must be 'required' or 'optional'"),
        ("allow certificate r { who = [host:web-2] identities = [api] }", "unknown host 'web-2'"),
        ("allow app r { who = [host:web-1] apps = [grafana] }", "'host:web-1' cannot be used here"),
        ("identity x { spiffe = \"spiffe://Corp/api\" }", "the trust domain must be lower-case"),
        ("identity x { spiffe = \"spiffe://corp/**/x\" }", "'**' may only be the last segment"),
        ("identity x { spiffe = \"spiffe://corp/a/../b\" }", "path segments must be non-empty"),
        ("app a { redirect_uris = [\"http://app.example/cb\"] }", "is plain http to a host that is not loopback"),
        ("app a { redirect_uris = [\"https://app.example/cb#f\"] }", "has a fragment"),
        ("app a { client_id = \"grafana\" }", "client_id 'grafana' is used by another app"),
        ("app a { upstream = \"http://127.0.0.1:3000\" }", "give it exactly one of host"),
        ("app a { upstream = \"http://127.0.0.1:3000\" host = \"a.example\" path = \"/a/\" }", "give it exactly one of host"),
        ("app a { upstream = \"ftp://127.0.0.1\" path = \"/a/\" share_origin = true }", "upstream must be an http or https URL"),
        ("app a { upstream = \"http://127.0.0.1/?q=1\" path = \"/a/\" share_origin = true }", "upstream must be an http or https URL"),
        ("app a { path = \"/a/\" }", "host and path need upstream"),
        ("app a { upstream = \"http://127.0.0.1\" path = \"/a\" share_origin = true }", "path must look like"),
        ("app a { upstream = \"http://127.0.0.1\" path = \"/a/../b/\" share_origin = true }", "path must look like"),
        ("app a { upstream = \"http://127.0.0.1\" path = \"/oauth2/x/\" share_origin = true }", "overlaps Gatehouse's own /oauth2/"),
        (
            "app a { upstream = \"http://127.0.0.1\" path = \"/a/\" share_origin = true }\napp b { upstream = \"http://127.0.0.1\" path = \"/a/b/\" share_origin = true }",
            "overlaps another app's path"
        ),
        ("app a { upstream = \"http://127.0.0.1\" host = \"*.example\" }", "is not a host name"),
        ("app a { upstream = \"http://127.0.0.1\" path = \"/a/\" }", "shares Gatehouse's origin"),
        ("app a { upstream = \"http://127.0.0.1\" host = \"a.example\" share_origin = true }", "share_origin applies only to an app with a path"),
        (
            "app a { upstream = \"http://127.0.0.1\" host = \"a.example\" }\napp b { upstream = \"http://127.0.0.1\" host = \"A.example\" }",
            "is proxied by another app"
        ),
        ("tests {\n  alice may ssh root@web-1\n}", "7:3: test 'alice may ssh root@web-1': second word must be 'can' or 'cannot'"),
        ("tests {\n  alice can fly web-1 x\n}", "unexpected 'x'"),
        ("tests {\n  alice can telnet web-1\n}", "unknown action 'telnet'"),
        ("tests {\n  members = [a]\n}", "a tests block holds lines like"),
        (
            "allow ssh r { who = [sre] logins = [root] hosts = [web-1] }\nallow app r { who = [sre] apps = [grafana] }",
            "rule 'r' is already defined at line 6"
        ),
        ("group g { members = [alice] description = \"x\" members = [bob] }", "'members' is set twice"),
        ("group g { members = [] }", "'members' is empty"),
        ("group g { members = [[alice]] }", "must be a list of names"),
        ("group g { sub { } }", "unexpected block 'sub' inside group"),
        ("alice can ssh root@web-1", "outside a tests block"),
    ]

    @Test("invalid policies are refused with the place and the reason", arguments: invalid)
    func refused(source: String, expected: String) {
        let error = PolicyFixtures.firstError(Self.base + source)
        #expect(error?.contains(expected) == true, "got \(error ?? "no error")")
        #expect(error?.hasPrefix("test.policy:") == true)
    }

    @Test("every problem is reported at once, each with its line")
    func collectsAll() {
        let text =
            Self.base + """
                group a { color = red }
                allow ssh r1 { who = [ghost] logins = [root] hosts = [web-1] }
                allow app r2 { who = [sre] apps = [kibana] }
                """
        do {
            _ = try PolicyFixtures.compile(text)
            Issue.record("accepted")
        } catch {
            #expect(error.diagnostics.map(\.location.line) == [6, 7, 8])
        }
    }

    @Test("a test about a host, app or role the policy lacks fails instead of passing vacuously")
    func typoTestsFail() throws {
        let p = try PolicyFixtures.compile(
            Self.base + """
                tests {
                  alice cannot ssh root@web-9
                  alice cannot use kibana
                  alice cannot request nope
                  alice cannot obtain spiffe://corp.example/../x
                  alice cannot use grafana
                }
                """)
        let results = p.runTests(now: PolicyFixtures.now)
        #expect(results.map(\.passed) == [false, false, false, false, true])
        #expect(results[0].detail == "host 'web-9' is not in the policy")
    }

    @Test("deliberate = true allows a rule that grants everything to everyone")
    func deliberate() throws {
        let policy = try PolicyFixtures.compile(Self.base + "allow app all { who = [everyone] apps = [*] deliberate = true }")
        #expect(policy.rules.count == 1)
    }

    @Test("names may be used before their definition")
    func forwardReferences() throws {
        let policy = try PolicyFixtures.compile(
            """
            allow ssh r { who = [late] logins = [root] hosts = [h] }
            group late { members = [alice] }
            host h { addresses = [10.1.1.1] }
            service s { to = [h, n] ports = [22] }
            network n { cidrs = [10.2.0.0/16] }
            """)
        #expect(policy.definitions.services.first?.destinations.map(\.description) == ["10.1.1.1", "10.2.0.0/16"])
    }

    @Test("the number of diagnostics is bounded")
    func boundedDiagnostics() {
        let text = (0..<500).map { "group g\($0) { bad = 1 }" }.joined(separator: "\n")
        do {
            _ = try PolicyFixtures.compile(text)
        } catch {
            #expect(error.diagnostics.count == PolicyCompiler.maxDiagnostics)
        }
    }
}
