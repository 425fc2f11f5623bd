public import Foundation

/// A validated authorization request (OIDC Core §3.1.2.1 with OAuth 2.1's rules): code flow
/// only, PKCE S256 required, the redirect URI exactly as registered.
///
/// Validation follows RFC 6749 §4.1.2.1: until the client and its redirect URI are known good,
/// errors are shown to the user and never redirected (that would make Gatehouse an open
/// redirector); after that, errors go back to the client with its `state`.
public struct AuthorizationRequest: Sendable, Equatable {
    public var clientID: String
    public var redirectURI: String
    public var scopes: Set<Scope>
    public var state: String?
    public var nonce: String?
    public var codeChallenge: String
    public var prompt: Set<Prompt>
    /// Seconds: the user must have authenticated within this long (OIDC `max_age`).
    public var maxAge: Int?
    /// Unix time: the user must have authenticated at or after it. Gatehouse adds it (MACed, see
    /// ``LoginAfter``) when it sends the user to sign in again, so the repeated request is
    /// satisfied by that sign-in rather than looping. Set from `loginAfterToken` by the caller
    /// that holds the key; nil until then.
    public var loginAfter: Int? = nil
    /// The `login_after` parameter as received, unverified.
    public var loginAfterToken: String?
    public var loginHint: String?

    public enum Prompt: String, Sendable, Hashable {
        case none, login, consent
        case selectAccount = "select_account"
    }

    /// Why a request was refused, and where the answer goes.
    public enum Failure: Error, Sendable, Equatable {
        /// Client or redirect URI unknown or invalid: shown on a page, never redirected.
        case show(OAuthError)
        /// Sent back to the (verified) redirect URI.
        case redirect(OAuthError, redirectURI: String, state: String?)
    }

    public static let maxValueLength = 2048

    /// Validates `params` for the client `client` (nil when no such client exists).
    public static func validate(_ params: FormParameters, client: OIDCClient?) throws(Failure) -> AuthorizationRequest {
        for (name, value) in params.values where value.utf8.count > Self.maxValueLength {
            throw .show(OAuthError(.invalidRequest, "parameter \(name.prefix(40)) is too long"))
        }
        guard let clientID = params.nonEmpty("client_id") else { throw .show(OAuthError(.invalidRequest, "client_id is missing")) }
        guard let client, client.id == clientID else { throw .show(OAuthError(.invalidClient, "there is no client \(clientID.prefix(64))")) }
        guard let presented = params.nonEmpty("redirect_uri") else {
            throw .show(OAuthError(.invalidRequest, "redirect_uri is missing; it is required and must match a registered one exactly"))
        }
        guard let redirectURI = client.registeredRedirect(matching: presented) else {
            throw .show(OAuthError(.invalidRequest, "redirect_uri is not registered for client \(clientID.prefix(64))"))
        }
        let state = params.nonEmpty("state")
        func fail(_ code: OAuthError.Code, _ message: String) -> Failure {
            .redirect(OAuthError(code, message), redirectURI: redirectURI, state: state)
        }
        if params["request"] != nil { throw fail(.requestNotSupported, "request objects are not supported") }
        if params["request_uri"] != nil { throw fail(.requestURINotSupported, "request_uri is not supported") }
        guard let responseType = params.nonEmpty("response_type") else { throw fail(.invalidRequest, "response_type is missing") }
        guard responseType == "code" else { throw fail(.unsupportedResponseType, "only response_type=code is supported") }
        if let mode = params.nonEmpty("response_mode"), mode != "query" { throw fail(.invalidRequest, "only response_mode=query is supported") }
        let scopes: Set<Scope>
        do { scopes = try Scope.parse(params["scope"]) } catch { throw .redirect(error, redirectURI: redirectURI, state: state) }
        guard let challenge = params.nonEmpty("code_challenge") else {
            throw fail(.invalidRequest, "code_challenge is required (PKCE with S256)")
        }
        guard params.nonEmpty("code_challenge_method") == "S256" else {
            throw fail(.invalidRequest, "code_challenge_method must be S256; plain is not accepted")
        }
        guard PKCE.isValidChallenge(challenge) else { throw fail(.invalidRequest, "code_challenge is not a base64url SHA-256 digest") }
        var prompt: Set<Prompt> = []
        for word in (params["prompt"] ?? "").split(separator: " ") {
            guard let p = Prompt(rawValue: String(word)) else { throw fail(.invalidRequest, "unknown prompt value \(word.prefix(20))") }
            prompt.insert(p)
        }
        if prompt.contains(.none) && prompt.count > 1 { throw fail(.invalidRequest, "prompt=none cannot be combined with other values") }
        var maxAge: Int? = nil
        if let text = params.nonEmpty("max_age") {
            guard text.utf8.count <= 10, let v = Int(text), v >= 0 else {
                throw fail(.invalidRequest, "max_age must be a non-negative number of seconds")
            }
            maxAge = v
        }
        return AuthorizationRequest(
            clientID: clientID, redirectURI: redirectURI, scopes: scopes, state: state, nonce: params.nonEmpty("nonce"), codeChallenge: challenge,
            prompt: prompt, maxAge: maxAge, loginAfterToken: params.nonEmpty("login_after"), loginHint: params.nonEmpty("login_hint")
        )
    }

    /// The earliest authentication time this request accepts at `now`, if it constrains one. A
    /// verified `login_after` stands for `max_age` too: it was set when this very request sent
    /// the user to sign in again, so that sign-in satisfies it (`max_age=0` does not loop).
    public func earliestAuthTime(now: Date) -> Date? {
        if let after = self.loginAfter { return Date(timeIntervalSince1970: TimeInterval(after)) }
        return self.maxAge.map { now.addingTimeInterval(-TimeInterval($0)) }
    }

    /// Where the response goes: the redirect URI with `params` (and `iss`, RFC 9207) appended.
    public static func redirectURL(_ redirectURI: String, _ params: [(String, String)]) -> String {
        let separator = redirectURI.contains("?") ? "&" : "?"
        return redirectURI + separator + FormParameters.encode(params)
    }

    public static func errorRedirect(_ failure: OAuthError, redirectURI: String, state: String?, issuer: String) -> String {
        var params: [(String, String)] = [("error", failure.code.rawValue), ("error_description", failure.description)]
        if let state { params.append(("state", state)) }
        params.append(("iss", issuer))
        return Self.redirectURL(redirectURI, params)
    }
}
