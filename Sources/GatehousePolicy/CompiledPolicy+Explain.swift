import Foundation

/// A decision with the reasoning behind it: every rule of the request's kind, in file order,
/// and what became of it. For `gatehouse policy explain` and for people, not for hot paths.
public struct PolicyExplanation: Sendable, Equatable {
    public var request: PolicyRequest
    public var principals: [PolicyPrincipal]
    public var decision: PolicyDecision
    public var steps: [String]

    /// Human-readable, one fact per line.
    public var text: String {
        var lines = ["request:    \(self.request)", "principals: \(self.principals.map(\.description).joined(separator: ", "))"]
        lines += self.steps.map { "  \($0)" }
        lines.append("decision:   \(self.decision)")
        return lines.joined(separator: "\n")
    }
}

extension CompiledPolicy {
    public func explain(_ request: PolicyRequest, subject: PolicySubject, context: PolicyContext) -> PolicyExplanation {
        let decision = self.evaluate(request, subject: subject, context: context)
        if case .deny(let d) = decision {
            switch d.reason {
            case .unknownTarget, .invalidRequest:
                return PolicyExplanation(
                    request: request, principals: subject.principals(at: context.now), decision: decision, steps: [d.description])
            default: break
            }
        }
        var steps: [String] = []
        // Only what the subject holds now: a grant that has ended counts for nothing.
        let mine = Set(subject.principals(at: context.now))
        for rule in self.rules where rule.kind == request.kind {
            let line = "\(rule.location.line): \(rule.effect.rawValue) \(rule.kind.rawValue) \(rule.name): "
            // Deny rules also apply through an ended grant (denying more is the safe side).
            let held = rule.effect == .deny ? Set(subject.principals) : mine
            let matched = rule.who.filter { held.contains($0) }
            guard !matched.isEmpty else {
                steps.append(line + "not for you (who: \(rule.who.map(\.description).joined(separator: ", ")))")
                continue
            }
            if let miss = self.targetMismatch(rule, request, subject: subject) {
                steps.append(line + "matches you via \(matched[0]) but \(miss)")
                continue
            }
            if rule.effect == .deny {
                steps.append(
                    line + (CompiledPolicy.denyApplies(rule, context) ? "DENIES (a deny beats every allow)" : "does not apply from this source"))
                continue
            }
            if let reason = CompiledPolicy.unmetCondition(rule, context) {
                steps.append(line + "would allow, but " + PolicyDenial(reason: reason, rule: nil).description)
                continue
            }
            steps.append(line + "allows via \(matched.map(\.description).joined(separator: ", "))")
        }
        if steps.isEmpty { steps.append("no \(request.kind.rawValue) rules in this policy") }
        return PolicyExplanation(request: request, principals: subject.principals(at: context.now), decision: decision, steps: steps)
    }

    private func targetMismatch(_ rule: PolicyRule, _ request: PolicyRequest, subject: PolicySubject) -> String? {
        switch (rule.target, request) {
        case (.ssh(let ssh), .ssh(let login, let host)):
            guard let h = self.definitions.hosts.first(where: { $0.name == host }) else { return "host '\(host)' is not in the policy" }
            let selected =
                ssh.allHosts || ssh.hostNames.contains(host) || (!ssh.labels.isEmpty && ssh.labels.allSatisfy { h.labels[$0.key] == $0.value })
            if !selected { return "does not select host \(host)" }
            if !CompiledPolicy.loginMatches(ssh.logins, login: login, subject: subject) { return "login '\(login)' is not in \(ssh.logins)" }
            return nil
        case (.reach(let reach), .reach(let address, let port, let proto)):
            let hit = reach.grants.contains { g in
                g.destinations.contains { $0.contains(address) } && g.ports.contains { $0.contains(proto: proto, port: port) }
            }
            return hit ? nil : "does not cover that address and port"
        case (.app(let names, let all), .app(let app)):
            return all || names.contains(app) ? nil : "is for \(names.joined(separator: ", "))"
        case (.request(let q), .requestRole(let role)):
            return q.allRoles || q.roles.contains(role) ? nil : "is for roles \(q.roles.joined(separator: ", "))"
        case (.certificate(let c), .certificate(let id)):
            guard let parts = try? SPIFFEPattern.validateID(id) else { return "the SPIFFE ID is invalid" }
            return c.patterns.contains {
                $0.matches(trustDomain: parts.trustDomain, segments: parts.segments, name: subject.name, isHost: subject.isHost)
            } ? nil : "covers \(c.patterns.map(\.description).joined(separator: ", "))"
        default:
            return "is of another kind"
        }
    }
}
