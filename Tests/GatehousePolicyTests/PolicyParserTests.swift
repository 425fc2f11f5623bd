import Foundation
import GatehousePolicy
import Testing

@Suite("Policy syntax")
struct PolicyParserTests {
    static let malformed: [(String, String)] = [
        ("group sre {\n  members = [alice\n", "test.policy:2:13: list is not closed with ']'"),
        ("group sre {\n  members = [alice]\n", "test.policy:1:1: block 'group' is not closed with '}'"),
        ("}\n", "test.policy:1:1: unexpected '}': no block is open here"),
        ("group sre { members = [alice] } extra\n", "test.policy:1:33: unexpected 'extra'; one statement per line"),
        ("host h { labels = { env prod } }", "test.policy:1:25: expected '=' after map key 'env'"),
        ("group \"sre\n", "test.policy:1:7: string is not closed on the same line"),
        ("group sre { description = \"a\\qb\" }", "test.policy:1:29: unknown escape; only \\\" \\\\ \\n \\t are allowed"),
        ("group sré {}", "test.policy:1:9: non-ASCII text must be inside a quoted string"),
        ("group sre {}\u{0}", "test.policy:1:13: control character 0x0 is not allowed"),
        ("group sre & {}", "test.policy:1:11: unexpected character '&'"),
        ("= 1", "test.policy:1:1: expected a name at the start of a statement, found '='"),
        ("version =", "test.policy:1:9: expected a value, found end of file"),
        ("host h { addresses = [1.2.3.4 5.6.7.8] }", "test.policy:1:31: expected ',' or ']' in list, found '5.6.7.8'"),
    ]

    @Test("malformed input gets one diagnostic with file:line:col", arguments: malformed)
    func malformedInput(source: String, expected: String) {
        #expect(PolicyFixtures.firstError(source) == expected)
    }

    @Test("invalid UTF-8 is refused")
    func invalidUTF8() {
        #expect(throws: PolicyError.self) { try PolicyParser(fileName: "p").parse([0x67, 0xFF, 0x0A]) }
    }

    @Test("oversized input is refused before it is parsed")
    func oversized() {
        var limits = PolicyParser.Limits()
        limits.maxBytes = 1024
        let text = String(repeating: "# padding\n", count: 200)
        #expect(throws: PolicyError.self) { try PolicyParser(fileName: "p", limits: limits).parse(text) }
    }

    @Test("deep nesting is bounded, not a stack overflow")
    func deepNesting() {
        let lists = "version = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let blocks = String(repeating: "a {\n", count: 50_000) + String(repeating: "}\n", count: 50_000)
        for text in [lists, blocks] {
            do {
                _ = try PolicyParser(fileName: "p").parse(text)
                Issue.record("nesting was accepted")
            } catch {
                #expect(error.description.contains("nested deeper than"))
            }
        }
    }

    @Test("long words and strings are bounded")
    func longTokens() {
        let word = "group " + String(repeating: "a", count: 5000) + " {}"
        let string = "group a { description = \"" + String(repeating: "a", count: 5000) + "\" }"
        #expect(PolicyFixtures.firstError(word)?.contains("longer than 4096 bytes") == true)
        #expect(PolicyFixtures.firstError(string)?.contains("longer than 4096 bytes") == true)
    }

    @Test("comments, semicolons, CRLF and trailing commas are fine")
    func lenientWhitespace() throws {
        let text = "# head\r\ngroup sre { members = [alice, bob,] ; description = \"x\" }  # tail\r\nversion = 1\r\n"
        let policy = try PolicyFixtures.compile(text)
        #expect(policy.definitions.groups.first?.members == ["alice", "bob"])
    }
}
