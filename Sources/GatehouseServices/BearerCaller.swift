public import Foundation
public import GatehouseCore
public import GatehouseOIDC

/// The person behind a live access token presented to Gatehouse's own APIs, with the scopes it
/// may use here and the grant it belongs to: what it obtains is recorded against that grant, so
/// it dies with the grant's sign-in session.
public struct BearerCaller: Sendable {
    public let user: User
    /// The token's scopes, less any of Gatehouse's own its client may not hold.
    public let scopes: Set<Scope>
    /// When the person last proved their passkey for the grant (sign-in or step-up).
    public let authTime: Date
    public let grantID: String
}
