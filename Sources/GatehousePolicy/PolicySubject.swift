import Foundation

/// A requester resolved against one compiled policy: who they are and every principal they count
/// as (their user, groups, roles, and `everyone`), as interned ids for fast matching.
///
/// Build one with ``CompiledPolicy/subject(user:directoryGroups:grants:now:)`` or
/// ``CompiledPolicy/subject(host:)``; it is valid only for the policy that made it.
public struct PolicySubject: Sendable, Equatable {
    /// The user's name, or nil for hosts and for the synthetic members used by policy tests.
    public let name: String?
    public let isHost: Bool
    /// Principals this subject counts as, sorted, for display.
    public let principals: [PolicyPrincipal]
    /// Interned ids of `principals`, parallel.
    let atoms: [UInt32]
    /// End of the grant behind a role atom, for the atoms that exist only through a grant.
    let grantExpiry: [UInt32: (id: String, expiresAt: Date)]

    init(name: String?, isHost: Bool, principals: [PolicyPrincipal], atoms: [UInt32], grantExpiry: [UInt32: (id: String, expiresAt: Date)]) {
        self.name = name
        self.isHost = isHost
        self.principals = principals
        self.atoms = atoms
        self.grantExpiry = grantExpiry
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.isHost == b.isHost && a.atoms == b.atoms
            && a.grantExpiry.mapValues(\.expiresAt) == b.grantExpiry.mapValues(\.expiresAt)
    }
}
