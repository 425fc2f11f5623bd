import Foundation
import GatehousePolicy
import Testing

@Suite("Policy decisions")
struct PolicyEvaluationTests {
    let policy = PolicyFixtures.example
    let now = PolicyFixtures.now

    func decide(_ user: String, _ request: PolicyRequest, _ context: PolicyContext = PolicyFixtures.context(), grants: [PolicyGrant] = [])
        -> PolicyDecision
    {
        self.policy.evaluate(request, subject: self.policy.subject(user: user, grants: grants, now: self.now), context: context)
    }

    static let sshCases: [(String, String, String, String?)] = [
        // user, login, host, allowing rule (nil: denied)
        ("alice", "root", "web-1", "sre-prod"),
        ("alice", "deploy", "web-2", "sre-prod"),
        ("bob", "root", "db-1", "sre-prod"),
        ("alice", "root", "staging-1", nil),
        ("alice", "alice", "staging-1", "developers-staging"),
        ("carol", "carol", "staging-1", "developers-staging"),
        ("carol", "dave", "staging-1", nil),
        ("carol", "root", "web-1", nil),
        ("erin", "root", "web-1", nil),
        ("nobody", "root", "web-1", nil),
        ("alice", "root", "gw-office", nil),
    ]

    @Test("ssh: logins on hosts selected by name or labels", arguments: sshCases)
    func ssh(user: String, login: String, host: String, rule: String?) {
        let d = self.decide(user, .ssh(login: login, host: host))
        if let rule {
            guard case .allow(let a) = d else {
                Issue.record("\(user) \(login)@\(host): \(d)")
                return
            }
            #expect(a.rule.name == rule)
        } else {
            #expect(!d.isAllowed, "\(user) \(login)@\(host): \(d)")
        }
    }

    @Test("an unknown host is denied by name, not by accident")
    func unknownHost() {
        let d = self.decide("alice", .ssh(login: "root", host: "web-9"))
        #expect(d == .deny(PolicyDenial(reason: .unknownTarget("host 'web-9'"), rule: nil)))
    }

    @Test("a deny names its rule and beats an allow the same user also has")
    func denyBeatsAllow() throws {
        let p = try PolicyFixtures.compile(
            """
            group a { members = [u] }
            group b { members = [u] }
            host h { addresses = [10.0.0.1] }
            allow ssh open { who = [a] logins = [root] hosts = [h] }
            deny ssh shut { who = [b] logins = [root] hosts = [h] }
            """)
        let d = p.evaluate(.ssh(login: "root", host: "h"), subject: p.subject(user: "u", now: now), context: PolicyFixtures.context())
        guard case .deny(let denial) = d else {
            Issue.record("allowed")
            return
        }
        #expect(denial.reason == .explicitDeny)
        #expect(denial.rule?.name == "shut")
        #expect(denial.rule?.location.line == 5)
    }

    @Test("step-up: a stale or missing passkey check asks for step-up, a fresh one passes")
    func stepUp() {
        let request = PolicyRequest.ssh(login: "root", host: "web-1")
        #expect(self.decide("alice", request, PolicyFixtures.context(stepUpAgo: 599)).isAllowed)
        for stale in [601.0, nil] {
            let d = self.decide("alice", request, PolicyFixtures.context(stepUpAgo: stale))
            guard case .deny(let denial) = d else {
                Issue.record("allowed without step-up")
                continue
            }
            #expect(denial.reason == .stepUpRequired(within: .seconds(600)))
        }
        // An assertion dated in the future (clock skew beyond a minute) does not count.
        #expect(!self.decide("alice", request, PolicyFixtures.context(stepUpAgo: -120)).isAllowed)
    }

    @Test("source networks: allowed inside, denied outside and when unknown")
    func sourceNetworks() {
        let request = PolicyRequest.reach(address: PolicyFixtures.address("10.0.5.20"), port: 5432, proto: .tcp)
        #expect(self.decide("carol", request, PolicyFixtures.context(source: "192.168.10.7")).isAllowed)
        #expect(self.decide("carol", request, PolicyFixtures.context(source: "10.100.3.4")).isAllowed)
        for source in ["203.0.113.9", nil] {
            let d = self.decide("carol", request, PolicyFixtures.context(source: source))
            guard case .deny(let denial) = d else {
                Issue.record("allowed from \(source ?? "unknown")")
                continue
            }
            #expect(denial.reason == .sourceNotAllowed)
        }
    }

