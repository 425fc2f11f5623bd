public import GatehouseCore

/// An OAuth 2.0 / OpenID Connect error: the registered `error` code (RFC 6749 §4.1.2.1 and
/// §5.2, RFC 7009, RFC 7662, RFC 8628, OIDC Core §3.1.2.6) and a description fit for the
/// developer of the client. Descriptions never carry secrets.
public struct OAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable, CaseIterable {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case unsupportedResponseType = "unsupported_response_type"
        case invalidScope = "invalid_scope"
        case accessDenied = "access_denied"
        case serverError = "server_error"
        case temporarilyUnavailable = "temporarily_unavailable"
        case invalidToken = "invalid_token"
        case unsupportedTokenType = "unsupported_token_type"
        case loginRequired = "login_required"
        case consentRequired = "consent_required"
        case interactionRequired = "interaction_required"
        case requestNotSupported = "request_not_supported"
        case requestURINotSupported = "request_uri_not_supported"
        case authorizationPending = "authorization_pending"
        case slowDown = "slow_down"
        case expiredToken = "expired_token"
    }

    public let code: Code
    public let description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The HTTP status for a token-endpoint style JSON answer.
    public var httpStatus: Int {
        switch self.code {
        case .invalidClient, .invalidToken: 401
        case .serverError: 500
        case .temporarilyUnavailable: 503
        default: 400
        }
    }
}

extension OAuthError: CodedError {
    public var stableCode: String { self.code.rawValue }
    public var message: String { self.description }
    public var bodyFormat: CodedErrorFormat { .oauth }
    /// RFC 6750 §3 for a refused bearer token; RFC 6749 §5.2 for a client that failed to authenticate.
    public var challenge: String? {
        switch self.code {
        case .invalidToken: #"Bearer error="invalid_token""#
        case .invalidClient: #"Basic realm="gatehouse""#
        default: nil
        }
    }
}
