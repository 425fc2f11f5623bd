/// An error meant for the person running Gatehouse: a stable machine-readable ``Code`` and a
/// message fit to show as is. Diagnostics that would leak internals stay in logs, never here.
///
/// The edges map it: the CLI prints `gatehouse: error: MESSAGE`, HTTP and GraphQL return the code
/// and the message as JSON.
public struct GatehouseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes. Raw values are part of the public API and never change meaning.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        case configInvalid = "config.invalid"
        case dataDirUnusable = "data_dir.unusable"
        case rootKeyMissing = "root_key.missing"
        case rootKeyInvalid = "root_key.invalid"
        case rootKeyMismatch = "root_key.mismatch"
        case keyMaterialCorrupted = "key_material.corrupted"
        case storeUnreachable = "store.unreachable"
        case storeSchemaTooNew = "store.schema_too_new"
        case storeFailure = "store.failure"
        case invalidInput = "input.invalid"
        case inputTooLarge = "input.too_large"
        case conflict = "conflict"
        case policyInvalid = "policy.invalid"
        case policyTestsFailed = "policy.tests_failed"
        case rateLimited = "rate_limited"
        case unauthenticated = "unauthenticated"
        case stepUpRequired = "step_up_required"
        case notFound = "not_found"
        case serverNotRunning = "server.not_running"
        case serverAlreadyRunning = "server.already_running"
        case forbidden = "forbidden"
        case `internal` = "internal"
    }

    public let code: Code
    public let message: String
    /// For `rateLimited`: the seconds until an attempt is allowed again, when known.
    public let retryAfter: Int?

    public init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { self.message }
}
