public import Foundation

/// A requester resolved against one compiled policy: who they are and every principal they count
/// as (their user, groups, roles, and `everyone`), as interned ids for fast matching.
///
/// Build one with ``CompiledPolicy/subject(user:directoryGroups:grants:now:)`` or
/// ``CompiledPolicy/subject(host:)``; it is valid only for the policy that made it.
public struct PolicySubject: Sendable, Equatable {
    /// The user's name, or nil for hosts and for the synthetic members used by policy tests.
    public let name: String?
    public let isHost: Bool
    /// Interned ids of the principals this subject counts as, sorted and unique.
    let atoms: [UInt32]
    /// The policy's id → principal table (shared, not copied), to name the atoms.
    let table: [PolicyPrincipal]
    /// End of the grant behind a role atom, for the atoms that exist only through a grant.
    let grantExpiry: [UInt32: (id: String, expiresAt: Date)]

    init(name: String?, isHost: Bool, atoms: [UInt32], table: [PolicyPrincipal], grantExpiry: [UInt32: (id: String, expiresAt: Date)]) {
        self.name = name
        self.isHost = isHost
        self.atoms = atoms
        self.table = table
        self.grantExpiry = grantExpiry
    }

    /// Whether the principal `atom` counts at `now`: always, unless it comes from a grant that
    /// has ended.
    func holds(_ atom: UInt32, at now: Date) -> Bool {
        guard let grant = self.grantExpiry[atom] else { return true }
        return grant.expiresAt > now
    }

    /// The principals this subject holds at `now`.
    public func principals(at now: Date) -> [PolicyPrincipal] {
        self.atoms.filter { self.holds($0, at: now) }.map { self.table[Int($0)] }
    }

    /// Every principal this subject counts as (`everyone`, its user, groups, roles), in id order.
    public var principals: [PolicyPrincipal] { self.atoms.map { self.table[Int($0)] } }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.isHost == b.isHost && a.principals == b.principals
            && a.grantExpiry.mapValues(\.expiresAt) == b.grantExpiry.mapValues(\.expiresAt)
    }
}
