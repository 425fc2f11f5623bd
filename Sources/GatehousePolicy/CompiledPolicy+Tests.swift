public import Foundation
public import GatehouseCore

/// The outcome of one line of a policy's `tests` block.
public struct PolicyTestResult: Sendable, Equatable, CustomStringConvertible {
    public var assertion: PolicyAssertion
    public var passed: Bool
    /// What the engine said, in words (the deciding rule or the deny reason).
    public var detail: String

    public var description: String {
        "\(self.passed ? "ok  " : "FAIL") \(self.assertion.location.file):\(self.assertion.location.line): \(self.assertion.text) — \(self.detail)"
    }
}

extension CompiledPolicy {
    /// Runs every assertion of the `tests` block at `now`. `directory` supplies the groups a
    /// user has outside the policy (empty when checking a file offline).
    public func runTests(now: Date, directory: [String: [String]] = [:], grants: [PolicyGrant] = []) -> [PolicyTestResult] {
        self.definitions.assertions.map { self.run($0, now: now, directory: directory, grants: grants) }
    }

    func run(_ t: PolicyAssertion, now: Date, directory: [String: [String]], grants: [PolicyGrant]) -> PolicyTestResult {
        func result(_ allowed: Bool, _ detail: String) -> PolicyTestResult {
            PolicyTestResult(assertion: t, passed: allowed == t.expectAllowed, detail: detail)
        }
        /// A test about a host, app or role the policy does not have is a typo, never a pass.
        func result(_ d: PolicyDecision) -> PolicyTestResult {
            if case .deny(let denial) = d {
                switch denial.reason {
                case .unknownTarget, .invalidRequest: return PolicyTestResult(assertion: t, passed: false, detail: denial.description)
                default: break
                }
            }
            return result(d.isAllowed, d.description)
        }
        guard let subject = self.testSubject(t.subject, now: now, directory: directory, grants: grants) else {
            return PolicyTestResult(
                assertion: t, passed: false,
                detail: "'\(t.subject)' is not a group, role or host of the policy, nor a user it names; write user:\(t.subject) for anyone else")
        }
        let context = PolicyContext(now: now, sourceAddress: t.sourceAddress?.first, lastStepUp: t.freshStepUp ? now : nil)
        switch t.action {
        case .ssh(let login, let host):
            return result(self.evaluate(.ssh(login: login, host: host), subject: subject, context: context))
        case .use(let app):
            return result(self.evaluate(.app(app), subject: subject, context: context))
        case .request(let role):
            return result(self.evaluate(.requestRole(role), subject: subject, context: context))
        case .obtain(let id):
            return result(self.evaluate(.certificate(spiffeID: id), subject: subject, context: context))
        case .reach(let target, let ports):
            guard let prefixes = self.resolveTarget(target) else {
                return PolicyTestResult(assertion: t, passed: false, detail: "'\(target)' is not an address, prefix, host, network or service")
            }
            let boxes = self.reachableBoxes(subject: subject, source: context.sourceAddress, at: now)
            let wanted = prefixes.flatMap { p in
                p.ranges.flatMap { r in ports.map { NetworkBox(first: r.lowerBound, last: r.upperBound, ports: $0) } }
            }
            let uncovered = NetworkBox.subtract(wanted, boxes)
            let touched = wanted.contains { w in boxes.contains { $0.intersects(w) } }
            if t.expectAllowed {
                return result(
                    uncovered.isEmpty,
                    uncovered.isEmpty
                        ? "every address and port is allowed"
                        : "not allowed: \(uncovered.sorted().prefix(3).map(\.description).joined(separator: "; "))")
            }
            let open = wanted.flatMap { w in
                boxes.compactMap { b -> NetworkBox? in
                    guard b.intersects(w) else { return nil }
                    return NetworkBox(
                        first: max(b.first, w.first), last: min(b.last, w.last),
                        ports: PortRange(proto: w.ports.proto, low: max(b.ports.low, w.ports.low), high: min(b.ports.high, w.ports.high)))
                }
            }
            return result(
                touched, touched ? "allowed: \(open.sorted().prefix(3).map(\.description).joined(separator: "; "))" : "nothing in it is allowed")
        }
    }

    /// A test subject: a group or role (a synthetic member of just that), `host:NAME`, or a user
    /// the policy or the directory knows. Anything else is a typo, and its tests fail.
    func testSubject(_ name: String, now: Date, directory: [String: [String]], grants: [PolicyGrant]) -> PolicySubject? {
        if name.hasPrefix("host:") {
            let host = String(name.dropFirst(5))
            return self.hostIndex[host] == nil ? nil : self.subject(host: host)
        }
        if let s = self.subject(memberOf: .group(name)) { return s }
        if let s = self.subject(memberOf: .role(name)) { return s }
        // `user:NAME` is any person, named by the policy or not; a bare name must be one the
        // policy or directory knows, so a misspelled group is not taken for a stranger.
        let explicit = name.hasPrefix("user:")
        let user = explicit ? String(name.dropFirst(5)) : name
        let known =
            self.atomIDs[.user(user)] != nil || self.userGroups[user] != nil || self.userRoles[user] != nil
            || directory[user] != nil || grants.contains { $0.user == user }
        guard known || (explicit && PolicyCompiler.isName(user) && user.first?.isLetter == true) else { return nil }
        return self.subject(user: user, directoryGroups: directory[user] ?? [], grants: grants, now: now)
    }

    /// An address, prefix, or the addresses of a host, network or service.
    public func resolveTarget(_ text: String) -> [IPPrefix]? {
        if let p = try? IPPrefix(parsing: text) { return [p] }
        if let h = self.definitions.hosts.first(where: { $0.name == text }) { return h.addresses }
        if let n = self.definitions.networks.first(where: { $0.name == text }) { return n.prefixes }
        if let s = self.definitions.services.first(where: { $0.name == text }) { return s.destinations }
        return nil
    }
}
