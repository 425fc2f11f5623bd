import Foundation
public import GatehouseCore

/// Turns policy text into a ``CompiledPolicy``: parse, check every name, reference and type,
/// then index. Problems are collected (up to ``maxDiagnostics``) with file:line:col and thrown
/// together; nothing of a policy with any problem is ever returned.
public struct PolicyCompiler: Sendable {
    public static let maxDiagnostics = 50
    public static let defaultSSHLifetime: Duration = .seconds(8 * 3600)
    public static let defaultCertificateLifetime: Duration = .seconds(24 * 3600)
    /// SSH certificate extensions a rule may name (PROTOCOL.certkeys).
    public static let sshExtensions: Set<String> = [
        "permit-pty", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc",
        "no-touch-required",
    ]

    public let fileName: String
    public let parserLimits: PolicyParser.Limits
    /// The deployment's address plan, which gives hosts with `org = "..."` their mesh address.
    public let addressing: MeshAddressing

    /// Names of groups, roles, hosts, rules: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    public static func isName(_ s: String) -> Bool { Checker.isName(s) }

    public init(fileName: String, parserLimits: PolicyParser.Limits = .default, addressing: MeshAddressing = .placeholder) {
        self.fileName = fileName
        self.parserLimits = parserLimits
        self.addressing = addressing
    }

    public func compile(_ text: String) throws(PolicyError) -> CompiledPolicy {
        let statements = try PolicyParser(fileName: self.fileName, limits: self.parserLimits).parse(text)
        var checker = Checker(addressing: self.addressing)
        checker.run(statements)
        guard checker.diagnostics.isEmpty else { throw PolicyError(Array(checker.diagnostics.prefix(Self.maxDiagnostics))) }
        return try CompiledPolicy(definitions: checker.definitions)
    }
}

private struct Checker {
    let addressing: MeshAddressing
    var diagnostics: [PolicyDiagnostic] = []
    var definitions = PolicyDefinitions()
    var groupNames: [String: PolicyLocation] = [:]
    var roleNames: [String: PolicyLocation] = [:]
    var hostNames: [String: Int] = [:]
    var destinationNames: [String: (kind: String, location: PolicyLocation)] = [:]
    var appNames: Set<String> = []
    var clientIDs: Set<String> = []
    var identityNames: [String: Int] = [:]
    var ruleNames: [String: PolicyLocation] = [:]

    mutating func error(_ location: PolicyLocation, _ message: String) {
        if self.diagnostics.count < PolicyCompiler.maxDiagnostics + 1 { self.diagnostics.append(PolicyDiagnostic(location, message)) }
    }

    // MARK: passes

    mutating func run(_ statements: [PolicySyntax.Statement]) {
        // Pass 1 declares every name so that definitions and rules may refer forward.
        var blocks: [PolicySyntax.Block] = []
        var sawTests = false
        for statement in statements {
            switch statement {
            case .attribute(let name, let value, let location):
                if name == "version" {
                    if case .word("1", _) = value { continue }
                    self.error(value.location, "unsupported policy version; this Gatehouse reads version = 1")
                } else {
                    self.error(location, "unknown top-level setting '\(name)'; expected a block such as group, host or allow")
                }
            case .phrase(let words, let location):
                self.error(location, "unexpected '\(words.joined(separator: " "))' outside a tests block")
            case .block(let block):
                if block.keyword == "tests" {
                    if sawTests { self.error(block.location, "a policy has one tests block") }
                    sawTests = true
                }
                blocks.append(block)
                self.declare(block)
            }
        }
        // Pass 2 gives every definition its meaning; pass 3 the rules, which refer to definitions.
        // Services refer to hosts and networks, so those come first.
        let order = ["group", "role", "host", "network", "app", "identity", "service"]
        for keyword in order {
            for block in blocks where block.keyword == keyword { self.define(block) }
            if keyword == "host" { self.finishMesh() }
        }
        for block in blocks where block.keyword == "allow" || block.keyword == "deny" { self.rule(block) }
        for block in blocks where block.keyword == "tests" { self.tests(block) }
    }

