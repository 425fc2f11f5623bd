/// An error every edge can answer with, without reading its message: a stable code, words for
/// people, the HTTP status it maps to, and, where it applies, how long to wait or which
/// authentication challenge to present. Every error type that reaches a route conforms; the
/// HTTP kit's error middleware turns it into the response, so no route translates errors and
/// nothing is ever parsed back out of a message.
public protocol CodedError: Error, Sendable {
    /// Stable and machine-readable: part of the API, never changes meaning.
    var stableCode: String { get }
    /// Fit to show a person as is; never carries secrets.
    var message: String { get }
    /// The HTTP status this failure is answered with.
    var httpStatus: Int { get }
    /// Seconds to wait before trying again (a `Retry-After` header), for rate limits.
    var retryAfter: Int? { get }
    /// A `WWW-Authenticate` challenge to present (RFC 6750, RFC 9470), when one applies.
    var challenge: String? { get }
    /// The JSON shape of the answer: Gatehouse's `{"error": {"code", "message"}}`, or the
    /// OAuth 2.0 `{"error", "error_description"}` its endpoints must speak.
    var bodyFormat: CodedErrorFormat { get }
}

public enum CodedErrorFormat: Sendable {
    case gatehouse
    case oauth
}

extension CodedError {
    public var retryAfter: Int? { nil }
    public var challenge: String? { nil }
    public var bodyFormat: CodedErrorFormat { .gatehouse }
}

extension GatehouseError: CodedError {
    public var stableCode: String { self.code.rawValue }
    public var httpStatus: Int { self.code.httpStatus }
}

extension GatehouseError.Code {
    /// The HTTP status for each code, in one place.
    public var httpStatus: Int {
        switch self {
        case .invalidInput, .configInvalid: 400
        case .inputTooLarge: 413
        case .conflict: 409
        case .policyInvalid, .policyTestsFailed: 422
        case .rateLimited: 429
        case .unauthenticated, .stepUpRequired: 401
        case .forbidden: 403
        case .notFound: 404
        case .storeFailure, .storeUnreachable: 503
        default: 500
        }
    }
}
