import Foundation
import GatehouseCore
import GatehousePolicy
import Testing

/// Random policies over a small universe, written as text and compiled, so the properties below
/// hold for the language as users write it, not only for hand-built structures.
struct PolicyGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        // SplitMix64: deterministic per seed, so a failure names a reproducible seed.
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ n: Int) -> Int { Int(self.next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { self.int(100) < percent }
    mutating func pick<T>(_ xs: [T]) -> T { xs[self.int(xs.count)] }
    mutating func subset<T>(_ xs: [T], atLeast: Int = 1) -> [T] {
        var out = xs.filter { _ in self.chance(35) }
        while out.count < atLeast { out.append(self.pick(xs)) }
        return out
    }

    static let users = (0..<8).map { "u\($0)" }
    static let groups = (0..<4).map { "g\($0)" }
    static let roles = ["r0", "r1"]
    static let hosts = (0..<6).map { "h\($0)" }
    static let apps = ["a0", "a1", "a2"]
    static let logins = ["root", "deploy", "$user"]
    static let ports = ["22", "443", "1000-2000", "53/udp", "*"]
    static let destinations = ["10.0.0.0/29", "10.0.0.2", "h1", "h4", "10.0.0.0/30", "*"]

    mutating func definitions() -> String {
        var text = ""
        for g in Self.groups { text += "group \(g) { members = [\(self.subset(Self.users).joined(separator: ", "))] }\n" }
        for r in Self.roles {
            text +=
                "role \(r) { members = [\(self.subset(Self.groups.map { "group:\($0)" }).joined(separator: ", "))]\(self.chance(50) ? " max_lifetime = 2h" : "") }\n"
        }
        for (i, h) in Self.hosts.enumerated() {
            text += "host \(h) { addresses = [10.0.0.\(i)] labels = { env = \(i % 2 == 0 ? "prod" : "dev") } }\n"
        }
        for a in Self.apps { text += "app \(a) {}\n" }
        return text
    }

    mutating func who() -> String {
        let pool = Self.groups + Self.roles + Self.users.map { "user:\($0)" } + ["everyone"]
        return self.subset(pool).joined(separator: ", ")
    }

    mutating func rule(_ name: String, effect: String) -> String {
        let allow = effect == "allow"
        var body = "who = [\(self.who())]"
        if self.chance(20) { body += " from = [\(self.pick(["192.168.0.0/16", "10.9.0.0/16"]))]" }
        switch self.int(3) {
        case 0:
            body += " logins = [\(self.subset(Self.logins).joined(separator: ", "))]"
            body +=
                self.chance(50)
                ? " hosts = [\(self.subset(Self.hosts).joined(separator: ", "))]" : " labels = { env = \(self.pick(["prod", "dev"])) }"
            if allow && self.chance(25) { body += " step_up = 5m" }
            return "\(effect) ssh \(name) { \(body) }\n"
        case 1:
            body += " to = [\(self.subset(Self.destinations).joined(separator: ", "))] ports = [\(self.subset(Self.ports).joined(separator: ", "))]"
            return "\(effect) reach \(name) { \(body) deliberate = true }\n".replacingOccurrences(
                of: "deny reach \(name) { \(body) deliberate = true }", with: "deny reach \(name) { \(body) }")
        default:
            body += " apps = [\(self.subset(Self.apps).joined(separator: ", "))]"
            if allow && self.chance(25) { body += " step_up = 5m" }
            return "\(effect) app \(name) { \(body) }\n"
        }
    }

    mutating func request() -> PolicyRequest {
        switch self.int(3) {
        case 0: return .ssh(login: self.pick(["root", "deploy"] + Self.users), host: self.pick(Self.hosts))
        case 1:
            return .reach(
                address: try! IPPrefix(parsing: "10.0.0.\(self.int(9))").first, port: self.pick([22, 53, 443, 1500, 8080]),
                proto: self.pick([.tcp, .udp]))
        default: return .app(self.pick(Self.apps))
        }
    }

    mutating func context(now: Date) -> PolicyContext {
        PolicyContext(
            now: now,
            sourceAddress: self.chance(70) ? try! IPPrefix(parsing: self.pick(["192.168.3.4", "10.9.1.1", "172.16.0.1"])).first : nil,
            lastStepUp: self.chance(50) ? now.addingTimeInterval(-Double(self.int(600))) : nil
        )
    }
}

@Suite("Policy properties")
struct PolicyPropertyTests {
    let now = PolicyFixtures.now

    func compile(_ text: String) -> CompiledPolicy {
        do { return try PolicyFixtures.compile(text) } catch { fatalError("generated policy did not compile: \(error)\n\(text)") }
    }

    @Test("a policy with definitions but no rules denies every request")
    func emptyDenies() {
        for seed in 0..<50 {
            var g = PolicyGenerator(state: UInt64(seed))
            let p = self.compile(g.definitions())
            for _ in 0..<100 {
                let s = p.subject(user: g.pick(PolicyGenerator.users), now: now)
                #expect(!p.evaluate(g.request(), subject: s, context: g.context(now: now)).isAllowed, "seed \(seed)")
            }
        }
    }

    @Test("adding an allow rule never takes access away")
    func allowIsMonotonic() {
        for seed in 0..<100 {
            var g = PolicyGenerator(state: UInt64(seed) + 1000)
            var text = g.definitions()
            for i in 0..<g.int(8) { text += g.rule("r\(i)", effect: g.chance(75) ? "allow" : "deny") }
            let before = self.compile(text)
            let after = self.compile(text + g.rule("extra", effect: "allow"))
            for _ in 0..<200 {
                let user = g.pick(PolicyGenerator.users)
                let request = g.request()
                let context = g.context(now: now)
                let old = before.evaluate(request, subject: before.subject(user: user, now: now), context: context)
                let new = after.evaluate(request, subject: after.subject(user: user, now: now), context: context)
                if old.isAllowed { #expect(new.isAllowed, "seed \(seed): \(user) \(request) lost access: \(new)") }
            }
        }
    }

    @Test("a deny always wins, and adding one never grants anything")
    func denyWins() {
        for seed in 0..<100 {
            var g = PolicyGenerator(state: UInt64(seed) + 2000)
            var text = g.definitions()
            for i in 0..<(1 + g.int(8)) { text += g.rule("r\(i)", effect: "allow") }
            let before = self.compile(text)
            let host = g.pick(PolicyGenerator.hosts)
            let app = g.pick(PolicyGenerator.apps)
            let after = self.compile(
                text + """
                    deny ssh no-host { who = [everyone] logins = [*] hosts = [\(host)] }
                    deny app no-app { who = [everyone] apps = [\(app)] }
                    deny reach no-net { who = [everyone] to = [10.0.0.4/30] ports = [*] }

                    """)
            for _ in 0..<200 {
                let user = g.pick(PolicyGenerator.users)
                let request = g.request()
                let context = g.context(now: now)
                let old = before.evaluate(request, subject: before.subject(user: user, now: now), context: context)
                let new = after.evaluate(request, subject: after.subject(user: user, now: now), context: context)
                if new.isAllowed { #expect(old.isAllowed, "seed \(seed): the deny granted \(request)") }
                let covered: Bool
                switch request {
                case .ssh(_, let h): covered = h == host
                case .app(let a): covered = a == app
                case .reach(let address, _, _): covered = try! IPPrefix(parsing: "10.0.0.4/30").contains(address)
                default: covered = false
                }
                if covered {
                    guard case .deny(let d) = new else {
                        Issue.record("seed \(seed): \(request) allowed despite deny")
                        continue
                    }
                    #expect(d.reason == .explicitDeny)
                }
            }
        }
    }

    @Test("explain and the packet-filter view agree with evaluate")
    func viewsAgree() {
        for seed in 0..<60 {
            var g = PolicyGenerator(state: UInt64(seed) + 3000)
            var text = g.definitions()
            for i in 0..<(1 + g.int(10)) { text += g.rule("r\(i)", effect: g.chance(70) ? "allow" : "deny") }
            let p = self.compile(text)
            for _ in 0..<150 {
                let user = g.pick(PolicyGenerator.users)
                let request = g.request()
                let context = g.context(now: now)
                let subject = p.subject(user: user, now: now)
                let decision = p.evaluate(request, subject: subject, context: context)
                #expect(p.explain(request, subject: subject, context: context).decision == decision, "seed \(seed)")
                if case .reach(let address, let port, let proto) = request {
                    let boxes = p.reachableBoxes(subject: subject, source: context.sourceAddress, at: PolicyFixtures.now)
                    let inBoxes = boxes.contains { address >= $0.first && address <= $0.last && $0.ports.contains(proto: proto, port: port) }
                    #expect(inBoxes == decision.isAllowed, "seed \(seed): \(user) \(request): evaluate \(decision), filter \(inBoxes)")
                }
            }
        }
    }
}
