import Foundation
import GatehouseCore
import GatehouseServices
import GraphQL
import Graphiti

/// GraphQL views of the policy shapes: 32-bit Ints and RFC 3339 strings where the shared
/// structs hold Int64 and Date.
extension PolicyVersionInfo {
    var versionNumber: Int { Int(clamping: self.version) }
    var appliedAtText: String { ISO8601DateFormatter().string(from: self.appliedAt) }
}

extension PolicyAPI.VersionResult {
    var versionNumber: Int { self.version.versionNumber }
    var sha256: String { self.version.sha256 }
    var appliedAtText: String { self.version.appliedAtText }
    var appliedBy: String { self.version.appliedBy }
    var comment: String? { self.version.comment }
    var ruleCount: Int { self.version.ruleCount }
}

extension PolicyAPI.DiffResult {
    var activeVersionNumber: Int? { self.activeVersion.map { Int(clamping: $0) } }
}

extension PolicyAPI.ExplainResult {
    var activeVersionNumber: Int? { self.activeVersion.map { Int(clamping: $0) } }
    var lifetime: Int? { self.lifetimeSeconds.map { Int(clamping: $0) } }
}

struct PolicyVersionArguments: Codable {
    let version: Int?
}

struct PolicyHistoryArguments: Codable {
    let first: Int?
}

struct PolicySourceArguments: Codable {
    let source: String
    let fileName: String?
}

struct ApplyPolicyArguments: Codable {
    let source: String
    let fileName: String?
    let expectedVersion: Int?
    let comment: String?
}

struct ExplainPolicyArguments: Codable {
    let user: String
    let ssh: String?
    let reach: String?
    let app: String?
    let request: String?
    let obtain: String?
    let from: String?
    let stepUpAgeSeconds: Int?
}

extension GatehouseResolver {
    func policyService(_ context: GraphQLContext) throws -> PolicyService {
        guard let policy = context.policy else {
            throw GraphQLError(message: "the policy needs an authenticated caller", extensions: ["code": .string("FORBIDDEN")])
        }
        return policy
    }

    func policy(context: GraphQLContext, arguments: PolicyVersionArguments) async throws -> PolicyAPI.VersionResult {
        PolicyAPI.VersionResult(try await self.policyService(context).version(arguments.version.map(Int64.init)))
    }

    func policyHistory(context: GraphQLContext, arguments: PolicyHistoryArguments) async throws -> [PolicyVersionInfo] {
        try await self.policyService(context).history(limit: arguments.first ?? 20)
    }

    func checkPolicy(context: GraphQLContext, arguments: PolicySourceArguments) async throws -> PolicyAPI.CheckResult {
        PolicyAPI.CheckResult(try self.policyService(context).check(source: arguments.source, fileName: arguments.fileName ?? "policy"))
    }

    func diffPolicy(context: GraphQLContext, arguments: PolicySourceArguments) async throws -> PolicyAPI.DiffResult {
        let service = try self.policyService(context)
        let diff = try await service.diff(source: arguments.source, fileName: arguments.fileName ?? "policy")
        return PolicyAPI.DiffResult(activeVersion: service.active.info?.version, diff: diff)
    }

    func applyPolicy(context: GraphQLContext, arguments: ApplyPolicyArguments) async throws -> PolicyAPI.ApplyResult {
        let service = try self.policyService(context)
        let applied = try await service.apply(
            source: arguments.source, fileName: arguments.fileName ?? "policy", actor: context.actor ?? "graphql",
            expectedVersion: arguments.expectedVersion.map(Int64.init), comment: arguments.comment
        )
        return PolicyAPI.ApplyResult(applied)
    }

