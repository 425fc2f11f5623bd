import Foundation
import GatehouseCore
import GatehousePolicy

/// The policy engine on synthetic policies: 10,000 users, 1,000 hosts, and a rule count that
/// grows (1k, 5k, 10k, 100k) with the number of groups, ten rules per group, as real policies
/// grow. Decisions are timed one by one (median and p99); the baseline is the same question
/// answered by scanning every rule without the index.
enum PolicyBench {
    struct Synthetic {
        let text: String
        let users: [String]
        let hosts: Int
    }

    /// Deterministic pseudo-random numbers (SplitMix64), so every run benchmarks the same policy.
    struct Rng {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
    }

    static func synthetic(rules: Int, users userCount: Int = 10_000, hosts: Int = 1_000) -> Synthetic {
        var rng = Rng(state: UInt64(rules))
        let groups = max(rules / 10, 10)
        let users = (0..<userCount).map { "user\($0)" }
        var members = Array(repeating: [String](), count: groups)
        for u in users { for _ in 0..<3 { members[rng.next(groups)].append(u) } }
        var text = "# synthetic: \(rules) rules, \(groups) groups, \(userCount) users, \(hosts) hosts\n"
        for (g, m) in members.enumerated() {
            text += m.isEmpty ? "group g\(g) {}\n" : "group g\(g) { members = [\(Array(Set(m)).sorted().joined(separator: ", "))] }\n"
        }
        for h in 0..<hosts {
            text += "host h\(h) { addresses = [10.\(h / 250).\(h % 250).1] labels = { svc = s\(h % 100), env = \(h % 3 == 0 ? "prod" : "dev") } }\n"
        }
        for a in 0..<100 { text += "app a\(a) {}\n" }
        for r in 0..<rules {
            let who = "g\(r % groups)"
            switch r % 10 {
            case 0..<6:
                text += "allow ssh r\(r) { who = [\(who)] logins = [deploy, $user] labels = { svc = s\(rng.next(100)) } }\n"
            case 6..<9:
                text += "allow reach r\(r) { who = [\(who)] to = [10.\(rng.next(4)).\(rng.next(250)).0/24] ports = [443, 5432] }\n"
            default:
                text += "allow app r\(r) { who = [\(who)] apps = [a\(rng.next(100))] }\n"
            }
        }
        // A few explicit denies, as real policies have.
        text += "deny ssh no-root { who = [g0, g1] logins = [root] hosts = [*] }\n"
        return Synthetic(text: text, users: users, hosts: hosts)
    }

    static func requests(_ s: Synthetic, count: Int, seed: UInt64) -> [(user: String, request: PolicyRequest)] {
        var rng = Rng(state: seed)
        return (0..<count).map { _ in
            let user = s.users[rng.next(s.users.count)]
            let h = rng.next(s.hosts)
            let request: PolicyRequest
            switch rng.next(10) {
            case 0..<6: request = .ssh(login: rng.next(2) == 0 ? "deploy" : user, host: "h\(h)")
            case 6..<9: request = .reach(address: try! IPPrefix(parsing: "10.\(h / 250).\(h % 250).1").first, port: 443, proto: .tcp)
            default: request = .app("a\(rng.next(100))")
            }
            return (user, request)
        }
    }

    /// The baseline: every rule of the request's kind, in order, with no index.
    static func scan(_ policy: CompiledPolicy, _ request: PolicyRequest, _ subject: Set<PolicyPrincipal>, user: String) -> Bool {
        var allowed = false
        for rule in policy.rules where rule.kind == request.kind && rule.who.contains(where: { $0 == .everyone || subject.contains($0) }) {
            var hit = false
            switch (rule.target, request) {
            case (.ssh(let ssh), .ssh(let login, let host)):
                guard ssh.logins.contains(where: { $0 == login || $0 == "*" || ($0 == "$user" && login == user) }) else { continue }
                if ssh.allHosts || ssh.hostNames.contains(host) {
                    hit = true
                } else if let h = policy.definitions.hosts.first(where: { $0.name == host }) {
                    hit = !ssh.labels.isEmpty && ssh.labels.allSatisfy { h.labels[$0.key] == $0.value }
                }
            case (.reach(let reach), .reach(let address, let port, let proto)):
                hit = reach.grants.contains { g in
                    g.destinations.contains { $0.contains(address) } && g.ports.contains { $0.contains(proto: proto, port: port) }
                }
            case (.app(let names, let all), .app(let app)):
                hit = all || names.contains(app)
            default: break
            }
            if hit {
                if rule.effect == .deny { return false }
                allowed = true
            }
        }
        return allowed
    }

