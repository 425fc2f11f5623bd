public import Foundation

/// An immutable, indexed policy: the one thing every enforcement point asks.
///
/// Built by ``PolicyCompiler``. Evaluation is pure (no I/O, no clock: time comes in the
/// ``PolicyContext``) and cheap: a request touches only the rules indexed under the subject's
/// own principals (and, for SSH, under the one host), so its cost does not grow with the size
/// of the whole policy.
public final class CompiledPolicy: Sendable {
    public let definitions: PolicyDefinitions
    public var rules: [PolicyRule] { self.definitions.rules }

    /// Principal → interned id; id 0 is `everyone`.
    let atomIDs: [PolicyPrincipal: UInt32]
    let atomPrincipals: [PolicyPrincipal]
    let hostIndex: [String: Int]
    let roleMaxLifetime: [UInt32: Duration]
    /// Static memberships, by user name.
    let userGroups: [String: [UInt32]]
    let userRoles: [String: [UInt32]]
    let groupRoles: [UInt32: [UInt32]]
    /// SSH rules per host, per principal: the host is known up front, so label selectors are
    /// resolved here once instead of on every request.
    let sshAllow: [[UInt32: [Int32]]]
    let sshDeny: [[UInt32: [Int32]]]
    /// Reach rules per principal, and each rule's address/port entries once (not per principal).
    let reachAllow: [UInt32: [Int32]]
    let reachDeny: [UInt32: [Int32]]
    /// Indexed by rule number; empty for rules of other kinds.
    let reachEntries: [[ReachEntry]]
    /// App, request and certificate rules per principal.
    let otherAllow: [PolicyRule.Kind: [UInt32: [Int32]]]
    let otherDeny: [PolicyRule.Kind: [UInt32: [Int32]]]

    struct ReachEntry: Sendable {
        var first: UInt128
        var last: UInt128
        var ports: [PortRange]
        var rule: Int32
    }

    /// The most (principal × host) and (rule × address) index entries a policy may expand to:
    /// a few hundred MiB at worst. A policy past it is refused at compile time rather than
    /// exhausting the server's memory.
    public static let maxIndexEntries = 5_000_000

