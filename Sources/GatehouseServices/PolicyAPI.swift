public import Foundation
public import GatehousePolicy

/// The JSON shapes of the policy endpoints on the admin socket, shared by the routes that write
/// them and the client that reads them, so the two cannot drift.
public enum PolicyAPI {
    /// Body of check, diff and apply.
    public struct SourceBody: Codable, Sendable {
        public var source: String
        /// Name used in diagnostics (the file the CLI read).
        public var fileName: String?
        public var expectedVersion: Int64?
        public var comment: String?

        public init(source: String, fileName: String?, expectedVersion: Int64? = nil, comment: String? = nil) {
            self.source = source
            self.fileName = fileName
            self.expectedVersion = expectedVersion
            self.comment = comment
        }

        enum CodingKeys: String, CodingKey {
            case source, comment
            case fileName = "file_name"
            case expectedVersion = "expected_version"
        }
    }

    public struct Diagnostic: Codable, Sendable, Equatable {
        public var file: String
        public var line: Int
        public var column: Int
        public var message: String

        public init(_ d: PolicyDiagnostic) {
            self.file = d.location.file
            self.line = d.location.line
            self.column = d.location.column
            self.message = d.message
        }

        public var text: String { "\(self.file):\(self.line):\(self.column): \(self.message)" }
    }

    public struct TestResult: Codable, Sendable, Equatable {
        public var line: Int
        public var test: String
        public var passed: Bool
        public var detail: String

        public init(_ r: PolicyTestResult) {
            self.line = r.assertion.location.line
            self.test = r.assertion.text
            self.passed = r.passed
            self.detail = r.detail
        }
    }

    public struct CheckResult: Codable, Sendable {
        public var valid: Bool
        public var sha256: String
        public var rules: Int
        public var diagnostics: [Diagnostic]
        public var tests: [TestResult]

        public init(_ c: PolicyService.Check) {
            self.valid = c.isValid
            self.sha256 = c.sha256
            self.rules = c.policy?.rules.count ?? 0
            self.diagnostics = c.diagnostics.map(Diagnostic.init)
            self.tests = c.tests.map(TestResult.init)
        }
    }

    public struct DiffResult: Codable, Sendable {
        public var activeVersion: Int64?
        public var added: [String]
        public var removed: [String]

        public init(activeVersion: Int64?, diff: PolicyDiff) {
            self.activeVersion = activeVersion
            self.added = diff.added
            self.removed = diff.removed
        }

        enum CodingKeys: String, CodingKey {
            case added, removed
            case activeVersion = "active_version"
        }
    }

    public struct ApplyResult: Codable, Sendable {
        public var version: PolicyVersionInfo
        public var unchanged: Bool
        public var tests: Int
        public var added: [String]
        public var removed: [String]

        public init(_ a: PolicyService.Applied) {
            self.version = a.info
            self.unchanged = a.unchanged
            self.tests = a.tests
            self.added = a.diff.added
            self.removed = a.diff.removed
        }
    }

    public struct VersionResult: Codable, Sendable {
        public var version: PolicyVersionInfo
        public var source: String

        public init(_ r: PolicyVersionRecord) {
            self.version = r.info
            self.source = r.source
        }
    }

    /// Body of explain: a user (or `host:NAME`) and exactly one of the request kinds.
    public struct ExplainQuery: Codable, Sendable {
        public var user: String
        public var ssh: String?
        public var reach: String?
        public var app: String?
        public var request: String?
        public var obtain: String?
        /// Source address of the request, for rules with `from`.
        public var from: String?
        /// Seconds since the last passkey check, for rules with `step_up`; nil for none.
        public var stepUpAgeSeconds: Int64?

        public init(user: String, kind: PolicyQuery.Kind, value: String, from: String? = nil, stepUpAgeSeconds: Int64? = nil) {
            self.user = user
            switch kind {
            case .ssh: self.ssh = value
            case .reach: self.reach = value
            case .app: self.app = value
            case .request: self.request = value
            case .obtain: self.obtain = value
            }
            self.from = from
            self.stepUpAgeSeconds = stepUpAgeSeconds
        }

        /// The one kind asked about, or nil when none or several were given.
        public var query: (PolicyQuery.Kind, String)? {
            let given: [(PolicyQuery.Kind, String?)] = [
                (.ssh, self.ssh), (.reach, self.reach), (.app, self.app), (.request, self.request), (.obtain, self.obtain),
            ]
            let set = given.compactMap { k, v in v.map { (k, $0) } }
            return set.count == 1 ? set[0] : nil
        }

        enum CodingKeys: String, CodingKey {
            case user, ssh, reach, app, request, obtain, from
            case stepUpAgeSeconds = "step_up_age_seconds"
        }
    }

    public struct ExplainResult: Codable, Sendable {
        public var activeVersion: Int64?
        public var allowed: Bool
        public var rule: String?
        public var location: String?
        public var reason: String?
        public var lifetimeSeconds: Int64?
        public var principals: [String]
        public var steps: [String]
        public var text: String

        public init(activeVersion: Int64?, _ e: PolicyExplanation) {
            self.activeVersion = activeVersion
            self.principals = e.principals.map(\.description)
            self.steps = e.steps
            self.text = e.text
            switch e.decision {
            case .allow(let a):
                self.allowed = true
                self.rule = a.rule.name
                self.location = "\(a.rule.location.file):\(a.rule.location.line)"
                self.lifetimeSeconds = a.lifetime?.components.seconds
            case .deny(let d):
                self.allowed = false
                self.rule = d.rule?.name
                self.location = d.rule.map { "\($0.location.file):\($0.location.line)" }
                self.reason = d.description
            }
        }

        enum CodingKeys: String, CodingKey {
            case allowed, rule, location, reason, principals, steps, text
            case activeVersion = "active_version"
            case lifetimeSeconds = "lifetime_seconds"
        }
    }
}
