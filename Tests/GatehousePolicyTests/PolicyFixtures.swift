import Foundation
import GatehouseCore
import GatehousePolicy

/// Shared inputs for the policy tests: the example policy from the repository and helpers.
enum PolicyFixtures {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var exampleText: String {
        try! String(contentsOf: root.appendingPathComponent("examples/company.policy"), encoding: .utf8)
    }

    static var example: CompiledPolicy {
        try! PolicyCompiler(fileName: "company.policy").compile(exampleText)
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func compile(_ text: String, file: String = "test.policy") throws(PolicyError) -> CompiledPolicy {
        try PolicyCompiler(fileName: file).compile(text)
    }

    /// The first diagnostic of a policy that must not compile.
    static func firstError(_ text: String) -> String? {
        do {
            _ = try compile(text)
            return nil
        } catch {
            return error.diagnostics.first?.description
        }
    }

    static func address(_ text: String) -> UInt128 { try! IPPrefix(parsing: text).first }

    static func context(source: String? = nil, stepUpAgo: TimeInterval? = 0) -> PolicyContext {
        PolicyContext(now: now, sourceAddress: source.map(address), lastStepUp: stepUpAgo.map { now.addingTimeInterval(-$0) })
    }

    /// Where golden files live; `GATEHOUSE_UPDATE_GOLDEN=1` rewrites them.
    static func golden(_ name: String, _ actual: String) -> (expected: String, actual: String) {
        let url = root.appendingPathComponent("Tests/GatehousePolicyTests/Golden/\(name)")
        if ProcessInfo.processInfo.environment["GATEHOUSE_UPDATE_GOLDEN"] == "1" {
            try! actual.write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = (try? String(contentsOf: url, encoding: .utf8)) ?? "<missing golden file \(name)>"
        return (expected, actual)
    }
}