    /// Organizations must land on distinct /64s, hosts on distinct addresses; a gateway guards
    /// (and forwards to) every organization's /64 besides its own routes.
    mutating func finishMesh() {
        var subnets: [UInt16: String] = [:]
        var addresses: [IPPrefix: String] = [:]
        for host in self.definitions.hosts {
            guard let org = host.organization, let mesh = host.meshAddress else { continue }
            let subnet = MeshAddressing.subnet(organization: org)
            if let other = subnets[subnet], other != org {
                self.error(host.location, "organizations '\(other)' and '\(org)' fall on the same mesh subnet; rename one")
            }
            subnets[subnet] = org
            if let other = addresses[mesh] {
                self.error(host.location, "hosts '\(other)' and '\(host.name)' fall on the same mesh address; rename one")
            }
            addresses[mesh] = host.name
        }
        // A gateway's own routes are judged by the packet filters alone: inside the mesh they
        // would switch the isolation program off for part of an organization.
        for host in self.definitions.hosts where host.gateway {
            for r in host.routes where self.addressing.prefix.contains(r) || r.contains(self.addressing.prefix) {
                self.error(host.location, "gateway '\(host.name)': route \(r) overlaps the private network's \(self.addressing.prefix)")
            }
        }
        let organizationPrefixes = Set(subnets.values).sorted().map { self.addressing.organizationPrefix($0) }
        for i in self.definitions.hosts.indices where self.definitions.hosts[i].gateway {
            for p in organizationPrefixes where !self.definitions.hosts[i].routes.contains(p) { self.definitions.hosts[i].routes.append(p) }
        }
    }

    mutating func declare(_ block: PolicySyntax.Block) {
        let known = ["group", "role", "host", "network", "service", "app", "identity", "allow", "deny", "tests"]
        guard known.contains(block.keyword) else {
            self.error(block.location, "unknown block '\(block.keyword)'; expected one of \(known.joined(separator: ", "))")
            return
        }
        if block.keyword == "tests" {
            if !block.labels.isEmpty { self.error(block.location, "tests takes no name") }
            return
        }
        let isRule = block.keyword == "allow" || block.keyword == "deny"
        guard block.labels.count == (isRule ? 2 : 1) else {
            self.error(block.location, isRule ? "expected '\(block.keyword) KIND NAME {'" : "expected '\(block.keyword) NAME {'")
            return
        }
        let name = block.labels.last!
        guard Self.isName(name) else {
            self.error(block.location, "'\(name)' is not a valid name: 1–64 of a-z 0-9 . _ -, starting with a letter or digit")
            return
        }
        func unique(_ table: [String: PolicyLocation], _ what: String) -> Bool {
            if let first = table[name] {
                self.error(block.location, "\(what) '\(name)' is already defined at line \(first.line)")
                return false
            }
            return true
        }
        switch block.keyword {
        case "group":
            if self.roleNames[name] != nil { self.error(block.location, "'\(name)' is already a role; groups and roles share names") }
            if unique(self.groupNames, "group") { self.groupNames[name] = block.location }
        case "role":
            if self.groupNames[name] != nil { self.error(block.location, "'\(name)' is already a group; groups and roles share names") }
            if unique(self.roleNames, "role") { self.roleNames[name] = block.location }
        case "host", "network", "service":
            if let first = self.destinationNames[name] {
                self.error(
                    block.location,
                    "'\(name)' is already defined as a \(first.kind) at line \(first.location.line); hosts, networks and services share names")
            } else {
                self.destinationNames[name] = (block.keyword, block.location)
            }
        case "app", "identity":
            break
        default:
            if unique(self.ruleNames, "rule") { self.ruleNames[name] = block.location }
        }
    }

