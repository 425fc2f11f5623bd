import Foundation
public import GatehouseCore

/// Who a rule is about, as written in `who = [...]`.
public enum PolicyPrincipal: Sendable, Hashable, Comparable, CustomStringConvertible {
    case everyone
    case user(String)
    case group(String)
    case role(String)
    case host(String)

    public var description: String {
        switch self {
        case .everyone: return "everyone"
        case .user(let n): return "user:\(n)"
        case .group(let n): return "group:\(n)"
        case .role(let n): return "role:\(n)"
        case .host(let n): return "host:\(n)"
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}

/// One `allow` or `deny` rule, compiled. Immutable and shared by every decision it produces, so a
/// decision can name it (and its file:line) without copying.
public final class PolicyRule: Sendable, CustomStringConvertible {
    public enum Effect: String, Sendable { case allow, deny }

    /// What a rule is about; each kind is checked by a different enforcement point.
    public enum Kind: String, Sendable, CaseIterable { case ssh, reach, app, request, certificate }

    /// SSH: which logins, on which hosts, with which certificate options.
    public struct SSH: Sendable, Equatable {
        /// Logins (certificate principals); `$user` is the requester's own name, `*` any.
        public var logins: [String]
        public var hostNames: [String]
        public var allHosts: Bool
        public var labels: [String: String]
        /// Certificate extensions (`permit-pty`, ...), sorted.
        public var extensions: [String]
        public var forceCommand: String?
    }

    /// Reach: destination prefixes with the ports open on them. A service brings its own ports,
    /// so one rule can hold several pairs.
    public struct Reach: Sendable, Equatable {
        public struct Grant: Sendable, Equatable {
            public var destinations: [IPPrefix]
            public var ports: [PortRange]
        }
        public var grants: [Grant]
        public var allDestinations: Bool
        public var allPorts: Bool
    }

    /// Access requests: which roles may be requested and how they are approved.
    public struct RoleRequest: Sendable, Equatable {
        public var roles: [String]
        public var allRoles: Bool
        public var approvers: [PolicyPrincipal]
        public var approvals: Int
        public var maxDuration: Duration
        public var reasonRequired: Bool
    }

    /// Certificates: which SPIFFE identities, with which extra DNS names.
    public struct Certificate: Sendable, Equatable {
        public var identities: [String]
        public var patterns: [SPIFFEPattern]
        public var dnsNames: [String]
    }

    public enum Target: Sendable, Equatable {
        case ssh(SSH)
        case reach(Reach)
        case app(names: [String], all: Bool)
        case request(RoleRequest)
        case certificate(Certificate)
    }

    public let name: String
    public let effect: Effect
    public let kind: Kind
    public let location: PolicyLocation
    /// Position in the file; the first matching allow in file order is the one a decision names.
    public let index: Int
    public let who: [PolicyPrincipal]
    /// `from = [...]`: source networks the request must come from, nil for anywhere.
    public let sources: [IPPrefix]?
    /// `step_up = 5m`: a passkey assertion within this long before the decision.
    public let stepUp: Duration?
    /// `lifetime = 8h`: the longest credential this rule issues.
    public let lifetime: Duration?
    public let deliberate: Bool
    public let summary: String?
    public let target: Target

    init(
        name: String, effect: Effect, kind: Kind, location: PolicyLocation, index: Int, who: [PolicyPrincipal],
        sources: [IPPrefix]?, stepUp: Duration?, lifetime: Duration?, deliberate: Bool, summary: String?, target: Target
    ) {
        self.name = name
        self.effect = effect
        self.kind = kind
        self.location = location
        self.index = index
        self.who = who
        self.sources = sources
        self.stepUp = stepUp
        self.lifetime = lifetime
        self.deliberate = deliberate
        self.summary = summary
        self.target = target
    }

    /// `allow ssh sre-prod (policy.gh:12)`.
    public var description: String { "\(self.effect.rawValue) \(self.kind.rawValue) \(self.name) (\(self.location.file):\(self.location.line))" }
}
