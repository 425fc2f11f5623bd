public import Foundation
public import GatehouseCore
public import GatehousePolicy

/// The one policy: checks candidate texts, applies them as numbered versions (atomically, with
/// an audit event, never with a failing test), and holds the compiled active version that
/// enforcement points ask.
///
/// With no policy applied yet, or if the stored one no longer compiles (after an upgrade made
/// the language stricter), the active policy is the empty one: everything is denied.
public final class PolicyService: Sendable {
    /// The compiled version in force.
    public struct Active: Sendable {
        public let info: PolicyVersionInfo?
        public let policy: CompiledPolicy
        /// Why the stored version could not be used, when it could not.
        public let loadError: String?
    }

    /// A candidate text, checked: diagnostics if it does not compile, else its test results.
    public struct Check: Sendable {
        public let sha256: String
        public let policy: CompiledPolicy?
        public let diagnostics: [PolicyDiagnostic]
        public let tests: [PolicyTestResult]

        public var failedTests: [PolicyTestResult] { self.tests.filter { !$0.passed } }
        public var isValid: Bool { self.policy != nil && self.failedTests.isEmpty }

        /// The refusal to show, or nil when the candidate may be applied.
        public var refusal: GatehouseError? {
            if !self.diagnostics.isEmpty {
                return GatehouseError(.policyInvalid, self.diagnostics.map(\.description).joined(separator: "\n"))
            }
            let failed = self.failedTests
            guard !failed.isEmpty else { return nil }
            return GatehouseError(
                .policyTestsFailed,
                "\(failed.count) of \(self.tests.count) policy tests failed:\n" + failed.map(\.description).joined(separator: "\n"))
        }
    }

    /// What an apply did.
    public struct Applied: Sendable {
        public let info: PolicyVersionInfo
        public let diff: PolicyDiff
        /// True when the text was identical to the active version: nothing was written.
        public let unchanged: Bool
        public let tests: Int
    }

    public static let maxSourceBytes = PolicyParser.Limits.default.maxBytes
    static let empty = try! PolicyCompiler(fileName: "empty").compile("")

    let environment: ServiceEnvironment
    /// The deployment's address plan: hosts with `org = "..."` get their mesh addresses from it.
    public let addressing: MeshAddressing
    let state = LockedBox(Active(info: nil, policy: PolicyService.empty, loadError: nil))

    public init(environment: ServiceEnvironment, addressing: MeshAddressing = .placeholder) {
        self.environment = environment
        self.addressing = addressing
    }

    public var active: Active { self.state.value }

    /// The groups and roles the active policy gives `username` now (for their account page).
    public func membership(of username: String) -> (groups: [String], roles: [String]) {
        let principals = self.active.policy.subject(user: username, now: self.environment.time.now()).principals(at: self.environment.time.now())
        var groups: [String] = []
        var roles: [String] = []
        for p in principals {
            switch p {
            case .group(let name): groups.append(name)
            case .role(let name): roles.append(name)
            default: break
            }
        }
        return (groups.sorted(), roles.sorted())
    }

    /// The name diagnostics use for a stored version.
    static func fileName(version: Int64) -> String { "policy@v\(version)" }

    /// Loads the latest stored version if it is not the active one (another replica may have
    /// applied it). Cheap when nothing changed: one indexed read.
    @discardableResult
    public func refresh() async throws -> Active {
        let current = self.state.value
        let latest = try await self.environment.store.read { tx in try await tx.policyHistory(limit: 1).first }
        guard let latest, latest.version != current.info?.version || current.loadError != nil else { return current }
        guard let record = try await self.environment.store.read({ tx in try await tx.policyVersion(latest.version) }) else { return current }
        let next: Active
        do {
            let compiled = try PolicyCompiler(fileName: Self.fileName(version: record.info.version), addressing: self.addressing).compile(
                record.source)
            next = Active(info: record.info, policy: compiled, loadError: nil)
        } catch {
            next = Active(info: record.info, policy: Self.empty, loadError: error.description)
        }
        self.state.mutate { state in
            if (state.info?.version ?? 0) <= record.info.version { state = next }
        }
        return self.state.value
    }

    /// Parses, compiles and runs the tests block of `source`. Pure; writes nothing.
    public func check(source: String, fileName: String) -> Check {
        let sha = ContentDigest.sha256Hex(source)
        do {
            let policy = try PolicyCompiler(fileName: fileName, addressing: self.addressing).compile(source)
            return Check(sha256: sha, policy: policy, diagnostics: [], tests: policy.runTests(now: self.environment.time.now()))
        } catch {
            return Check(sha256: sha, policy: nil, diagnostics: error.diagnostics, tests: [])
        }
    }

    /// What `source` would change against the active version. Throws when it does not compile.
    public func diff(source: String, fileName: String) async throws -> PolicyDiff {
        let check = self.check(source: source, fileName: fileName)
        guard let policy = check.policy else { throw check.refusal! }
        let active = try await self.refresh()
        return PolicyDiff(from: active.info == nil ? nil : active.policy, to: policy)
    }