    static func isName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...64).contains(b.count), (b[0] >= 0x61 && b[0] <= 0x7A) || (b[0] >= 0x30 && b[0] <= 0x39) else { return false }
        return b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    // MARK: definitions

    /// An app behind the proxy needs an http(s) upstream and exactly one of a host name or a
    /// path prefix, unique across apps.
    fileprivate mutating func checkProxy(_ app: inout PolicyDefinitions.App, _ a: Attributes, _ block: PolicySyntax.Block) {
        if let upstream = app.upstream {
            let c = URLComponents(string: upstream)
            if c?.scheme.map({ ["http", "https"].contains($0) }) != true || (c?.host ?? "").isEmpty || c?.fragment != nil || c?.query != nil {
                self.error(
                    a.location("upstream") ?? block.location,
                    "upstream must be an http or https URL without query or fragment, e.g. \"http://127.0.0.1:3000\"")
            }
            if (app.proxyHost == nil) == (app.proxyPath == nil) {
                self.error(block.location, "app '\(app.name)' has an upstream: give it exactly one of host = \"name\" or path = \"/prefix/\"")
            }
        } else if app.proxyHost != nil || app.proxyPath != nil {
            self.error(block.location, "app '\(app.name)': host and path need upstream = \"http://...\"")
        }
        if let host = app.proxyHost {
            let lowered = host.lowercased()
            if !Self.isDNSPattern(lowered) || lowered.hasPrefix("*.") {
                self.error(a.location("host") ?? block.location, "'\(host)' is not a host name")
            }
            if self.definitions.apps.contains(where: { $0.proxyHost == lowered }) {
                self.error(a.location("host") ?? block.location, "host '\(host)' is proxied by another app")
            }
            app.proxyHost = lowered
        }
        if let path = app.proxyPath {
            let ok =
                path.hasPrefix("/") && path.hasSuffix("/") && path.count >= 3 && !path.contains("..") && !path.contains("//")
                && path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "%") }
            if !ok {
                self.error(a.location("path") ?? block.location, "path must look like \"/name/\": start and end with /, no '..', '?', '#' or '%'")
            }
            for reserved in [
                "/oauth2/", "/.well-known/", "/v1/", "/assets/", "/graphql/", "/api/", "/signin/", "/enroll/", "/account/", "/device/", "/metrics/",
                "/healthz/", "/readyz/",
            ] where path.hasPrefix(reserved) || reserved.hasPrefix(path) {
                self.error(a.location("path") ?? block.location, "path '\(path)' overlaps Gatehouse's own \(reserved)")
            }
            if self.definitions.apps.contains(where: { $0.proxyPath.map { $0.hasPrefix(path) || path.hasPrefix($0) } ?? false }) {
                self.error(a.location("path") ?? block.location, "path '\(path)' overlaps another app's path")
            }
        }
    }

    mutating func define(_ block: PolicySyntax.Block) {
        guard block.labels.count == 1, Self.isName(block.labels[0]) else { return }
        let name = block.labels[0]
        var a = Attributes(block: block, checker: &self)
        switch block.keyword {
        case "group":
            a.allow(["members", "description"])
            var members: [String] = []
            var seen = Set<String>()
            for word in a.words("members", &self) {
                if (try? Username(validating: word.text)) == nil {
                    self.error(word.location, "group member '\(word.text)' is not a valid user name (groups hold users; roles hold groups)")
                } else if !seen.insert(word.text).inserted {
                    self.error(word.location, "'\(word.text)' is listed twice")
                } else {
                    members.append(word.text)
                }
            }
            self.definitions.groups.append(.init(name: name, members: members, location: block.location))
        case "role":
            a.allow(["members", "max_lifetime", "description"])
            var members: [PolicyPrincipal] = []
            for word in a.words("members", &self) {
                guard let p = self.principal(word, allowed: [.user, .group]) else { continue }
                members.append(p)
            }
            let maxLifetime = a.duration("max_lifetime", &self)
            self.definitions.roles.append(.init(name: name, members: members, maxLifetime: maxLifetime, location: block.location))
        case "host":
            a.allow(["addresses", "labels", "routes", "description", "org", "gateway", "ssh_port"])
            var addresses = a.prefixes("addresses", &self, singleAddresses: true)
            let organization = a.string("org", &self)
            if let organization, !Checker.isName(organization) {
                self.error(block.location, "org '\(organization)' must be 1–64 of a-z 0-9 . _ - (starting with a letter or digit)")
            }
            let gateway = a.bool("gateway", &self) ?? false
            if gateway && organization == nil {
                self.error(block.location, "gateway host '\(name)' needs org = \"...\": a gateway is on the private network")
            }
            // A host on the private network has its mesh address, whatever else it declares.
            let mesh = organization.map { self.addressing.hostAddress(organization: $0, host: name) }
            if let mesh { addresses.append(mesh) }
            if addresses.isEmpty && a.has("addresses") == false {
                self.error(block.location, "host '\(name)' needs addresses = [...] or org = \"...\"")
            }
            let labels = a.labels("labels", &self)
            let routes = a.prefixes("routes", &self, singleAddresses: false)
            self.hostNames[name] = self.definitions.hosts.count
            let sshPort = a.integer("ssh_port", &self, range: 1...65535) ?? 22
            self.definitions.hosts.append(
                .init(
                    name: name, addresses: addresses, labels: labels, routes: routes, organization: organization, meshAddress: mesh, gateway: gateway,
                    sshPort: sshPort, location: block.location))
        case "network":
            a.allow(["cidrs", "description"])
            let prefixes = a.prefixes("cidrs", &self, singleAddresses: false)
            if !a.has("cidrs") { self.error(block.location, "network '\(name)' needs cidrs = [...]") }
            self.definitions.networks.append(.init(name: name, prefixes: prefixes, location: block.location))
        case "service":
            a.allow(["to", "ports", "description"])
            var destinations: [IPPrefix] = []
            for word in a.words("to", &self) {
                if let p = try? IPPrefix(parsing: word.text) {
                    destinations.append(p)
                } else if let resolved = self.destination(word, allowServices: false) {
                    destinations += resolved.prefixes
                }
            }
            if !a.has("to") { self.error(block.location, "service '\(name)' needs to = [...]") }
            let ports = a.ports("ports", &self)
            if !a.has("ports") { self.error(block.location, "service '\(name)' needs ports = [...]") }
            self.definitions.services.append(.init(name: name, destinations: destinations, ports: ports, location: block.location))
        case "app":
            a.allow([
                "client_id", "redirect_uris", "upstream", "host", "path", "share_origin", "gatehouse_scopes", "device_gatehouse_scopes",
                "description",
            ])
            let clientID = a.string("client_id", &self) ?? name
            if self.appNames.contains(name) { self.error(block.location, "app '\(name)' is already defined") }
            if self.clientIDs.contains(clientID) { self.error(block.location, "client_id '\(clientID)' is used by another app") }
            self.appNames.insert(name)
            self.clientIDs.insert(clientID)
            var app = PolicyDefinitions.App(name: name, clientID: clientID, location: block.location)
            for w in a.words("redirect_uris", &self) {
                if let problem = RedirectURI.problem(w.text) { self.error(w.location, problem) } else { app.redirectURIs.append(w.text) }
            }
            if app.redirectURIs.count > 16 { self.error(block.location, "app '\(name)' lists more than 16 redirect URIs") }
            if a.has("gatehouse_scopes") {
                // `gatehouse_scopes = [none]` takes them away from gatehouse-cli too.
                var scopes: Set<String> = []
                for w in a.words("gatehouse_scopes", &self) where w.text != "none" {
                    if PolicyDefinitions.gatehouseScopeNames.contains(w.text) {
                        scopes.insert(w.text)
                    } else {
                        self.error(
                            w.location,
                            "'\(w.text)' is not one of Gatehouse's own scopes; expected \(PolicyDefinitions.gatehouseScopeNames.sorted().joined(separator: ", ")) or none"
                        )
                    }
                }
                app.gatehouseScopes = scopes
            }
            for w in a.words("device_gatehouse_scopes", &self) {
                if PolicyDefinitions.gatehouseScopeNames.contains(w.text) {
                    app.deviceGatehouseScopes.insert(w.text)
                } else {
                    self.error(
                        w.location,
                        "'\(w.text)' is not one of Gatehouse's own scopes; expected \(PolicyDefinitions.gatehouseScopeNames.sorted().joined(separator: ", "))"
                    )
                }
            }
            app.upstream = a.string("upstream", &self)
            app.proxyHost = a.string("host", &self)
            app.proxyPath = a.string("path", &self)
            self.checkProxy(&app, a, block)
            // A path app is served on Gatehouse's own origin: its pages' scripts can do anything
            // the signed-in user can do on Gatehouse. That must be a deliberate choice.
            if app.proxyPath != nil, a.bool("share_origin", &self) != true {
                self.error(
                    a.location("path") ?? block.location,
                    "app '\(name)' under a path shares Gatehouse's origin (its scripts act as the signed-in user on Gatehouse); give it its own host = \"...\", or add share_origin = true if it is as trusted as Gatehouse"
                )
            } else if app.proxyPath == nil, a.has("share_origin") {
                self.error(a.location("share_origin") ?? block.location, "share_origin applies only to an app with a path")
            }
            self.definitions.apps.append(app)
        case "identity":
            a.allow(["spiffe", "dns", "description"])
            guard let text = a.string("spiffe", &self) else {
                self.error(block.location, "identity '\(name)' needs spiffe = \"spiffe://TRUST-DOMAIN/...\"")
                return
            }
            let dns = a.words("dns", &self).compactMap { w -> String? in
                guard Self.isDNSPattern(w.text) else {
                    self.error(w.location, "'\(w.text)' is not a DNS name (a leading '*.' is allowed)")
                    return nil
                }
                return w.text
            }
            if self.identityNames[name] != nil {
                self.error(block.location, "identity '\(name)' is already defined")
                return
            }
            do {
                let pattern = try SPIFFEPattern(parsing: text)
                self.identityNames[name] = self.definitions.identities.count
                self.definitions.identities.append(.init(name: name, pattern: pattern, dnsNames: dns, location: block.location))
            } catch {
                self.error(a.location("spiffe") ?? block.location, error.message)
            }
        default:
            break
        }
        a.finish(&self)
    }

    static func isDNSPattern(_ s: String) -> Bool {
        let name = s.hasPrefix("*.") ? String(s.dropFirst(2)) : s
        guard (1...253).contains(name.utf8.count) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        }
    }

    enum PrincipalKind { case everyone, user, group, role, host }

    /// Resolves a `who`-style word. Bare names must be a group or a role, so a typo is an error
    /// and never a silent grant to a user nobody has.
    mutating func principal(_ word: Word, allowed: Set<PrincipalKind>) -> PolicyPrincipal? {
        let text = word.text
        var result: PolicyPrincipal? = nil
        var kind: PrincipalKind = .user
        if text == "everyone" {
            result = .everyone
            kind = .everyone
        } else if let colon = text.firstIndex(of: ":") {
            let prefix = text[..<colon]
            let name = String(text[text.index(after: colon)...])
            switch prefix {
            case "user":
                guard (try? Username(validating: name)) != nil else {
                    self.error(word.location, "'\(name)' is not a valid user name")
                    return nil
                }
                result = .user(name)
                kind = .user
            case "group":
                guard self.groupNames[name] != nil else {
                    self.error(word.location, "unknown group '\(name)'")
                    return nil
                }
                result = .group(name)
                kind = .group
            case "role":
                guard self.roleNames[name] != nil else {
                    self.error(word.location, "unknown role '\(name)'")
                    return nil
                }
                result = .role(name)
                kind = .role
            case "host":
                guard self.hostNames[name] != nil || self.destinationNames[name]?.kind == "host" else {
                    self.error(word.location, "unknown host '\(name)'")
                    return nil
                }
                result = .host(name)
                kind = .host
            default:
                self.error(word.location, "'\(text)': expected everyone, user:NAME, group:NAME, role:NAME or host:NAME")
                return nil
            }
        } else if self.groupNames[text] != nil {
            result = .group(text)
            kind = .group
        } else if self.roleNames[text] != nil {
            result = .role(text)
            kind = .role
        } else {
            self.error(word.location, "unknown group or role '\(text)'; write user:\(text) for a person")
            return nil
        }
        guard allowed.contains(kind) else {
            self.error(word.location, "'\(text)' cannot be used here")
            return nil
        }
        return result
    }

    // MARK: rules

    mutating func rule(_ block: PolicySyntax.Block) {
        guard block.labels.count == 2, Self.isName(block.labels[1]) else { return }
        guard let kind = PolicyRule.Kind(rawValue: block.labels[0]) else {
            self.error(block.location, "unknown rule kind '\(block.labels[0])'; expected ssh, reach, app, request or certificate")
            return
        }
        let effect: PolicyRule.Effect = block.keyword == "allow" ? .allow : .deny
        let isAllow = effect == .allow
        var a = Attributes(block: block, checker: &self)
        var allowed = ["who", "from", "description"]
        if isAllow { allowed += ["deliberate"] }
        switch kind {
        case .ssh: allowed += ["logins", "hosts", "labels"] + (isAllow ? ["lifetime", "step_up", "options", "force_command"] : [])
        case .reach: allowed += ["to", "ports"]
        case .app: allowed += ["apps"] + (isAllow ? ["step_up"] : [])
        case .request: allowed += ["roles"] + (isAllow ? ["approvers", "approvals", "max_duration", "reason"] : [])
        case .certificate: allowed += ["identities"] + (isAllow ? ["lifetime", "step_up"] : [])
        }
        a.allow(allowed)

        var who: [PolicyPrincipal] = []
        var whoSeen = Set<PolicyPrincipal>()
        // Hosts ask for certificates, and send packets to each other over the mesh.
        let hostsMayAsk: Set<PrincipalKind> =
            kind == .certificate || kind == .reach ? [.everyone, .user, .group, .role, .host] : [.everyone, .user, .group, .role]
        for word in a.words("who", &self) {
            if let p = self.principal(word, allowed: hostsMayAsk), whoSeen.insert(p).inserted { who.append(p) }
        }
        if !a.has("who") { self.error(block.location, "rule '\(block.labels[1])' needs who = [...]") }
        let sources = a.has("from") ? a.prefixes("from", &self, singleAddresses: false) : nil
        let stepUp = a.duration("step_up", &self)
        if kind == .reach, a.has("step_up") {
            self.error(block.location, "step_up is not possible on reach rules: a packet filter cannot ask for a passkey")
        }
        let deliberate = a.bool("deliberate", &self) ?? false
        var lifetime = a.duration("lifetime", &self)
        let everyone = who.contains(.everyone)
        var grantsEverything = false

        let target: PolicyRule.Target
        switch kind {
        case .ssh:
            var logins: [String] = []
            var seenLogins = Set<String>()
            for w in a.words("logins", &self) {
                guard w.text == "*" || w.text == "$user" || Self.isLogin(w.text) else {
                    self.error(w.location, "'\(w.text)' is not a login: 1–32 of a-z A-Z 0-9 . _ -, or $user, or *")
                    continue
                }
                if seenLogins.insert(w.text).inserted { logins.append(w.text) }
            }
            if !a.has("logins") { self.error(block.location, "ssh rule needs logins = [...]") }
            var hostNames: [String] = []
            var seenHosts = Set<String>()
            var allHosts = false
            for w in a.words("hosts", &self) {
                if w.text == "*" {
                    allHosts = true
                    continue
                }
                let n = w.text.hasPrefix("host:") ? String(w.text.dropFirst(5)) : w.text
                guard self.hostNames[n] != nil else {
                    self.error(w.location, "unknown host '\(n)'")
                    continue
                }
                if seenHosts.insert(n).inserted { hostNames.append(n) }
            }
            let labels = a.labels("labels", &self)
            if !a.has("hosts") && !a.has("labels") { self.error(block.location, "ssh rule needs hosts = [...] or labels = { ... }") }
            var extensions = ["permit-pty"]
            if a.has("options") {
                extensions = []
                for w in a.words("options", &self) {
                    guard PolicyCompiler.sshExtensions.contains(w.text) else {
                        self.error(
                            w.location, "unknown SSH option '\(w.text)'; known: \(PolicyCompiler.sshExtensions.sorted().joined(separator: ", "))")
                        continue
                    }
                    if !extensions.contains(w.text) { extensions.append(w.text) }
                }
            }
            let forceCommand = a.string("force_command", &self)
            if isAllow && lifetime == nil { lifetime = PolicyCompiler.defaultSSHLifetime }
            grantsEverything = allHosts && logins.contains("*")
            target = .ssh(
                .init(
                    logins: logins, hostNames: hostNames, allHosts: allHosts, labels: labels, extensions: extensions.sorted(),
                    forceCommand: forceCommand))
        case .reach:
            var grants: [PolicyRule.Reach.Grant] = []
            var plain: [IPPrefix] = []
            var allDestinations = false
            var needsPorts = false
            for w in a.words("to", &self) {
                if w.text == "*" {
                    allDestinations = true
                    plain += [.anyIPv4, .anyIPv6]
                    needsPorts = true
                } else if let p = try? IPPrefix(parsing: w.text) {
                    plain.append(p)
                    needsPorts = true
                } else if let resolved = self.destination(w) {
                    if let ports = resolved.ports {
                        grants.append(.init(destinations: resolved.prefixes, ports: ports))
                    } else {
                        plain += resolved.prefixes
                        needsPorts = true
                    }
                }
            }
            if !a.has("to") { self.error(block.location, "reach rule needs to = [...]") }
            let ports = a.ports("ports", &self)
            if needsPorts && !a.has("ports") { self.error(block.location, "reach rule needs ports = [...] for its addresses, hosts and networks") }
            if !needsPorts && a.has("ports") {
                self.error(a.location("ports") ?? block.location, "ports do not apply: every target is a service with its own ports")
            }
            if !plain.isEmpty { grants.insert(.init(destinations: plain, ports: ports), at: 0) }
            // 0.0.0.0/0 with ::/0 is everything, however it is spelled.
            if plain.contains(where: { $0.isIPv4 && $0.length == 0 }) && plain.contains(where: { !$0.isIPv4 && $0.length == 0 }) {
                allDestinations = true
            }
            let allPorts = Set(ports) == Set(PortRange.any)
            grantsEverything = allDestinations && allPorts
            target = .reach(.init(grants: grants, allDestinations: allDestinations, allPorts: allPorts))
        case .app:
            var names: [String] = []
            var seenApps = Set<String>()
            var all = false
            for w in a.words("apps", &self) {
                if w.text == "*" {
                    all = true
                    continue
                }
                guard self.appNames.contains(w.text) else {
                    self.error(w.location, "unknown app '\(w.text)'")
                    continue
                }
                if seenApps.insert(w.text).inserted { names.append(w.text) }
            }
            if !a.has("apps") { self.error(block.location, "app rule needs apps = [...]") }
            grantsEverything = all
            target = .app(names: names, all: all)
        case .request:
            var roles: [String] = []
            var seenRoles = Set<String>()
            var all = false
            for w in a.words("roles", &self) {
                if w.text == "*" {
                    all = true
                    continue
                }
                let n = w.text.hasPrefix("role:") ? String(w.text.dropFirst(5)) : w.text
                guard self.roleNames[n] != nil else {
                    self.error(w.location, "unknown role '\(n)'")
                    continue
                }
                if seenRoles.insert(n).inserted { roles.append(n) }
            }
            if !a.has("roles") { self.error(block.location, "request rule needs roles = [...]") }
            var approvers: [PolicyPrincipal] = []
            var seenApprovers = Set<PolicyPrincipal>()
            for w in a.words("approvers", &self) {
                if let p = self.principal(w, allowed: [.user, .group, .role]), seenApprovers.insert(p).inserted { approvers.append(p) }
            }
            if isAllow && !a.has("approvers") {
                self.error(block.location, "request rule needs approvers = [...]: nobody approves their own access")
            }
            let approvals = a.integer("approvals", &self, range: 1...10) ?? 1
            let maxDuration = a.duration("max_duration", &self) ?? .seconds(3600)
            var reasonRequired = true
            if let r = a.word("reason", &self) {
                switch r.text {
                case "required": reasonRequired = true
                case "optional": reasonRequired = false
                default: self.error(r.location, "reason must be 'required' or 'optional'")
                }
            }
            grantsEverything = all
            target = .request(
                .init(
                    roles: roles, allRoles: all, approvers: approvers, approvals: approvals, maxDuration: maxDuration, reasonRequired: reasonRequired)
            )
        case .certificate:
            var names: [String] = []
            var seenIdentities = Set<String>()
            var patterns: [SPIFFEPattern] = []
            var dns: [String] = []
            var all = false
            for w in a.words("identities", &self) {
                if w.text == "*" {
                    all = true
                    continue
                }
                guard let i = self.identityNames[w.text] else {
                    self.error(w.location, "unknown identity '\(w.text)'")
                    continue
                }
                let identity = self.definitions.identities[i]
                if seenIdentities.insert(identity.name).inserted {
                    names.append(identity.name)
                    patterns.append(identity.pattern)
                    dns += identity.dnsNames
                }
            }
            if !a.has("identities") { self.error(block.location, "certificate rule needs identities = [...]") }
            if all {
                patterns = self.definitions.identities.map(\.pattern)
                dns = self.definitions.identities.flatMap(\.dnsNames)
            }
            if isAllow && lifetime == nil { lifetime = PolicyCompiler.defaultCertificateLifetime }
            grantsEverything = all
            target = .certificate(.init(identities: all ? ["*"] : names, patterns: patterns, dnsNames: dns))
        }
        if isAllow && everyone && grantsEverything && !deliberate {
            self.error(block.location, "rule '\(block.labels[1])' grants everything to everyone; narrow it, or add deliberate = true if you mean it")
        }
        let rule = PolicyRule(
            name: block.labels[1], effect: effect, kind: kind, location: block.location, index: self.definitions.rules.count,
            who: who, sources: sources, stepUp: stepUp, lifetime: lifetime, deliberate: deliberate,
            summary: a.string("description", &self), target: target
        )
        a.finish(&self)
        self.definitions.rules.append(rule)
    }

    static func isLogin(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...32).contains(b.count), b[0] != 0x2D else { return false }
        return b.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }

    /// A named destination: a host (its addresses and routes), network, or service (with ports).
    mutating func destination(_ word: Word, allowServices: Bool = true) -> (prefixes: [IPPrefix], ports: [PortRange]?)? {
        var text = word.text
        var wanted: String? = nil
        for kind in ["host", "network", "service"] where text.hasPrefix(kind + ":") {
            wanted = kind
            text = String(text.dropFirst(kind.count + 1))
        }
        guard let entry = self.destinationNames[text], wanted == nil || wanted == entry.kind else {
            self.error(word.location, "'\(word.text)' is not an address, a prefix, or a host, network or service name")
            return nil
        }
        if entry.kind == "service" && !allowServices {
            self.error(word.location, "a service cannot point to another service")
            return nil
        }
        switch entry.kind {
        case "host":
            guard let h = self.definitions.hosts.first(where: { $0.name == text }) else { return nil }
            return (h.addresses + h.routes, nil)
        case "network":
            guard let n = self.definitions.networks.first(where: { $0.name == text }) else { return nil }
            return (n.prefixes, nil)
        default:
            guard let s = self.definitions.services.first(where: { $0.name == text }) else { return nil }
            return (s.destinations, s.ports)
        }
    }

    // MARK: tests

    mutating func tests(_ block: PolicySyntax.Block) {
        for statement in block.body {
            guard case .phrase(let words, let location) = statement else {
                self.error(statement.location, "a tests block holds lines like 'alice can ssh root@web-1'")
                continue
            }
            switch PolicyAssertion.parse(words, at: location) {
            case .success(let assertion): self.definitions.assertions.append(assertion)
            case .failure(let error): self.diagnostics += error.diagnostics
            }
        }
    }
}

