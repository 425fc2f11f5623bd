public import Foundation
public import GatehouseCore

/// What the SSH certificate authority needs for one login: the rule that allows it and the
/// certificate contents that rule asks for.
public struct SSHLoginGrant: Sendable, Equatable {
    public var login: String
    public var allowance: PolicyAllowance
    public var extensions: [String]
    public var forceCommand: String?
    /// The rule's `from` networks, for the certificate's `source-address` critical option.
    public var sourceAddresses: [IPPrefix]?
}

/// One element of a node's packet-filter allow set: traffic from `source` to `box` is allowed.
public struct NetworkElement: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var source: IPPrefix
    public var box: NetworkBox

    /// nftables concatenation form, one element per destination prefix:
    /// `10.100.0.7 . 10.0.5.0/24 . tcp . 5432`.
    public var nftables: [String] {
        let ports: String
        switch self.box.ports.proto {
        case .icmp: ports = "icmp . 0"
        default:
            let p = self.box.ports
            ports = "\(p.proto.rawValue) . " + (p.low == p.high ? "\(p.low)" : "\(p.low)-\(p.high)")
        }
        return self.box.prefixes.map { "\(self.source) . \($0) . \(ports)" }
    }

    public var description: String { self.nftables.joined(separator: ", ") }

    public static func < (a: Self, b: Self) -> Bool { (a.source, a.box) < (b.source, b.box) }
}

extension CompiledPolicy {
    // MARK: SSH

    /// Every named login `subject` may use on `host`, each with the rule and certificate options
    /// that allow it. `$user` becomes the subject's own name; a rule's `*` allows any login the
    /// authority asks about with ``evaluate(_:subject:context:)``, but lists none here.
    public func sshLogins(subject: PolicySubject, host: String, context: PolicyContext) -> [SSHLoginGrant] {
        guard let h = self.hostIndex[host] else { return [] }
        var candidates = Set<String>()
        for atom in subject.atoms {
            for r in self.sshAllow[h][atom] ?? [] {
                guard case .ssh(let ssh) = self.rules[Int(r)].target else { continue }
                for login in ssh.logins {
                    // `*` cannot be listed: the certificate authority asks for the concrete login.
                    if login == "$user" {
                        if let n = subject.name, !subject.isHost { candidates.insert(n) }
                    } else if login != "*" {
                        candidates.insert(login)
                    }
                }
            }
        }
        return candidates.sorted().compactMap { login in
            guard case .allow(let a) = self.evaluate(.ssh(login: login, host: host), subject: subject, context: context),
                case .ssh(let ssh) = a.rule.target
            else { return nil }
            return SSHLoginGrant(
                login: login, allowance: a, extensions: ssh.extensions, forceCommand: ssh.forceCommand, sourceAddresses: a.rule.sources)
        }
    }

    // MARK: network

    /// The boxes `subject` may send to at `now`, allows minus denies, before any node is chosen.
    /// `source` is the address the packets come from (a device's tunnel address), checked
    /// against rules' `from`.
    public func reachableBoxes(subject: PolicySubject, source: UInt128?, at now: Date) -> [NetworkBox] {
        var allowed: [NetworkBox] = []
        var denied: [NetworkBox] = []
        let context = PolicyContext(now: now, sourceAddress: source, lastStepUp: nil)
        for atom in subject.atoms {
            for r in self.reachAllow[atom] ?? []
            where subject.holds(atom, at: now) && CompiledPolicy.unmetCondition(self.rules[Int(r)], context) == nil {
                for e in self.reachEntries[Int(r)] { allowed += e.ports.map { NetworkBox(first: e.first, last: e.last, ports: $0) } }
            }
            for r in self.reachDeny[atom] ?? [] where CompiledPolicy.denyApplies(self.rules[Int(r)], context) {
                for e in self.reachEntries[Int(r)] { denied += e.ports.map { NetworkBox(first: e.first, last: e.last, ports: $0) } }
            }
        }
        return NetworkBox.subtract(Array(Set(allowed)), denied)
    }

    /// The packet-filter allow set of one node (a host, guarding its own addresses and the
    /// networks it routes) at `now`: for each member and each of their source addresses, what
    /// they may reach through this node. Everything else is dropped by the node's default.
    public func networkAllowSet(node: String, members: [(subject: PolicySubject, sources: [IPPrefix])], at now: Date) -> [NetworkElement] {
        var out = Set<NetworkElement>()
        for (subject, sources) in members {
            for source in sources {
                for box in self.guardedBoxes(node: node, subject: subject, source: source, at: now) {
                    out.insert(NetworkElement(source: source, box: box))
                }
            }
        }
        return out.sorted()
    }

    /// The same allow set grouped into classes: sources that may reach exactly the same boxes
    /// share one class, and a class's boxes never overlap (nftables interval sets refuse
    /// overlapping elements). Sources that may reach nothing are left out.
    public func networkAllowClasses(node: String, members: [(subject: PolicySubject, sources: [IPPrefix])], at now: Date) -> [(
        sources: [IPPrefix], boxes: [NetworkBox]
    )] {
        var classes: [[NetworkBox]: [IPPrefix]] = [:]
        var memo: [[UInt32]: [NetworkBox]] = [:]
        let conditional = self.hasSourceConditions
        for (subject, sources) in members {
            for source in sources {
                // Members holding the same principals reach the same boxes unless a rule's `from`
                // tells their sources apart; only then is the work repeated.
                let boxes: [NetworkBox]
                if conditional {
                    boxes = NetworkBox.disjoint(self.guardedBoxes(node: node, subject: subject, source: source, at: now))
                } else if let known = memo[subject.atoms.filter { subject.holds($0, at: now) }] {
                    boxes = known
                } else {
                    boxes = NetworkBox.disjoint(self.guardedBoxes(node: node, subject: subject, source: source, at: now))
                    memo[subject.atoms.filter { subject.holds($0, at: now) }] = boxes
                }
                if !boxes.isEmpty { classes[boxes, default: []].append(source) }
            }
        }
        return classes.map { (sources: $0.value.sorted(), boxes: $0.key) }.sorted { $0.sources[0] < $1.sources[0] }
    }