    static let reachCases: [(String, String, UInt16, IPProtocolName, Bool)] = [
        ("erin", "10.0.1.10", 443, .tcp, true),
        ("erin", "10.0.1.10", 22, .tcp, false),
        ("erin", "10.0.1.10", 443, .udp, false),
        ("erin", "fd00:1::10", 80, .tcp, true),
        ("erin", "10.0.5.20", 5432, .tcp, false),
        ("carol", "10.0.5.20", 5432, .tcp, true),
        ("carol", "10.0.5.20", 5433, .tcp, false),
        ("carol", "10.0.6.1", 5432, .tcp, false),
        ("alice", "10.0.5.255", 5432, .tcp, true),
    ]

    @Test("reach: addresses, ports and protocols", arguments: reachCases)
    func reach(user: String, address: String, port: UInt16, proto: IPProtocolName, allowed: Bool) {
        let d = self.decide(
            user, .reach(address: PolicyFixtures.address(address), port: port, proto: proto), PolicyFixtures.context(source: "192.168.10.1"))
        #expect(d.isAllowed == allowed, "\(user) \(address):\(port)/\(proto): \(d)")
    }

    @Test("apps and role requests")
    func appsAndRequests() {
        #expect(self.decide("carol", .app("grafana")).isAllowed)
        #expect(!self.decide("erin", .app("grafana")).isAllowed)
        #expect(self.decide("erin", .app("wiki")).isAllowed)
        #expect(self.decide("erin", .app("jira")) == .deny(PolicyDenial(reason: .unknownTarget("app 'jira'"), rule: nil)))
        guard case .allow(let a) = self.decide("dave", .requestRole("db-admin")) else {
            Issue.record("request denied")
            return
        }
        guard case .request(let q) = a.rule.target else {
            Issue.record("wrong rule kind")
            return
        }
        #expect(q.approvers == [.group("dba-leads")])
        #expect(q.reasonRequired)
        // max_duration 2h, capped by the role's max_lifetime of 1h.
        #expect(a.lifetime == .seconds(3600))
        #expect(!self.decide("erin", .requestRole("db-admin")).isAllowed)
        #expect(!self.decide("dave", .requestRole("oncall")).isAllowed)
    }

    @Test("certificates: SPIFFE patterns with $host and $user, malformed IDs refused")
    func certificates() {
        let web1 = self.policy.subject(host: "web-1")
        let ctx = PolicyFixtures.context()
        #expect(self.policy.evaluate(.certificate(spiffeID: "spiffe://corp.example/host/web-1/a/b"), subject: web1, context: ctx).isAllowed)
        #expect(!self.policy.evaluate(.certificate(spiffeID: "spiffe://corp.example/host/web-1"), subject: web1, context: ctx).isAllowed)
        #expect(!self.policy.evaluate(.certificate(spiffeID: "spiffe://other.example/payments/api"), subject: web1, context: ctx).isAllowed)
        #expect(!self.policy.evaluate(.certificate(spiffeID: "spiffe://corp.example/user/web-1"), subject: web1, context: ctx).isAllowed)
        #expect(self.decide("dave", .certificate(spiffeID: "spiffe://corp.example/user/dave")).isAllowed)
        for bad in ["spiffe://corp.example/user/../dave", "https://corp.example/x", "spiffe://corp.example/", "spiffe://corp.example/a//b"] {
            guard case .deny(let d) = self.decide("dave", .certificate(spiffeID: bad)), case .invalidRequest = d.reason else {
                Issue.record("accepted \(bad)")
                continue
            }
        }
    }