    func explainPolicy(context: GraphQLContext, arguments: ExplainPolicyArguments) async throws -> PolicyAPI.ExplainResult {
        var query = PolicyAPI.ExplainQuery(
            user: arguments.user, kind: .app, value: "", from: arguments.from, stepUpAgeSeconds: arguments.stepUpAgeSeconds.map(Int64.init))
        query.app = arguments.app
        query.ssh = arguments.ssh
        query.reach = arguments.reach
        query.request = arguments.request
        query.obtain = arguments.obtain
        return try await self.policyService(context).explain(query)
    }
}

/// The policy part of the administrator's schema.
enum PolicyFields {
    static func versionInfo() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyVersionInfo.self, as: "PolicyVersionInfo") {
            Field("version", at: \.versionNumber)
            Field("sha256", at: \.sha256).description("SHA-256 of the text, as recorded in the audit log.")
            Field("appliedAt", at: \.appliedAtText)
            Field("appliedBy", at: \.appliedBy)
            Field("comment", at: \.comment)
            Field("ruleCount", at: \.ruleCount)
        }.description("One applied policy version.")
    }

    static func version() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.VersionResult.self, as: "PolicyVersion") {
            Field("version", at: \.versionNumber)
            Field("sha256", at: \.sha256)
            Field("appliedAt", at: \.appliedAtText)
            Field("appliedBy", at: \.appliedBy)
            Field("comment", at: \.comment)
            Field("ruleCount", at: \.ruleCount)
            Field("source", at: \.source).description("The exact text that was applied.")
        }.description("An applied policy version with its text.")
    }

    static func diagnostic() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.Diagnostic.self, as: "PolicyDiagnostic") {
            Field("file", at: \.file)
            Field("line", at: \.line)
            Field("column", at: \.column)
            Field("message", at: \.message)
        }.description("A problem in a policy text, with its place.")
    }

    static func testResult() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.TestResult.self, as: "PolicyTestResult") {
            Field("line", at: \.line)
            Field("test", at: \.test)
            Field("passed", at: \.passed)
            Field("detail", at: \.detail).description("What the engine decided, in words.")
        }.description("One line of a policy's tests block, run.")
    }

    static func check() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.CheckResult.self, as: "PolicyCheck") {
            Field("valid", at: \.valid).description("Compiles and every test passes: it may be applied.")
            Field("sha256", at: \.sha256)
            Field("rules", at: \.rules)
            Field("diagnostics", at: \.diagnostics)
            Field("tests", at: \.tests)
        }.description("A policy text, checked without applying it.")
    }

    static func diff() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.DiffResult.self, as: "PolicyDiff") {
            Field("activeVersion", at: \.activeVersionNumber)
            Field("added", at: \.added).description("Access lines granted.")
            Field("removed", at: \.removed).description("Access lines revoked.")
        }.description("What a policy text changes against the active version.")
    }

    static func applyResult() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.ApplyResult.self, as: "PolicyApplyResult") {
            Field("version", at: \.version)
            Field("unchanged", at: \.unchanged).description("The text was already active; nothing was written.")
            Field("tests", at: \.tests)
            Field("added", at: \.added)
            Field("removed", at: \.removed)
        }.description("An applied policy version and what it changed.")
    }

    static func explanation() -> Component<GatehouseResolver, GraphQLContext> {
        Type(PolicyAPI.ExplainResult.self, as: "PolicyExplanation") {
            Field("activeVersion", at: \.activeVersionNumber)
            Field("allowed", at: \.allowed)
            Field("rule", at: \.rule).description("The rule that allowed it, or the deny rule or unmet allow behind the denial.")
            Field("location", at: \.location).description("Where that rule is: FILE:LINE.")
            Field("reason", at: \.reason).description("Why it was denied.")
            Field("lifetimeSeconds", at: \.lifetime).description("The longest credential this allows.")
            Field("principals", at: \.principals).description("Every principal the subject counts as.")
            Field("steps", at: \.steps).description("Each rule of the request's kind and what became of it.")
            Field("text", at: \.text)
        }.description("A policy decision with its reasoning.")
    }
}
