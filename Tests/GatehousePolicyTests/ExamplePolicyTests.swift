import Foundation
import GatehousePolicy
import Testing

@Suite("Example policy")
struct ExamplePolicyTests {
    @Test("the example policy compiles and its own tests block passes")
    func exampleTestsPass() throws {
        let policy = PolicyFixtures.example
        let results = policy.runTests(now: PolicyFixtures.now)
        #expect(results.count == 22)
        for r in results { #expect(r.passed, "\(r)") }
    }
}

@Suite("Golden outputs")
struct GoldenOutputTests {
    @Test("the access table of the example policy is pinned")
    func accessTable() {
        let (expected, actual) = PolicyFixtures.golden("company.access.txt", PolicyFixtures.example.accessTable().joined(separator: "\n") + "\n")
        #expect(actual == expected)
    }

    @Test("the tests block results of the example policy are pinned")
    func testResults() {
        let text = PolicyFixtures.example.runTests(now: PolicyFixtures.now).map(\.description).joined(separator: "\n") + "\n"
        let (expected, actual) = PolicyFixtures.golden("company.tests.txt", text)
        #expect(actual == expected)
    }
}
