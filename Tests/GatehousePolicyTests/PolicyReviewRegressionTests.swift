import Foundation
import GatehouseCore
import GatehousePolicy
import Testing

/// Each test here pins a bug found in review, so it cannot come back.
@Suite("Policy regressions")
struct PolicyReviewRegressionTests {
    let now = PolicyFixtures.now

    @Test("a policy that expands past the index bound is refused at compile time, not by running out of memory")
    func indexBound() {
        let hosts = (0..<1000).map { "host h\($0) { addresses = [10.0.\($0 / 250).\($0 % 250)] }" }.joined(separator: "\n")
        let people = (0..<5001).map { "user:u\($0)" }.joined(separator: ", ")
        let error = PolicyFixtures.firstError(hosts + "\nallow ssh all { who = [\(people)] logins = [deploy] hosts = [*] }\n")
        #expect(error?.contains("expands to more than 5000000 index entries at rule 'all'") == true, "\(error ?? "compiled")")
    }

    @Test("an IPv6 prefix never covers IPv4, and mapped addresses must be written as IPv4")
    func familiesStayApart() throws {
        let p = try PolicyFixtures.compile(
            """
            group g { members = [u] }
            allow reach v6 { who = [g] to = [::/0] ports = [443] }
            """)
        let s = p.subject(user: "u", now: now)
        #expect(
            p.evaluate(.reach(address: PolicyFixtures.address("2001:db8::1"), port: 443, proto: .tcp), subject: s, context: PolicyFixtures.context())
                .isAllowed)
        #expect(
            !p.evaluate(.reach(address: PolicyFixtures.address("10.0.0.1"), port: 443, proto: .tcp), subject: s, context: PolicyFixtures.context())
                .isAllowed)
        #expect(
            p.reachableBoxes(subject: s, source: nil, at: now).allSatisfy {
                !($0.first...$0.last).overlaps(PolicyFixtures.address("0.0.0.0")...PolicyFixtures.address("255.255.255.255"))
            })
        #expect(PolicyFixtures.firstError("network n { cidrs = [::ffff:a00:0/120] }")?.contains("IPv4-mapped") == true)
        // A `from` of ::/0 does not admit IPv4 sources either.
        #expect(!(try IPPrefix(parsing: "::/0")).contains(PolicyFixtures.address("192.0.2.1")))
        // Both /0s together are everything, and need `deliberate` for everyone.
        #expect(
            PolicyFixtures.firstError("allow reach r { who = [everyone] to = [0.0.0.0/0, ::/0] ports = [*] }")?.contains(
                "grants everything to everyone") == true)
    }

    @Test("$user matches only people and $host only hosts")
    func spiffeVariables() throws {
        let p = try PolicyFixtures.compile(
            """
            host web-1 { addresses = [10.0.0.1] }
            identity hosts { spiffe = "spiffe://corp.example/host/$host/**" }
            identity people { spiffe = "spiffe://corp.example/user/$user" }
            allow certificate all { who = [everyone, host:web-1] identities = [hosts, people] }
            """)
        let person = p.subject(user: "web-1", now: now)
        let host = p.subject(host: "web-1")
        let ctx = PolicyFixtures.context()
        #expect(!p.evaluate(.certificate(spiffeID: "spiffe://corp.example/host/web-1/nginx"), subject: person, context: ctx).isAllowed)
        #expect(p.evaluate(.certificate(spiffeID: "spiffe://corp.example/host/web-1/nginx"), subject: host, context: ctx).isAllowed)
        #expect(!p.evaluate(.certificate(spiffeID: "spiffe://corp.example/user/web-1"), subject: host, context: ctx).isAllowed)
        #expect(p.evaluate(.certificate(spiffeID: "spiffe://corp.example/user/web-1"), subject: person, context: ctx).isAllowed)
    }

    @Test("a grant that ends between resolving the subject and deciding no longer counts")
    func grantEndsAfterResolution() {
        let p = PolicyFixtures.example
        let grant = PolicyGrant(id: "g", user: "carol", role: "db-admin", expiresAt: now.addingTimeInterval(60))
        let subject = p.subject(user: "carol", grants: [grant], now: now)
        let later = PolicyContext(now: now.addingTimeInterval(61), lastStepUp: now.addingTimeInterval(61))
        #expect(p.evaluate(.ssh(login: "postgres", host: "db-1"), subject: subject, context: PolicyFixtures.context()).isAllowed)
        #expect(!p.evaluate(.ssh(login: "postgres", host: "db-1"), subject: subject, context: later).isAllowed)
        #expect(
            p.explain(.ssh(login: "postgres", host: "db-1"), subject: subject, context: later).decision
                == p.evaluate(.ssh(login: "postgres", host: "db-1"), subject: subject, context: later))
    }

    @Test("'*' is rule syntax, never a login a request may name; a denied login stays denied under '*'")
    func wildcardLogins() throws {
        let p = try PolicyFixtures.compile(
            """
            group g { members = [u] }
            host h { addresses = [10.0.0.1] }
            allow ssh any { who = [g] logins = [*] hosts = [h] }
            deny ssh root { who = [g] logins = [root] hosts = [h] }
            """)
        let s = p.subject(user: "u", now: now)
        let ctx = PolicyFixtures.context()
        for login in ["*", "$user"] {
            guard case .deny(let d) = p.evaluate(.ssh(login: login, host: "h"), subject: s, context: ctx), case .invalidRequest = d.reason else {
                Issue.record("'\(login)' was accepted as a login")
                continue
            }
        }
        #expect(!p.evaluate(.ssh(login: "root", host: "h"), subject: s, context: ctx).isAllowed)
        #expect(p.evaluate(.ssh(login: "deploy", host: "h"), subject: s, context: ctx).isAllowed)
        #expect(p.sshLogins(subject: s, host: "h", context: ctx).isEmpty)
    }

    @Test("explain does not count a host as everyone")
    func explainHosts() throws {
        let p = try PolicyFixtures.compile(
            """
            host web-1 { addresses = [10.0.0.1] }
            identity people { spiffe = "spiffe://corp.example/user/**" }
            allow certificate all { who = [everyone] identities = [people] }
            """)
        let e = p.explain(
            .certificate(spiffeID: "spiffe://corp.example/user/x"), subject: p.subject(host: "web-1"), context: PolicyFixtures.context())
        #expect(!e.decision.isAllowed)
        #expect(e.text.contains("not for you"))
    }

    @Test("tests about an unknown host or an unknown name fail instead of passing as 'cannot'")
    func typoSubjects() throws {
        let p = try PolicyFixtures.compile(
            """
            group contractors { members = [erin] }
            app wiki {}
            tests {
              host:web-9 cannot use wiki
              contractor cannot use wiki
              erin cannot use wiki
              user:stranger cannot use wiki
            }
            """)
        #expect(p.runTests(now: now).map(\.passed) == [false, false, true, true])
    }

    @Test("a service pointing to another service is an error in either order")
    func serviceToService() {
        #expect(
            PolicyFixtures.firstError("service a { to = [b] ports = [1] }\nservice b { to = [10.0.0.1] ports = [2] }")?.contains(
                "a service cannot point to another service") == true)
        #expect(
            PolicyFixtures.firstError("service b { to = [10.0.0.1] ports = [2] }\nservice a { to = [b] ports = [1] }")?.contains(
                "a service cannot point to another service") == true)
    }

    @Test("token count and huge durations are bounded, never a trap")
    func bounds() {
        let commas = "version = [" + String(repeating: ",", count: 1_000_001) + "]"
        #expect(PolicyFixtures.firstError(commas)?.contains("more than 1000000 tokens") == true)
        let long = String(repeating: "999999999d", count: 400)
        #expect(throws: GatehouseError.self) { try PolicyDuration.parse(long) }
    }
}
