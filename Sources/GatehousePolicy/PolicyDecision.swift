import Foundation

/// The engine's answer: allowed by a named rule, or denied with a reason. Never a bare Bool, so
/// every enforcement point can say why and the audit log can record which rule decided.
public enum PolicyDecision: Sendable, Equatable, CustomStringConvertible {
    case allow(PolicyAllowance)
    case deny(PolicyDenial)

    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .allow(let a): return "allow by \(a.rule)" + (a.lifetime.map { " for at most \(PolicyDuration.format($0))" } ?? "") + " via \(a.via)"
        case .deny(let d): return "deny: \(d)"
        }
    }
}

/// Why something was allowed, and the limits that come with it.
public struct PolicyAllowance: Sendable, Equatable {
    public let rule: PolicyRule
    /// The principal of the rule's `who` that matched (`group:sre`, `role:db-admin`).
    public let via: PolicyPrincipal
    /// The longest credential this allows: the rule's lifetime, capped by the role's
    /// `max_lifetime` and by the end of the grant it came through. Nil where not applicable.
    public let lifetime: Duration?
    /// The grant that made the role live, when access came through one.
    public let grantID: String?

    public static func == (a: Self, b: Self) -> Bool {
        a.rule === b.rule && a.via == b.via && a.lifetime == b.lifetime && a.grantID == b.grantID
    }
}

/// Why something was denied.
public struct PolicyDenial: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// Default deny: no allow rule covers the request.
        case noMatchingRule
        /// An explicit deny rule matched; it beats every allow.
        case explicitDeny
        /// An allow matched but wants a passkey check within this long; ask for step-up and retry.
        case stepUpRequired(within: Duration)
        /// An allow matched but not from this source network.
        case sourceNotAllowed
        /// The host, app or role named is not in the policy.
        case unknownTarget(String)
        /// The request itself is malformed (a bad SPIFFE ID, ...).
        case invalidRequest(String)
    }

    public let reason: Reason
    /// The rule behind the reason (the deny rule, or the allow whose condition failed).
    public let rule: PolicyRule?

    public init(reason: Reason, rule: PolicyRule?) {
        self.reason = reason
        self.rule = rule
    }

    public static func == (a: Self, b: Self) -> Bool { a.reason == b.reason && a.rule === b.rule }

    public var description: String {
        let suffix = self.rule.map { " (\($0))" } ?? ""
        switch self.reason {
        case .noMatchingRule: return "no rule allows it"
        case .explicitDeny: return "denied by rule" + suffix
        case .stepUpRequired(let d): return "needs a passkey check within the last \(PolicyDuration.format(d))" + suffix
        case .sourceNotAllowed: return "not allowed from this source address" + suffix
        case .unknownTarget(let t): return "\(t) is not in the policy"
        case .invalidRequest(let m): return m
        }
    }
}