    init(definitions: PolicyDefinitions) throws(PolicyError) {
        self.definitions = definitions
        var ids: [PolicyPrincipal: UInt32] = [.everyone: 0]
        var principals: [PolicyPrincipal] = [.everyone]
        func intern(_ p: PolicyPrincipal) -> UInt32 {
            if let id = ids[p] { return id }
            let id = UInt32(principals.count)
            ids[p] = id
            principals.append(p)
            return id
        }
        for g in definitions.groups { _ = intern(.group(g.name)) }
        for r in definitions.roles { _ = intern(.role(r.name)) }
        for h in definitions.hosts { _ = intern(.host(h.name)) }

        var userGroups: [String: [UInt32]] = [:]
        for g in definitions.groups {
            let id = intern(.group(g.name))
            for m in g.members { userGroups[m, default: []].append(id) }
        }
        var userRoles: [String: [UInt32]] = [:]
        var groupRoles: [UInt32: [UInt32]] = [:]
        var roleMax: [UInt32: Duration] = [:]
        for r in definitions.roles {
            let id = intern(.role(r.name))
            if let m = r.maxLifetime { roleMax[id] = m }
            for m in r.members {
                switch m {
                case .user(let u): userRoles[u, default: []].append(id)
                case .group: groupRoles[intern(m), default: []].append(id)
                default: break
                }
            }
        }
        self.userGroups = userGroups
        self.userRoles = userRoles
        self.groupRoles = groupRoles
        self.roleMaxLifetime = roleMax

        var hostIndex: [String: Int] = [:]
        for (i, h) in definitions.hosts.enumerated() { hostIndex[h.name] = i }
        self.hostIndex = hostIndex

        var labelIndex: [String: [Int]] = [:]
        for (i, h) in definitions.hosts.enumerated() {
            for (k, v) in h.labels { labelIndex["\(k)=\(v)", default: []].append(i) }
        }
        var sshAllow = Array(repeating: [UInt32: [Int32]](), count: definitions.hosts.count)
        var sshDeny = sshAllow
        var reachAllow: [UInt32: [Int32]] = [:]
        var reachDeny: [UInt32: [Int32]] = [:]
        var reachEntries = Array(repeating: [ReachEntry](), count: definitions.rules.count)
        var otherAllow: [PolicyRule.Kind: [UInt32: [Int32]]] = [:]
        var otherDeny: [PolicyRule.Kind: [UInt32: [Int32]]] = [:]
        var indexed = 0
        for rule in definitions.rules {
            let atoms = rule.who.map(intern)
            let index = Int32(rule.index)
            switch rule.target {
            case .ssh(let ssh):
                var selected: [Int] = []
                if ssh.allHosts {
                    selected = Array(definitions.hosts.indices)
                } else {
                    var seen = Set<Int>()
                    for n in ssh.hostNames { if let i = hostIndex[n], seen.insert(i).inserted { selected.append(i) } }
                    if !ssh.labels.isEmpty {
                        // Hosts with the rarest of the rule's labels, then checked for the rest.
                        let lists = ssh.labels.map { labelIndex["\($0.key)=\($0.value)"] ?? [] }
                        let rarest = lists.min { $0.count < $1.count } ?? []
                        for i in rarest where !seen.contains(i) {
                            let labels = definitions.hosts[i].labels
                            if ssh.labels.allSatisfy({ labels[$0.key] == $0.value }) { selected.append(i) }
                        }
                    }
                }
                indexed += selected.count * atoms.count
                try Self.checkSize(indexed, rule)
                for h in selected {
                    for a in atoms {
                        if rule.effect == .allow { sshAllow[h][a, default: []].append(index) } else { sshDeny[h][a, default: []].append(index) }
                    }
                }
            case .reach(let reach):
                var entries: [ReachEntry] = []
                for g in reach.grants {
                    for p in g.destinations {
                        for range in p.ranges {
                            entries.append(ReachEntry(first: range.lowerBound, last: range.upperBound, ports: g.ports, rule: index))
                        }
                    }
                }
                indexed += entries.count + atoms.count
                try Self.checkSize(indexed, rule)
                reachEntries[rule.index] = entries
                for a in atoms {
                    if rule.effect == .allow { reachAllow[a, default: []].append(index) } else { reachDeny[a, default: []].append(index) }
                }
            case .app, .request, .certificate:
                indexed += atoms.count
                try Self.checkSize(indexed, rule)
                for a in atoms {
                    if rule.effect == .allow {
                        otherAllow[rule.kind, default: [:]][a, default: []].append(index)
                    } else {
                        otherDeny[rule.kind, default: [:]][a, default: []].append(index)
                    }
                }
            }
        }
        self.sshAllow = sshAllow
        self.sshDeny = sshDeny
        self.reachAllow = reachAllow
        self.reachDeny = reachDeny
        self.reachEntries = reachEntries
        self.otherAllow = otherAllow
        self.otherDeny = otherDeny
        self.atomIDs = ids
        self.atomPrincipals = principals
    }

    static func checkSize(_ entries: Int, _ rule: PolicyRule) throws(PolicyError) {
        guard entries <= Self.maxIndexEntries else {
            throw PolicyError(
                rule.location,
                "the policy expands to more than \(Self.maxIndexEntries) index entries at rule '\(rule.name)' (principals × hosts, addresses); name groups instead of many people or addresses"
            )
        }
    }

    // MARK: subjects

    /// Resolves a person: static groups and roles from the policy, `directoryGroups` from the
    /// directory (names the policy does not define are ignored), and the grants still live at `now`.
    public func subject(user: String, directoryGroups: [String] = [], grants: [PolicyGrant] = [], now: Date) -> PolicySubject {
        var atoms: [UInt32] = [0]
        if let id = self.atomIDs[.user(user)] { atoms.append(id) }
        var groups = self.userGroups[user] ?? []
        for g in directoryGroups { if let id = self.atomIDs[.group(g)] { groups.append(id) } }
        atoms += groups
        atoms += self.userRoles[user] ?? []
        for g in groups { atoms += self.groupRoles[g] ?? [] }
        var expiry: [UInt32: (id: String, expiresAt: Date)] = [:]
        let permanent = atoms
        for grant in grants where grant.user == user && grant.expiresAt > now {
            guard let id = self.atomIDs[.role(grant.role)], !permanent.contains(id) else { continue }
            if let existing = expiry[id], existing.expiresAt >= grant.expiresAt { continue }
            expiry[id] = (grant.id, grant.expiresAt)
            atoms.append(id)
        }
        return self.makeSubject(name: user, isHost: false, atoms: atoms, expiry: expiry)
    }

    /// Resolves a host (an agent asking for its own certificates).
    public func subject(host: String) -> PolicySubject {
        let atoms = self.atomIDs[.host(host)].map { [$0] } ?? []
        return self.makeSubject(name: host, isHost: true, atoms: atoms, expiry: [:])
    }