struct Word {
    var text: String
    var location: PolicyLocation
}

/// A block's attributes, checked for unknown and repeated names, read by type.
private struct Attributes {
    var values: [String: PolicySyntax.Value] = [:]
    var order: [(String, PolicyLocation)] = []
    let block: PolicySyntax.Block

    init(block: PolicySyntax.Block, checker: inout Checker) {
        self.block = block
        for statement in block.body {
            switch statement {
            case .attribute(let name, let value, let location):
                if self.values[name] != nil {
                    checker.error(location, "'\(name)' is set twice")
                } else {
                    self.values[name] = value
                    self.order.append((name, location))
                }
            case .block(let b):
                checker.error(b.location, "unexpected block '\(b.keyword)' inside \(block.keyword)")
            case .phrase(let words, let location):
                checker.error(location, "unexpected '\(words.joined(separator: " "))'; expected NAME = VALUE")
            }
        }
    }

    var known: [String] = []

    mutating func allow(_ names: [String]) { self.known = names }

    func has(_ name: String) -> Bool { self.values[name] != nil }
    func location(_ name: String) -> PolicyLocation? { self.values[name]?.location }

    /// Reports attributes nobody read: unknown fields are errors, never ignored.
    func finish(_ checker: inout Checker) {
        for (name, location) in self.order where !self.known.contains(name) {
            checker.error(location, "unknown field '\(name)' in \(self.block.keyword); expected one of \(self.known.joined(separator: ", "))")
        }
    }

