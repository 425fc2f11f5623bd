import Crypto
import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseTesting
import GatehouseWebAuthn
import Testing

/// The passkey use cases against every store: what a ceremony writes, and what a failed one
/// does not. The authenticator side is built here from the specification.
@Suite("Passkey service")
struct PasskeyServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let rp = RelyingParty(id: "localhost", name: "Gatehouse", origins: ["http://localhost:8080"])

    struct Setup {
        let service: PasskeyService
        let ceremonies: CeremonyStore
        let time: ManualTimeSource
        let store: any Store
        let token: String
    }

    func setup(_ store: any Store, capacity: Int = 100) async throws -> Setup {
        let time = ManualTimeSource(Self.t0)
        let env = ServiceEnvironment(store: store, time: time, random: SeededRandomSource(seed: 11))
        let issued = try await InvitationService(environment: env, publicURL: try PublicURL(parsing: "http://localhost:8080"))
            .invite(username: try Username(validating: "alice"), email: nil, role: .member, actor: "test")
        let token = String(issued.enrollmentURL.split(separator: "=").last!)
        let ceremonies = CeremonyStore(time: time, random: SeededRandomSource(seed: 12), capacity: capacity)
        return Setup(
            service: PasskeyService(environment: env, relyingParty: self.rp, ceremonies: ceremonies, decoySecret: Array(repeating: 1, count: 32)),
            ceremonies: ceremonies, time: time, store: store, token: token)
    }

    /// A registration for `options`, signed by `key`; `flags` lets a test drop UV.
    static func registration(
        _ options: CreationOptions, key: P256.Signing.PrivateKey, id: [UInt8], origin: String = "http://localhost:8080", flags: UInt8 = 0x45
    ) -> [UInt8] {
        let raw = Array(key.publicKey.x963Representation)
        let cose = CBOREncoder.encode(
            .map([
                (.unsigned(1), .unsigned(2)), (.unsigned(3), .negative(-7)), (.negative(-1), .unsigned(1)),
                (.negative(-2), .bytes(Array(raw[1..<33]))), (.negative(-3), .bytes(Array(raw[33..<65]))),
            ]))
        let auth =
            Array(SHA256.hash(data: Array("localhost".utf8))) + [flags, 0, 0, 0, 0] + Array(repeating: 0, count: 16) + [0, UInt8(id.count)] + id
            + cose
        let client = Array(#"{"type":"webauthn.create","challenge":"\#(options.challenge)","origin":"\#(origin)"}"#.utf8)
        let att = CBOREncoder.encode(.map([(.text("fmt"), .text("none")), (.text("attStmt"), .map([])), (.text("authData"), .bytes(auth))]))
        return Array(
            #"{"id":"\#(Base64URL.encode(id))","rawId":"\#(Base64URL.encode(id))","type":"public-key","response":{"clientDataJSON":"\#(Base64URL.encode(client))","attestationObject":"\#(Base64URL.encode(att))"}}"#
                .utf8)
    }

    static func assertion(_ options: RequestOptions, key: P256.Signing.PrivateKey, id: [UInt8], counter: UInt8, handle: [UInt8]) -> [UInt8] {
        let auth = Array(SHA256.hash(data: Array("localhost".utf8))) + [0x05, 0, 0, 0, counter]
        let client = Array(#"{"type":"webauthn.get","challenge":"\#(options.challenge)","origin":"http://localhost:8080"}"#.utf8)
        let sig = Array(try! key.signature(for: auth + Array(SHA256.hash(data: client))).derRepresentation)
        return Array(
            #"{"id":"\#(Base64URL.encode(id))","rawId":"\#(Base64URL.encode(id))","type":"public-key","response":{"clientDataJSON":"\#(Base64URL.encode(client))","authenticatorData":"\#(Base64URL.encode(auth))","signature":"\#(Base64URL.encode(sig))","userHandle":"\#(Base64URL.encode(handle))"}}"#
                .utf8)
    }

    func codes(_ store: any Store) async throws -> [AuditCode] {
        try await store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.map(\.event.code)
    }

    @Test(arguments: TestStoreKind.available)
    func enrollmentIsAtomicAndAudited(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let s = try await self.setup(test.store)
        let key = P256.Signing.PrivateKey()
        let id: [UInt8] = Array(repeating: 0x5A, count: 20)

        // A refused registration (no user verification) writes only its audit event.
        let (c1, o1) = try await s.service.beginEnrollment(token: s.token)
        await #expect(throws: WebAuthnError.self) {
            try await s.service.finishEnrollment(
                ceremony: c1, credential: Self.registration(o1, key: key, id: id, flags: 0x41), requestID: nil, sourceAddress: nil)
        }
        #expect(try await test.store.read { tx in try await tx.countUsers() } == 0)
        #expect(try await self.codes(test.store) == [.invitationCreated, .enrollmentFailed])

        // The invitation still works; this time all of it commits together.
        let (c2, o2) = try await s.service.beginEnrollment(token: s.token)
        let enrolled = try await s.service.finishEnrollment(
            ceremony: c2, credential: Self.registration(o2, key: key, id: id), requestID: "r1", sourceAddress: nil)
        #expect(enrolled.user.username.rawValue == "alice")
        let (users, credentials, invitation) = try await test.store.read { tx in
            (
                try await tx.countUsers(), try await tx.credentials(userID: enrolled.user.id),
                try await tx.invitation(tokenHash: InvitationToken.hash(of: s.token))
            )
        }
        #expect(users == 1 && credentials.map(\.id) == [id] && invitation?.state == .used)
        #expect(try await self.codes(test.store).suffix(3) == [.userEnrolled, .passkeyRegistered, .signInSucceeded])
        await #expect(throws: GatehouseError.self) { try await s.service.beginEnrollment(token: s.token) }

        // Sign in; the session authenticates until idle for 30 minutes.
        let (c3, o3) = try await s.service.beginSignIn(username: "alice")
        #expect(o3.allowCredentials.map(\.id) == [Base64URL.encode(id)])
        let session = try await s.service.finishSignIn(
            ceremony: c3, credential: Self.assertion(o3, key: key, id: id, counter: 1, handle: Array(enrolled.user.id.utf8)), requestID: nil,
            sourceAddress: nil)
        #expect(try await s.service.authenticate(sessionToken: session.token)?.user.username.rawValue == "alice")
        s.time.advance(by: 29 * 60)
        #expect(try await s.service.authenticate(sessionToken: session.token) != nil)
        s.time.advance(by: 30 * 60 + 1)
        #expect(try await s.service.authenticate(sessionToken: session.token) == nil)
        #expect(try await s.service.authenticate(sessionToken: "forged") == nil)
    }

    @Test("ceremonies work once, expire after five minutes, and are bounded")
    func ceremonies() async throws {
        let s = try await self.setup(InMemoryStore(), capacity: 3)
        let (c, _) = try await s.service.beginSignIn(username: nil)
        #expect(s.ceremonies.take(c) != nil)
        #expect(s.ceremonies.take(c) == nil)
        let (late, _) = try await s.service.beginSignIn(username: nil)
        s.time.advance(by: 301)
        #expect(s.ceremonies.take(late) == nil)
        // A full table makes room instead of refusing: the oldest of the heaviest owner goes.
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try await s.service.beginSignIn(username: nil, sourceAddress: "192.0.2.1").ceremony) }
        #expect(s.ceremonies.count == 3)
        #expect(s.ceremonies.take(ids[0]) == nil)
        #expect(s.ceremonies.take(ids[3]) != nil)
    }

    @Test("a flood from many networks cannot stop a person from a fresh address from signing in")
    func ceremonyFlood() async throws {
        let time = ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000))
        let store = CeremonyStore(time: time, random: SeededRandomSource(seed: 4), capacity: 1000, share: 8)
        // 200 networks (IPv4 addresses and IPv6 /64s) each open far more than their share.
        for n in 0..<200 {
            let network = n % 2 == 0 ? "198.51.\(n / 250).\(n % 250)" : "2001:db8:\(String(n, radix: 16))::1"
            for _ in 0..<20 { _ = store.begin(.authentication(userID: nil), owner: CeremonyStore.networkOwner(network)) }
        }
        #expect(store.count == 1000)
        // One /64 is one owner, whatever its host part.
        #expect(CeremonyStore.networkOwner("2001:db8:1:2::5") == CeremonyStore.networkOwner("2001:db8:1:2:ffff::9"))
        let mine = store.begin(.authentication(userID: "alice"), owner: CeremonyStore.networkOwner("203.0.113.9"))
        // The flood goes on after the person began; their ceremony survives it.
        for n in 200..<400 {
            for _ in 0..<20 { _ = store.begin(.authentication(userID: nil), owner: CeremonyStore.networkOwner("10.9.\(n / 250).\(n % 250)")) }
        }
        #expect(store.count == 1000)
        #expect(store.take(mine.id)?.kind == .authentication(userID: "alice"))
        // Each flooding network kept at most its share.
        let account = store.begin(.stepUp(userID: "u1", sessionHash: "h"), owner: CeremonyStore.accountOwner("u1"))
        #expect(store.take(account.id) != nil)
    }

    @Test("unknown names get a stable decoy of the same shape; unusable invitations all get one answer")
    func noEnumeration() async throws {
        let s = try await self.setup(InMemoryStore())
        let (_, a) = try await s.service.beginSignIn(username: "ghost")
        let (_, b) = try await s.service.beginSignIn(username: "ghost")
        #expect(a.allowCredentials == b.allowCredentials && a.allowCredentials.count == 1)
        #expect([16, 32, 64].contains(Base64URL.decode(a.allowCredentials[0].id)?.count ?? 0))
        #expect(a.challenge != b.challenge)
        var messages = Set<String>()
        for token in ["", "nope", String(repeating: "x", count: 43), String(repeating: "y", count: 500)] {
            do { _ = try await s.service.beginEnrollment(token: token) } catch let e as GatehouseError { messages.insert(e.message) }
        }
        s.time.advance(by: 25 * 3600)
        do { _ = try await s.service.beginEnrollment(token: s.token) } catch let e as GatehouseError { messages.insert(e.message) }
        #expect(messages.count == 1)
    }

    @Test("removing a passkey needs a fresh passkey check, never takes the last one, and signs out its sessions")
    func removal() async throws {
        let s = try await self.setup(InMemoryStore())
        let first = P256.Signing.PrivateKey()
        let second = P256.Signing.PrivateKey()
        let id1: [UInt8] = Array(repeating: 1, count: 16)
        let id2: [UInt8] = Array(repeating: 2, count: 16)
        let (c1, o1) = try await s.service.beginEnrollment(token: s.token)
        let enrolled = try await s.service.finishEnrollment(
            ceremony: c1, credential: Self.registration(o1, key: first, id: id1), requestID: nil, sourceAddress: nil)
        let user = enrolled.user
        guard let session = try await s.service.authenticate(sessionToken: enrolled.session.token)?.session else {
            Issue.record("no session")
            return
        }
        await #expect(throws: GatehouseError(.conflict, "this is your only passkey; add another before removing it")) {
            try await s.service.removePasskey(user: user, session: session, id: id1, requestID: nil, sourceAddress: nil)
        }
        let (c2, o2) = try await s.service.beginAddPasskey(user: user, session: session)
        _ = try await s.service.finishAddPasskey(
            user: user, ceremony: c2, credential: Self.registration(o2, key: second, id: id2), requestID: nil, sourceAddress: nil)
        s.time.advance(by: 6 * 60)
        guard let stale = try await s.service.authenticate(sessionToken: enrolled.session.token)?.session else {
            Issue.record("no session")
            return
        }
        await #expect(throws: GatehouseError.self) {
            try await s.service.removePasskey(user: user, session: stale, id: id1, requestID: nil, sourceAddress: nil)
        }
        await #expect(throws: GatehouseError.self) { try await s.service.beginAddPasskey(user: user, session: stale) }
        // Within the step-up window the removal works, and the session opened with that passkey ends.
        var fresh = stale
        fresh.steppedUpAt = s.time.now()
        try await s.service.removePasskey(user: user, session: fresh, id: id1, requestID: nil, sourceAddress: "192.0.2.7")
        #expect(try await s.service.passkeys(of: user).map(\.id) == [id2])
        #expect(try await s.service.authenticate(sessionToken: enrolled.session.token) == nil)
        let last = try await s.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.last?.event
        #expect(last?.code == .passkeyRemoved && last?.details["sessions_ended"] == "1" && last?.sourceAddress == "192.0.2.7")
    }

    @Test("a passkey gets its owner's name, audited; sessions keep their browser, summarized", arguments: TestStoreKind.available)
    func namesAndBrowsers(_ kind: TestStoreKind) async throws {
        let test = try await TestStore.make(kind)
        defer { Task { await test.close() } }
        let s = try await self.setup(test.store)
        let id: [UInt8] = Array(repeating: 7, count: 16)
        let (c, o) = try await s.service.beginEnrollment(token: s.token)
        let enrolled = try await s.service.finishEnrollment(
            ceremony: c, credential: Self.registration(o, key: P256.Signing.PrivateKey(), id: id), requestID: nil,
            sourceAddress: "192.0.2.9", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0")
        let session = try #require(try await s.service.authenticate(sessionToken: enrolled.session.token)?.session)
        #expect(session.userAgent == "Firefox on Linux" && session.sourceAddress == "192.0.2.9")
        #expect(try await s.service.passkeys(of: enrolled.user).first?.name == nil)
        try await s.service.renamePasskey(user: enrolled.user, id: id, name: "  work laptop ", requestID: nil, sourceAddress: nil)
        #expect(try await s.service.passkeys(of: enrolled.user).first?.name == "work laptop")
        let last = try await s.store.read { tx in try await tx.auditRecords(after: 0, limit: 100) }.last?.event
        #expect(last?.code == .passkeyRenamed && last?.details["name"] == "work laptop")
        // The same name again writes nothing.
        let count = try await s.store.read { tx in try await tx.latestAuditSequence() }
        try await s.service.renamePasskey(user: enrolled.user, id: id, name: "work laptop", requestID: nil, sourceAddress: nil)
        #expect(try await s.store.read { tx in try await tx.latestAuditSequence() } == count)
        for bad in ["", "   ", String(repeating: "x", count: 65), "a\u{0}b", "a\u{202E}b", "line\nbreak"] {
            await #expect(throws: GatehouseError.self) {
                try await s.service.renamePasskey(user: enrolled.user, id: id, name: bad, requestID: nil, sourceAddress: nil)
            }
        }
        await #expect(throws: GatehouseError(.notFound, "you have no such passkey")) {
            try await s.service.renamePasskey(user: enrolled.user, id: [9, 9], name: "x", requestID: nil, sourceAddress: nil)
        }
        #expect(try await s.service.passkeys(of: enrolled.user).first?.name == "work laptop")
    }

    @Test("decoy IDs depend only on the name and the shared secret, with varied lengths")
    func decoys() {
        let secret = Array(repeating: UInt8(5), count: 32)
        #expect(RelyingParty.decoyCredentialID(for: "ghost", secret: secret) == RelyingParty.decoyCredentialID(for: "ghost", secret: secret))
        #expect(RelyingParty.decoyCredentialID(for: "ghost", secret: secret) != RelyingParty.decoyCredentialID(for: "ghost", secret: [1]))
        let lengths = Set((0..<40).map { RelyingParty.decoyCredentialID(for: "user\($0)", secret: secret).count })
        #expect(lengths == [16, 32, 64])
    }
}