    /// A synthetic member of exactly one group or role (and the roles that group holds), as the
    /// tests block and `policy explain --group` use it. Nil if the policy does not define it.
    public func subject(memberOf principal: PolicyPrincipal) -> PolicySubject? {
        guard let id = self.atomIDs[principal] else { return nil }
        var atoms: [UInt32] = [0, id]
        if case .group = principal { atoms += self.groupRoles[id] ?? [] }
        return self.makeSubject(name: nil, isHost: false, atoms: atoms, expiry: [:])
    }

    private func makeSubject(name: String?, isHost: Bool, atoms: [UInt32], expiry: [UInt32: (id: String, expiresAt: Date)]) -> PolicySubject {
        // A handful of ids: sorting in place and dropping repeats beats building a Set.
        var unique = atoms
        unique.sort()
        var write = 0
        for value in unique where write == 0 || unique[write - 1] != value {
            unique[write] = value
            write += 1
        }
        unique.removeLast(unique.count - write)
        return PolicySubject(name: name, isHost: isHost, atoms: unique, table: self.atomPrincipals, grantExpiry: expiry)
    }

    // MARK: decisions

    /// Decides `request` for `subject`. Default deny; any matching deny rule wins over every
    /// allow; among allows whose conditions hold, the first in file order is named.
    public func evaluate(_ request: PolicyRequest, subject: PolicySubject, context: PolicyContext) -> PolicyDecision {
        switch request {
        case .ssh(let login, let host):
            // A request names one real login; `*` and `$user` are rule syntax, never an answer.
            guard login != "*", !login.hasPrefix("$") else {
                return .deny(PolicyDenial(reason: .invalidRequest("'\(login)' is not a login"), rule: nil))
            }
            guard let h = self.hostIndex[host] else { return .deny(PolicyDenial(reason: .unknownTarget("host '\(host)'"), rule: nil)) }
            let denies = self.sshDeny[h]
            let allows = self.sshAllow[h]
            return self.decide(subject: subject, context: context, request: request, denies: { denies[$0] }, allows: { allows[$0] }) { rule in
                guard case .ssh(let ssh) = rule.target else { return false }
                return Self.loginMatches(ssh.logins, login: login, subject: subject)
            }
        case .reach(let address, let port, let proto):
            func hits(_ rule: Int32) -> Bool {
                self.reachEntries[Int(rule)].contains {
                    address >= $0.first && address <= $0.last && $0.ports.contains { $0.contains(proto: proto, port: port) }
                }
            }
            for atom in subject.atoms {
                for r in self.reachDeny[atom] ?? [] where hits(r) {
                    let rule = self.rules[Int(r)]
                    if Self.denyApplies(rule, context) { return .deny(PolicyDenial(reason: .explicitDeny, rule: rule)) }
                }
            }
            var best = Best()
            for atom in subject.atoms {
                for r in self.reachAllow[atom] ?? [] where hits(r) {
                    best.consider(self.rules[Int(r)], atom: atom, policy: self, subject: subject, context: context, request: request)
                }
            }
            return best.decision
        case .app(let app):
            guard self.definitions.apps.contains(where: { $0.name == app }) else {
                return .deny(PolicyDenial(reason: .unknownTarget("app '\(app)'"), rule: nil))
            }
            return self.decideOther(.app, subject: subject, context: context, request: request) { rule in
                guard case .app(let names, let all) = rule.target else { return false }
                return all || names.contains(app)
            }
        case .requestRole(let role):
            guard self.atomIDs[.role(role)] != nil else { return .deny(PolicyDenial(reason: .unknownTarget("role '\(role)'"), rule: nil)) }
            return self.decideOther(.request, subject: subject, context: context, request: request) { rule in
                guard case .request(let r) = rule.target else { return false }
                return r.allRoles || r.roles.contains(role)
            }
        case .certificate(let id):
            guard let parts = try? SPIFFEPattern.validateID(id) else {
                return .deny(PolicyDenial(reason: .invalidRequest("'\(id)' is not a valid SPIFFE ID"), rule: nil))
            }
            return self.decideOther(.certificate, subject: subject, context: context, request: request) { rule in
                guard case .certificate(let c) = rule.target else { return false }
                return c.patterns.contains {
                    $0.matches(trustDomain: parts.trustDomain, segments: parts.segments, name: subject.name, isHost: subject.isHost)
                }
            }
        }
    }