    static func nanoseconds(_ d: Duration) -> Double { Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9 }

    static func run() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        print("")
        print("policy engine: 10,000 users, 1,000 hosts; decisions timed one by one (200k requests, 60% ssh, 30% reach, 10% app)")
        print(
            "rules".padding(toLength: 9, withPad: " ", startingAt: 0), "text".leftPad(9), "compile".leftPad(11), "decision p50".leftPad(14),
            "p99".leftPad(9),
            "subject p50".leftPad(12), "  baseline: scan every rule p50", "ratio".leftPad(8), " allowed")
        for ruleCount in [1_000, 5_000, 10_000, 100_000] {
            let synthetic = Self.synthetic(rules: ruleCount)
            var compileTimes: [Double] = []
            var policy: CompiledPolicy! = nil
            for _ in 0..<(ruleCount >= 100_000 ? 1 : 3) {
                let start = ContinuousClock.now
                // 100k rules is past the 8 MiB a served policy may have; the benchmark lifts the cap.
                var limits = PolicyParser.Limits()
                limits.maxBytes = 64 << 20
                limits.maxTokens = 20_000_000
                policy = try! PolicyCompiler(fileName: "synthetic", parserLimits: limits).compile(synthetic.text)
                compileTimes.append(Self.nanoseconds(ContinuousClock.now - start))
            }
            if ProcessInfo.processInfo.environment["POLICY_BENCH_PHASES"] != nil {
                var limits = PolicyParser.Limits()
                limits.maxBytes = 64 << 20
                limits.maxTokens = 20_000_000
                let t0 = ContinuousClock.now
                _ = try! PolicyParser(fileName: "s", limits: limits).parse(synthetic.text)
                print("  parse only: \(Int(Self.nanoseconds(ContinuousClock.now - t0) / 1e6)) ms")
            }
            let requests = Self.requests(synthetic, count: 200_000, seed: 42)
            var subjects: [String: PolicySubject] = [:]
            for user in synthetic.users { subjects[user] = policy.subject(user: user, now: now) }
            // Resolving a user into principals, timed alone over every user.
            var subjectSamples: [Double] = []
            for user in synthetic.users {
                let start = ContinuousClock.now
                let subject = policy.subject(user: user, now: now)
                subjectSamples.append(Self.nanoseconds(ContinuousClock.now - start))
                withExtendedLifetime(subject) {}
            }
            subjectSamples.sort()
            let subjectNs = subjectSamples[subjectSamples.count / 2]
            let context = PolicyContext(now: now, sourceAddress: nil, lastStepUp: now)
            var samples: [Double] = []
            samples.reserveCapacity(requests.count)
            var allowed = 0
            for (user, request) in requests {
                let subject = subjects[user]!
                let start = ContinuousClock.now
                let decision = policy.evaluate(request, subject: subject, context: context)
                samples.append(Self.nanoseconds(ContinuousClock.now - start))
                if decision.isAllowed { allowed += 1 }
            }
            samples.sort()
            // The scan is slow at 100k rules: sample fewer requests there.
            let scanned = requests.prefix(ruleCount >= 100_000 ? 300 : 3_000)
            var scanSamples: [Double] = []
            var agree = true
            for (user, request) in scanned {
                let subject = Set(subjects[user]!.principals)
                let start = ContinuousClock.now
                let answer = Self.scan(policy, request, subject, user: user)
                scanSamples.append(Self.nanoseconds(ContinuousClock.now - start))
                if answer != policy.evaluate(request, subject: subjects[user]!, context: context).isAllowed { agree = false }
            }
            scanSamples.sort()
            let p50 = samples[samples.count / 2]
            let p99 = samples[samples.count * 99 / 100]
            let scanP50 = scanSamples[scanSamples.count / 2]
            print(
                "\(ruleCount)".padding(toLength: 9, withPad: " ", startingAt: 0),
                String(format: "%7.1f MB", Double(synthetic.text.utf8.count) / 1e6),
                String(format: "%8.0f ms", compileTimes.sorted()[compileTimes.count / 2] / 1e6),
                String(format: "%11.0f ns", p50), String(format: "%6.0f ns", p99), String(format: "%9.0f ns", subjectNs),
                String(format: "%30.0f ns", scanP50), String(format: "%7.0fx", scanP50 / p50),
                String(format: " %4.1f%%", Double(allowed) * 100 / Double(requests.count)), agree ? "" : "  (SCAN DISAGREES)"
            )
        }
    }
}
