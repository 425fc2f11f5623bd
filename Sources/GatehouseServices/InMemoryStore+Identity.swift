import Foundation
import GatehouseCore
import GatehouseOIDC

/// The in-memory store: people, invitations, passkeys and sign-in sessions (`SQLTransaction+Identity.swift` is the SQL).
extension InMemoryTransaction {
    func user(named username: Username) async throws -> User? {
        self.state.users.first { $0.username == username }
    }

    func countActiveUsers(role: RoleName) async throws -> Int {
        self.state.users.count { $0.role == role && $0.status == .active }
    }

    func countUsers() async throws -> Int { self.state.users.count }

    func invitation(id: String) async throws -> Invitation? {
        self.state.invitations.first { $0.id == id }
    }

    func pendingInvitation(for username: Username) async throws -> Invitation? {
        self.state.invitations.first { $0.username == username && $0.state == .pending }
    }

    func invitations(state: Invitation.State?) async throws -> [Invitation] {
        self.state.invitations.filter { state == nil || $0.state == state }
    }

    func user(id: String) async throws -> User? { self.state.users.first { $0.id == id } }

    func invitation(tokenHash: String) async throws -> Invitation? { self.state.invitations.first { $0.tokenHash == tokenHash } }

    func credential(id: [UInt8]) async throws -> CredentialRecord? { self.state.credentials.first { $0.id == id } }

    func credentials(userID: String) async throws -> [CredentialRecord] { self.state.credentials.filter { $0.userID == userID } }

    func session(tokenHash: String) async throws -> SessionRecord? { self.state.sessions.first { $0.tokenHash == tokenHash } }

    func sessions(userID: String) async throws -> [SessionRecord] {
        self.state.sessions.filter { $0.userID == userID }.sorted { $0.createdAt > $1.createdAt }
    }

    func revokeSession(tokenHash: String, at time: Date) async throws -> Bool {
        guard let i = self.state.sessions.firstIndex(where: { $0.tokenHash == tokenHash && $0.revokedAt == nil }) else { return false }
        self.state.sessions[i].revokedAt = time
        return true
    }

    func revokeSessions(userID: String, at time: Date) async throws -> Int {
        var count = 0
        for i in self.state.sessions.indices where self.state.sessions[i].userID == userID && self.state.sessions[i].revokedAt == nil {
            self.state.sessions[i].revokedAt = time
            count += 1
        }
        return count
    }

    func deleteCredential(id: [UInt8], userID: String) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id && $0.userID == userID }) else { return false }
        self.state.credentials.remove(at: i)
        return true
    }

    func updateUserStatus(id: String, status: User.Status) async throws {
        guard let i = self.state.users.firstIndex(where: { $0.id == id }) else { throw GatehouseError(.notFound, "no such user") }
        self.state.users[i].status = status
    }

    func insertCredential(_ record: CredentialRecord) async throws {
        guard !self.state.credentials.contains(where: { $0.id == record.id }) else {
            throw GatehouseError(.conflict, "this passkey is already registered")
        }
        self.state.credentials.append(record)
    }

    func lockAccountChanges() async throws {}  // transactions here are already serialized

    func updateCredentialUse(id: [UInt8], signCount: UInt32, backedUp: Bool, at time: Date) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id }) else { throw GatehouseError(.notFound, "no such passkey") }
        let stored = self.state.credentials[i].signCount
        guard signCount > stored || (signCount == 0 && stored == 0) else { return false }
        self.state.credentials[i].signCount = signCount
        self.state.credentials[i].backedUp = backedUp
        self.state.credentials[i].lastUsedAt = time
        return true
    }

    func renameCredential(id: [UInt8], userID: String, name: String) async throws -> Bool {
        guard let i = self.state.credentials.firstIndex(where: { $0.id == id && $0.userID == userID }) else { return false }
        self.state.credentials[i].name = name
        return true
    }

    func insertSession(_ record: SessionRecord) async throws {
        guard !self.state.sessions.contains(where: { $0.tokenHash == record.tokenHash }) else { throw GatehouseError(.conflict, "session exists") }
        self.state.sessions.append(record)
    }

    func touchSession(tokenHash: String, at time: Date, steppedUp: Bool) async throws {
        guard let i = self.state.sessions.firstIndex(where: { $0.tokenHash == tokenHash }) else { throw GatehouseError(.notFound, "no such session") }
        self.state.sessions[i].lastSeenAt = max(self.state.sessions[i].lastSeenAt, time)
        if steppedUp { self.state.sessions[i].steppedUpAt = time }
    }

    func insertUser(_ user: User) async throws {
        guard !self.state.users.contains(where: { $0.username == user.username || $0.id == user.id }) else {
            throw GatehouseError(.conflict, "user \(user.username) already exists")
        }
        self.state.users.append(user)
    }

    func insertInvitation(_ invitation: Invitation) async throws {
        guard
            !self.state.invitations.contains(where: {
                $0.id == invitation.id || $0.tokenHash == invitation.tokenHash
                    || ($0.username == invitation.username && $0.state == .pending && invitation.state == .pending)
            })
        else {
            throw GatehouseError(.conflict, "a pending invitation for \(invitation.username) already exists")
        }
        self.state.invitations.append(invitation)
    }

    func finishInvitation(id: String, state: Invitation.State, at time: Date) async throws -> Bool {
        guard let index = self.state.invitations.firstIndex(where: { $0.id == id && $0.state == .pending }) else { return false }
        self.state.invitations[index].state = state
        return true
    }
}