    func words(_ name: String, _ checker: inout Checker) -> [Word] {
        guard let value = self.values[name] else { return [] }
        switch value {
        case .word(let t, let l), .string(let t, let l):
            return [Word(text: t, location: l)]
        case .list(let items, _):
            var out: [Word] = []
            for item in items {
                switch item {
                case .word(let t, let l), .string(let t, let l): out.append(Word(text: t, location: l))
                default: checker.error(item.location, "'\(name)' must be a list of names, not nested lists or maps")
                }
            }
            if out.isEmpty { checker.error(value.location, "'\(name)' is empty; remove it or list something") }
            return out
        case .map:
            checker.error(value.location, "'\(name)' must be a list, e.g. \(name) = [a, b]")
            return []
        }
    }

    func word(_ name: String, _ checker: inout Checker) -> Word? {
        guard let value = self.values[name] else { return nil }
        if case .word(let t, let l) = value { return Word(text: t, location: l) }
        checker.error(value.location, "'\(name)' must be a single word")
        return nil
    }

    func string(_ name: String, _ checker: inout Checker) -> String? {
        guard let value = self.values[name] else { return nil }
        switch value {
        case .string(let t, _), .word(let t, _): return t
        default:
            checker.error(value.location, "'\(name)' must be a string")
            return nil
        }
    }

