public import Foundation
import GatehouseCore

/// What someone asks to do. Every enforcement point phrases its question as one of these.
public enum PolicyRequest: Sendable, Hashable, CustomStringConvertible {
    /// Log in as `login` on the host named `host` (a host of the policy).
    case ssh(login: String, host: String)
    /// Send packets to `address` (an address of the shared 128-bit space, see ``IPPrefix``).
    case reach(address: UInt128, port: UInt16, proto: IPProtocolName)
    /// Use the web app (OIDC client or proxied app) named `app`.
    case app(String)
    /// Ask for the role `role` through an access request.
    case requestRole(String)
    /// Obtain an X.509 certificate for the SPIFFE ID `spiffeID`.
    case certificate(spiffeID: String)

    public var kind: PolicyRule.Kind {
        switch self {
        case .ssh: return .ssh
        case .reach: return .reach
        case .app: return .app
        case .requestRole: return .request
        case .certificate: return .certificate
        }
    }

    public var description: String {
        switch self {
        case .ssh(let login, let host): return "ssh \(login)@\(host)"
        case .reach(let address, let port, let proto):
            let v4 = address >> 32 == 0xFFFF
            let a = IPPrefix.format(address, ipv4: v4)
            return proto == .icmp ? "reach \(a) icmp" : v4 ? "reach \(a):\(port)/\(proto.rawValue)" : "reach [\(a)]:\(port)/\(proto.rawValue)"
        case .app(let a): return "use \(a)"
        case .requestRole(let r): return "request \(r)"
        case .certificate(let id): return "obtain \(id)"
        }
    }
}

/// Facts about the moment of a request that rules may constrain.
public struct PolicyContext: Sendable, Equatable {
    /// When the decision is made; grants and step-up freshness are judged against it.
    public var now: Date
    /// Where the request comes from, if known. Rules with `from = [...]` deny when unknown.
    public var sourceAddress: UInt128?
    /// When the requester last completed a passkey assertion (for `step_up`).
    public var lastStepUp: Date?

    public init(now: Date, sourceAddress: UInt128? = nil, lastStepUp: Date? = nil) {
        self.now = now
        self.sourceAddress = sourceAddress
        self.lastStepUp = lastStepUp
    }
}

/// A time-bound role grant, written by an approved access request. It merges into the policy
/// while it is live and stops counting at `expiresAt` without anyone removing it.
public struct PolicyGrant: Sendable, Hashable {
    public var id: String
    public var user: String
    public var role: String
    public var expiresAt: Date

    public init(id: String, user: String, role: String, expiresAt: Date) {
        self.id = id
        self.user = user
        self.role = role
        self.expiresAt = expiresAt
    }
}
