import GatehouseCore
import Testing

@Suite("Identifiers and tokens")
struct IdentifierTests {
    @Test(arguments: ["a", "alice", "bob.smith", "x_1-2", String(repeating: "a", count: 64)])
    func validUsernames(_ name: String) throws {
        #expect(try Username(validating: name).rawValue == name)
    }

    @Test(arguments: ["", "Alice", "1alice", "-a", "al ice", "al@ice", "ålice", "a\u{0}", String(repeating: "a", count: 65), "root;rm"])
    func invalidUsernames(_ name: String) {
        #expect(throws: GatehouseError.self) { try Username(validating: name) }
    }

    @Test(arguments: ["a@b.c", "alice@example.org", "x+tag@sub.example.co"])
    func validEmails(_ text: String) throws {
        #expect(try EmailAddress(validating: text).rawValue == text)
    }

    @Test(arguments: [
        "", "a", "a@b", "@b.c", "a@.c", "a@b.", "a b@c.d", "a@b@c.d", "<a@b.c>", "\"a\"@b.c", "é@b.c",
        String(repeating: "a", count: 65) + "@b.c", "a@" + String(repeating: "b", count: 260) + ".c",
    ])
    func invalidEmails(_ text: String) {
        #expect(throws: GatehouseError.self) { try EmailAddress(validating: text) }
    }

    @Test func roles() throws {
        #expect(try RoleName(validating: "prod-admin").rawValue == "prod-admin")
        for bad in ["", "Admin", "9x", "a.b", String(repeating: "r", count: 65)] {
            #expect(throws: GatehouseError.self) { try RoleName(validating: bad) }
        }
    }

    @Test func invitationTokensCarry256BitsAndOnlyTheirHashIsKept() throws {
        let token = InvitationToken.generate(using: SystemRandomSource())
        #expect(Base64URL.decode(token.secret)?.count == 32)
        #expect(token.hash.count == 64)
        #expect(!token.hash.contains(token.secret))
        #expect(InvitationToken.matches(presented: token.secret, storedHash: token.hash))
        #expect(!InvitationToken.matches(presented: token.secret + "x", storedHash: token.hash))
        let url = token.enrollmentURL(publicURL: try PublicURL(parsing: "https://g.example.org"))
        #expect(url == "https://g.example.org/enroll#token=\(token.secret)")
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("+/8=") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("ab c") == nil)
    }

    @Test func identifiersAreVersion4UUIDs() {
        let id = Identifier.make(using: SeededRandomSource(seed: 3))
        #expect(id.count == 36)
        #expect(Array(id)[14] == "4")
        #expect("89ab".contains(Array(id)[19]))
        #expect(Identifier.make(using: SeededRandomSource(seed: 3)) == id)
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2], [1, 2, 3]))
    }
}
