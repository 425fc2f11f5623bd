public import Foundation
public import GatehouseCore

/// Offboarding ends every OpenID Connect grant of the user, and with them every access and
/// refresh token: introspection and userinfo answer `active: false` from the same commit on.
public struct OIDCOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "oidc_grants" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        try await tx.revokeOIDCGrants(userID: user.id, reason: user.status.rawValue, at: time)
    }
}