    /// Whether any reach rule has a `from` condition (then a source's address matters).
    var hasSourceConditions: Bool {
        self.rules.contains { r in
            if case .reach = r.target { return r.sources != nil }
            return false
        }
    }

    /// What `subject` sending from `source` may reach of what `node` guards, at `now`.
    func guardedBoxes(node: String, subject: PolicySubject, source: IPPrefix, at now: Date) -> [NetworkBox] {
        guard let h = self.hostIndex[node] else { return [] }
        let host = self.definitions.hosts[h]
        let guarded = host.addresses + host.routes
        var out: [NetworkBox] = []
        for box in self.reachableBoxes(subject: subject, source: source.isSingleAddress ? source.first : nil, at: now) {
            // A packet never crosses families, and an nftables element cannot either.
            for g in guarded where g.isIPv4 == source.isIPv4 {
                for range in g.ranges {
                    if let cut = box.intersection(first: range.lowerBound, last: range.upperBound) { out.append(cut) }
                }
            }
        }
        return out
    }

    // MARK: access table

    /// The whole compiled policy as sorted lines, one per (enforcement point, target, principal):
    /// what golden tests pin and what `policy diff` compares.
    public func accessTable() -> [String] {
        var lines: [String] = []
        func who(_ atom: UInt32) -> String { self.atomPrincipals[Int(atom)].description }
        func ruleText(_ r: PolicyRule) -> String {
            var extras: [String] = []
            if let l = r.lifetime { extras.append("lifetime=\(PolicyDuration.format(l))") }
            if let s = r.stepUp { extras.append("step_up=\(PolicyDuration.format(s))") }
            if let f = r.sources { extras.append("from=\(f.map(\.description).joined(separator: ","))") }
            return "\(r.effect.rawValue) [\(r.name)]" + (extras.isEmpty ? "" : " " + extras.joined(separator: " "))
        }
        // Who holds which group and role: a membership change changes access as much as a rule.
        for g in self.definitions.groups {
            for m in g.members { lines.append("member group:\(g.name) user:\(m)") }
        }
        for r in self.definitions.roles {
            for m in r.members {
                lines.append("member role:\(r.name) \(m)" + (r.maxLifetime.map { " max_lifetime=\(PolicyDuration.format($0))" } ?? ""))
            }
        }
        for (h, host) in self.definitions.hosts.enumerated() {
            for (table, _) in [(self.sshDeny[h], 0), (self.sshAllow[h], 1)] {
                for (atom, rules) in table {
                    for r in rules {
                        let rule = self.rules[Int(r)]
                        guard case .ssh(let ssh) = rule.target else { continue }
                        let options =
                            rule.effect == .allow
                            ? " " + ssh.extensions.joined(separator: ",") + (ssh.forceCommand.map { " force-command=\($0)" } ?? "") : ""
                        lines.append("ssh \(host.name) \(who(atom)) \(ssh.logins.joined(separator: ",")) \(ruleText(rule))\(options)")
                    }
                }
            }
            let guarded = host.addresses + host.routes
            for table in [self.reachDeny, self.reachAllow] {
                for (atom, rules) in table {
                    for r in rules {
                        for e in self.reachEntries[Int(r)] {
                            for g in guarded {
                                for range in g.ranges {
                                    let f = max(e.first, range.lowerBound)
                                    let l = min(e.last, range.upperBound)
                                    guard f <= l else { continue }
                                    let dest = IPPrefix.covering(f...l).map(\.description).joined(separator: ",")
                                    lines.append(
                                        "net \(host.name) \(who(atom)) \(dest) \(PortRange.describe(e.ports)) \(ruleText(self.rules[Int(r)]))")
                                }
                            }
                        }
                    }
                }
            }
        }
        for kind in [PolicyRule.Kind.app, .request, .certificate] {
            for table in [self.otherDeny[kind] ?? [:], self.otherAllow[kind] ?? [:]] {
                for (atom, rules) in table {
                    for r in rules {
                        let rule = self.rules[Int(r)]
                        switch rule.target {
                        case .app(let names, let all):
                            lines.append("app \(all ? "*" : names.joined(separator: ",")) \(who(atom)) \(ruleText(rule))")
                        case .request(let q):
                            let approvers = q.approvers.map(\.description).joined(separator: ",")
                            lines.append(
                                "request \(q.allRoles ? "*" : q.roles.joined(separator: ",")) \(who(atom)) \(ruleText(rule))"
                                    + (rule.effect == .allow
                                        ? " approvers=\(approvers) approvals=\(q.approvals) max=\(PolicyDuration.format(q.maxDuration)) reason=\(q.reasonRequired ? "required" : "optional")"
                                        : ""))
                        case .certificate(let c):
                            lines.append(
                                "pki \(c.patterns.map(\.description).joined(separator: ",")) \(who(atom)) \(ruleText(rule))"
                                    + (c.dnsNames.isEmpty ? "" : " dns=\(c.dnsNames.joined(separator: ","))"))
                        default: break
                        }
                    }
                }
            }
        }
        return lines.sorted()
    }
}