    /// Applies `source` as the next version. Refused (and the refusal audited) when it does not
    /// compile or a test fails; a conflict when `expectedVersion` is given and is not the
    /// latest (someone else applied in between). Applying the active text again writes nothing.
    public func apply(
        source: String, fileName: String, actor: String, expectedVersion: Int64? = nil, comment: String? = nil,
        requestID: String? = nil, sourceAddress: String? = nil
    ) async throws -> Applied {
        let env = self.environment
        let check = self.check(source: source, fileName: fileName)
        if let refusal = check.refusal {
            let now = env.time.now()
            let event = AuditEvent(
                code: .policyRejected, time: now, actor: .stored(actor), subject: .policy, outcome: .denied,
                reason: refusal.code == .policyInvalid
                    ? "\(check.diagnostics.count) problem(s); first: \(check.diagnostics[0].description.prefix(300))"
                    : "\(check.failedTests.count) of \(check.tests.count) tests failed; first: \(check.failedTests[0].assertion.text.prefix(300))",
                requestID: requestID, sourceAddress: sourceAddress, details: ["sha256": check.sha256]
            )
            try await env.store.commit { _ in Change((), event: event) }
            throw refusal
        }
        let policy = check.policy!
        let active = try await self.refresh()
        if let info = active.info, info.sha256 == check.sha256, active.loadError == nil, expectedVersion == nil || expectedVersion == info.version {
            return Applied(info: info, diff: PolicyDiff(from: active.policy, to: policy), unchanged: true, tests: check.tests.count)
        }
        let comment = comment.map { String($0.prefix(1000)) }
        let (record, diff) = try await env.store.commit { tx -> Change<(PolicyVersionRecord, PolicyDiff)> in
            let latest = try await tx.policyHistory(limit: 1).first
            let latestVersion = latest?.version ?? 0
            if let expectedVersion, expectedVersion != latestVersion {
                throw GatehouseError(.conflict, "the active policy is version \(latestVersion), not \(expectedVersion); run policy diff again")
            }
            // Diff against what is really latest, even if this replica has not loaded it yet.
            var previous: CompiledPolicy? = nil
            if let latest {
                if latest.version == active.info?.version, active.loadError == nil {
                    previous = active.policy
                } else if let stored = try await tx.policyVersion(latest.version) {
                    previous = try? PolicyCompiler(fileName: Self.fileName(version: latest.version), addressing: self.addressing).compile(
                        stored.source)
                }
            }
            let diff = PolicyDiff(from: previous, to: policy)
            let now = env.time.now()
            let info = PolicyVersionInfo(
                version: latestVersion + 1, sha256: check.sha256, appliedAt: now, appliedBy: actor, comment: comment, ruleCount: policy.rules.count
            )
            let record = PolicyVersionRecord(info: info, source: source)
            try await tx.insertPolicyVersion(record)
            var details = [
                "version": String(info.version), "sha256": info.sha256, "rules": String(info.ruleCount),
                "tests": String(check.tests.count), "granted": String(diff.added.count), "revoked": String(diff.removed.count),
            ]
            if let latest { details["previous_version"] = String(latest.version) }
            let event = AuditEvent(
                code: .policyApplied, time: now, actor: .stored(actor), subject: .policy(version: info.version), reason: comment,
                requestID: requestID, sourceAddress: sourceAddress, details: details
            )
            return Change((record, diff), event: event)
        }
        let compiled = try PolicyCompiler(fileName: Self.fileName(version: record.info.version), addressing: self.addressing).compile(source)
        self.state.mutate { state in
            if (state.info?.version ?? 0) < record.info.version { state = Active(info: record.info, policy: compiled, loadError: nil) }
        }
        return Applied(info: record.info, diff: diff, unchanged: false, tests: check.tests.count)
    }

    /// One stored version (the latest when nil), or a not-found error.
    public func version(_ version: Int64?) async throws -> PolicyVersionRecord {
        guard let record = try await self.environment.store.read({ tx in try await tx.policyVersion(version) }) else {
            throw GatehouseError(.notFound, version.map { "there is no policy version \($0)" } ?? "no policy has been applied yet")
        }
        return record
    }

    public func history(limit: Int) async throws -> [PolicyVersionInfo] {
        try await self.environment.store.read { tx in try await tx.policyHistory(limit: min(max(limit, 1), 1000)) }
    }

    /// Explains `request` for `user` against the active version, as of now.
    public func explain(user: String, request: PolicyRequest, sourceAddress: UInt128? = nil, stepUpAgo: Duration? = nil) async throws
        -> PolicyExplanation
    {
        let active = try await self.refresh()
        let now = self.environment.time.now()
        let subject: PolicySubject
        if user.hasPrefix("host:") {
            subject = active.policy.subject(host: String(user.dropFirst(5)))
        } else {
            guard (try? Username(validating: user)) != nil else {
                throw GatehouseError(.invalidInput, "'\(user.prefix(64))' is not a user name or host:NAME")
            }
            subject = active.policy.subject(user: user, now: now)
        }
        let lastStepUp = stepUpAgo.map { now.addingTimeInterval(-Double($0.components.seconds)) }
        return active.policy.explain(
            request, subject: subject, context: PolicyContext(now: now, sourceAddress: sourceAddress, lastStepUp: lastStepUp))
    }

    /// Explains a request as the API and CLI phrase it (`root@web-1`, `db-1:5432`, ...).
    public func explain(_ query: PolicyAPI.ExplainQuery) async throws -> PolicyAPI.ExplainResult {
        guard let (kind, value) = query.query else {
            throw GatehouseError(.invalidInput, "give exactly one of ssh, reach, app, request, obtain")
        }
        let active = try await self.refresh()
        let request = try PolicyQuery.parse(kind, value, in: active.policy)
        var from: UInt128? = nil
        if let text = query.from {
            guard let p = try? IPPrefix(parsing: text), p.isSingleAddress else { throw GatehouseError(.invalidInput, "from must be one IP address") }
            from = p.first
        }
        if let age = query.stepUpAgeSeconds, age < 0 { throw GatehouseError(.invalidInput, "step_up_age_seconds must not be negative") }
        let explanation = try await self.explain(
            user: query.user, request: request, sourceAddress: from, stepUpAgo: query.stepUpAgeSeconds.map { .seconds($0) })
        return PolicyAPI.ExplainResult(activeVersion: active.info?.version, explanation)
    }
}