    @Test("time-bound grants merge in, cap the lifetime, and expire by themselves")
    func grants() {
        let grant = PolicyGrant(id: "req-1", user: "carol", role: "db-admin", expiresAt: now.addingTimeInterval(1800))
        let request = PolicyRequest.ssh(login: "postgres", host: "db-1")
        #expect(!self.decide("carol", request).isAllowed)
        guard case .allow(let a) = self.decide("carol", request, grants: [grant]) else {
            Issue.record("grant did not apply")
            return
        }
        #expect(a.rule.name == "dba-on-db")
        #expect(a.via == .role("db-admin"))
        #expect(a.grantID == "req-1")
        #expect(a.lifetime == .seconds(1800), "capped by the grant's end (30 min), under the role's 1h")
        let later = PolicyContext(now: now.addingTimeInterval(1801), lastStepUp: now.addingTimeInterval(1801))
        let expired = self.policy.subject(user: "carol", grants: [grant], now: later.now)
        #expect(!self.policy.evaluate(request, subject: expired, context: later).isAllowed)
        // A grant for another user or an unknown role changes nothing.
        #expect(!self.decide("dave", request, grants: [grant]).isAllowed)
        let bogus = PolicyGrant(id: "x", user: "carol", role: "nope", expiresAt: now.addingTimeInterval(60))
        #expect(self.policy.subject(user: "carol", grants: [bogus], now: now) == self.policy.subject(user: "carol", now: now))
    }

    @Test("role max_lifetime caps the rule's lifetime")
    func roleCap() {
        let p = self.policy
        let grant = PolicyGrant(id: "g", user: "dave", role: "db-admin", expiresAt: now.addingTimeInterval(86400))
        guard
            case .allow(let a) = p.evaluate(
                .ssh(login: "postgres", host: "db-1"), subject: p.subject(user: "dave", grants: [grant], now: now), context: PolicyFixtures.context())
        else {
            Issue.record("denied")
            return
        }
        #expect(a.lifetime == .seconds(3600))
    }

    @Test("directory groups count when the policy defines them; unknown ones are ignored")
    func directoryGroups() {
        let s = self.policy.subject(user: "zoe", directoryGroups: ["sre", "marketing"], now: now)
        #expect(s.principals == [.everyone, .group("sre"), .role("oncall")])
        #expect(self.policy.evaluate(.ssh(login: "root", host: "web-1"), subject: s, context: PolicyFixtures.context()).isAllowed)
    }

    @Test("SSH output: every login per user and host, with the certificate options")
    func sshLogins() {
        let alice = self.policy.subject(user: "alice", now: now)
        let web = self.policy.sshLogins(subject: alice, host: "web-1", context: PolicyFixtures.context())
        #expect(web.map(\.login) == ["deploy", "root"])
        #expect(web.first?.extensions == ["permit-port-forwarding", "permit-pty"])
        #expect(web.first?.allowance.lifetime == .seconds(8 * 3600))
        let staging = self.policy.sshLogins(subject: alice, host: "staging-1", context: PolicyFixtures.context())
        #expect(staging.map(\.login) == ["alice", "deploy"])
        let erin = self.policy.subject(user: "erin", now: now)
        #expect(self.policy.sshLogins(subject: erin, host: "web-1", context: PolicyFixtures.context()).isEmpty)
    }

    @Test("explain reaches the same decision as evaluate and says why")
    func explain() {
        let erin = self.policy.subject(user: "erin", now: now)
        let e = self.policy.explain(.ssh(login: "root", host: "web-1"), subject: erin, context: PolicyFixtures.context())
        #expect(e.decision == self.policy.evaluate(.ssh(login: "root", host: "web-1"), subject: erin, context: PolicyFixtures.context()))
        #expect(e.text.contains("deny ssh no-contractor-root: DENIES"))
        #expect(e.text.contains("allow ssh sre-prod: not for you"))
        let alice = self.policy.subject(user: "alice", now: now)
        let stale = self.policy.explain(.ssh(login: "root", host: "web-1"), subject: alice, context: PolicyFixtures.context(stepUpAgo: nil))
        #expect(stale.text.contains("would allow, but needs a passkey check within the last 10m"))
    }

    @Test("an empty policy denies everything")
    func emptyPolicy() throws {
        let p = try PolicyFixtures.compile("# nothing\n")
        let s = p.subject(user: "alice", now: now)
        for r: PolicyRequest in [
            .ssh(login: "root", host: "h"), .reach(address: 0, port: 1, proto: .tcp), .app("a"), .requestRole("r"),
            .certificate(spiffeID: "spiffe://a/b"),
        ] {
            #expect(!p.evaluate(r, subject: s, context: PolicyFixtures.context()).isAllowed)
        }
        #expect(p.accessTable().isEmpty)
    }
}