    private func decideOther(
        _ kind: PolicyRule.Kind, subject: PolicySubject, context: PolicyContext, request: PolicyRequest, matches: (PolicyRule) -> Bool
    ) -> PolicyDecision {
        let denies = self.otherDeny[kind]
        let allows = self.otherAllow[kind]
        return self.decide(subject: subject, context: context, request: request, denies: { denies?[$0] }, allows: { allows?[$0] }, matches: matches)
    }

    private func decide(
        subject: PolicySubject, context: PolicyContext, request: PolicyRequest,
        denies: (UInt32) -> [Int32]?, allows: (UInt32) -> [Int32]?, matches: (PolicyRule) -> Bool
    ) -> PolicyDecision {
        for atom in subject.atoms {
            for r in denies(atom) ?? [] {
                let rule = self.rules[Int(r)]
                if matches(rule) && Self.denyApplies(rule, context) { return .deny(PolicyDenial(reason: .explicitDeny, rule: rule)) }
            }
        }
        var best = Best()
        for atom in subject.atoms {
            for r in allows(atom) ?? [] {
                let rule = self.rules[Int(r)]
                if matches(rule) { best.consider(rule, atom: atom, policy: self, subject: subject, context: context, request: request) }
            }
        }
        return best.decision
    }

    static func loginMatches(_ logins: [String], login: String, subject: PolicySubject) -> Bool {
        logins.contains { $0 == login || $0 == "*" || ($0 == "$user" && subject.name == login && !subject.isHost) }
    }

    /// A deny with `from` applies from those networks only; from an unknown source it applies.
    static func denyApplies(_ rule: PolicyRule, _ context: PolicyContext) -> Bool {
        guard let sources = rule.sources, let address = context.sourceAddress else { return true }
        return sources.contains { $0.contains(address) }
    }

    /// Why an allow whose target matched may still not apply.
    static func unmetCondition(_ rule: PolicyRule, _ context: PolicyContext) -> PolicyDenial.Reason? {
        if let sources = rule.sources {
            guard let address = context.sourceAddress, sources.contains(where: { $0.contains(address) }) else { return .sourceNotAllowed }
        }
        if let window = rule.stepUp {
            guard let last = context.lastStepUp, last <= context.now.addingTimeInterval(60),
                context.now.timeIntervalSince(last) <= Double(window.components.seconds)
            else { return .stepUpRequired(within: window) }
        }
        return nil
    }

    /// The credential lifetime an allow grants through `atom`.
    func lifetime(_ rule: PolicyRule, atom: UInt32, subject: PolicySubject, context: PolicyContext, request: PolicyRequest) -> Duration? {
        var result = rule.lifetime
        if case .request(let r) = rule.target, case .requestRole(let role) = request {
            result = r.maxDuration
            if let id = self.atomIDs[.role(role)], let cap = self.roleMaxLifetime[id] { result = min(r.maxDuration, cap) }
            return result
        }
        guard var value = result else { return nil }
        if let cap = self.roleMaxLifetime[atom] { value = min(value, cap) }
        if let grant = subject.grantExpiry[atom] {
            let remaining = Int64(grant.expiresAt.timeIntervalSince(context.now).rounded(.down))
            value = min(value, .seconds(max(remaining, 0)))
        }
        return value
    }

    /// Tracks the best allow seen so far and the most useful reason when none applies.
    struct Best {
        var allowance: PolicyAllowance? = nil
        var failure: PolicyDenial? = nil

        mutating func consider(
            _ rule: PolicyRule, atom: UInt32, policy: CompiledPolicy, subject: PolicySubject, context: PolicyContext, request: PolicyRequest
        ) {
            // A role held through a grant that has ended is not held, even by a subject
            // resolved before the end.
            guard subject.holds(atom, at: context.now) else { return }
            if let reason = CompiledPolicy.unmetCondition(rule, context) {
                if self.failure == nil || (reason != .sourceNotAllowed && self.failure?.reason == .sourceNotAllowed) {
                    self.failure = PolicyDenial(reason: reason, rule: rule)
                }
                return
            }
            let lifetime = policy.lifetime(rule, atom: atom, subject: subject, context: context, request: request)
            if let current = self.allowance {
                if current.rule.index < rule.index { return }
                if current.rule.index == rule.index, (current.lifetime ?? .zero) >= (lifetime ?? .zero) { return }
            }
            self.allowance = PolicyAllowance(
                rule: rule, via: policy.atomPrincipals[Int(atom)], lifetime: lifetime, grantID: subject.grantExpiry[atom]?.id)
        }

        var decision: PolicyDecision {
            if let a = self.allowance { return .allow(a) }
            return .deny(self.failure ?? PolicyDenial(reason: .noMatchingRule, rule: nil))
        }
    }
}
