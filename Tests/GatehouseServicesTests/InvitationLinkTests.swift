import Foundation
import GatehouseCore
import GatehouseServices
import Testing

/// Pending links can be listed, revoked and replaced; an expired one never blocks a new one.
@Suite("Invitation links: list, revoke, resend")
struct InvitationLinkTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func anExpiredLinkIsSupersededAndAResendReplacesThePendingOne() async throws {
        let store = InMemoryStore()
        let time = ManualTimeSource(Self.t0)
        let env = ServiceEnvironment(store: store, time: time, random: SeededRandomSource(seed: 3))
        let service = InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:8080"))
        let carol = try Username(validating: "carol")
        let first = try await service.invite(username: carol, email: nil, role: .member, actor: "test")
        await #expect(throws: GatehouseError.self) { try await service.invite(username: carol, email: nil, role: .member, actor: "test") }
        // 72 hours on, the old link is dead and no longer blocks: a new invite revokes it.
        time.advance(by: InvitationService.inviteLifetime + 1)
        let second = try await service.invite(username: carol, email: try EmailAddress(validating: "carol@example.org"), role: .member, actor: "test")
        #expect(try await store.read { tx in try await tx.invitation(id: first.invitation.id) }?.state == .revoked)
        // Resend keeps the kind, e-mail and role, and ends the previous link in the same change.
        let third = try await service.resend(username: carol, actor: "test")
        #expect(
            third.invitation.email?.rawValue == "carol@example.org" && third.invitation.kind == .invite && third.enrollmentURL != second.enrollmentURL
        )
        #expect(try await store.read { tx in try await tx.invitation(id: second.invitation.id) }?.state == .revoked)
        #expect(try await service.pending().map(\.id) == [third.invitation.id])
        let revoked = try await service.revoke(username: carol, actor: "test", reason: "typo")
        let left = try await service.pending()
        #expect(revoked.state == .revoked && left.isEmpty)
        await #expect(throws: GatehouseError(.notFound, "carol has no pending invitation")) {
            try await service.revoke(username: carol, actor: "test", reason: nil)
        }
        let codes = try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.map(\.event.code)
        #expect(codes.filter { $0 == .invitationRevoked }.count == 3 && codes.filter { $0 == .invitationCreated }.count == 3)
    }
}