    func bool(_ name: String, _ checker: inout Checker) -> Bool? {
        guard let w = self.word(name, &checker) else { return nil }
        switch w.text {
        case "true": return true
        case "false": return false
        default:
            checker.error(w.location, "'\(name)' must be true or false")
            return nil
        }
    }

    func integer(_ name: String, _ checker: inout Checker, range: ClosedRange<Int>) -> Int? {
        guard let w = self.word(name, &checker) else { return nil }
        guard let n = Int(w.text), range.contains(n) else {
            checker.error(w.location, "'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return n
    }

    func duration(_ name: String, _ checker: inout Checker) -> Duration? {
        guard let w = self.word(name, &checker) else { return nil }
        do { return try PolicyDuration.parse(w.text) } catch {
            checker.error(w.location, "\(name): \(error.message)")
            return nil
        }
    }

    func prefixes(_ name: String, _ checker: inout Checker, singleAddresses: Bool) -> [IPPrefix] {
        self.words(name, &checker).compactMap { w -> IPPrefix? in
            do throws(GatehouseError) {
                let p = try IPPrefix(parsing: w.text)
                if singleAddresses && !p.isSingleAddress {
                    checker.error(w.location, "'\(w.text)': \(name) must be single addresses; put networks in routes = [...]")
                    return nil
                }
                return p
            } catch {
                checker.error(w.location, error.message)
                return nil
            }
        }
    }

    func ports(_ name: String, _ checker: inout Checker) -> [PortRange] {
        var out: [PortRange] = []
        for w in self.words(name, &checker) {
            do { out += try PortRange.parse(w.text) } catch { checker.error(w.location, error.message) }
        }
        return Array(Set(out)).sorted()
    }

    func labels(_ name: String, _ checker: inout Checker) -> [String: String] {
        guard let value = self.values[name] else { return [:] }
        guard case .map(let entries, _) = value else {
            checker.error(value.location, "'\(name)' must be a map, e.g. \(name) = { env = prod }")
            return [:]
        }
        var out: [String: String] = [:]
        for (key, v) in entries {
            guard Checker.isName(key) else {
                checker.error(v.location, "label key '\(key)' is not a valid name")
                continue
            }
            switch v {
            case .word(let t, _), .string(let t, _):
                if out[key] != nil { checker.error(v.location, "label '\(key)' is set twice") }
                out[key] = t
            default: checker.error(v.location, "label '\(key)' must be a single value")
            }
        }
        return out
    }
}
