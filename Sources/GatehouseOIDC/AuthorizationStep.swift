public import Foundation

/// What the authorization endpoint does next for a valid request: the decision is made here,
/// from facts the adapter gathered (session, policy decision, stored consent); the route only
/// carries it out.
public enum AuthorizationStep: Sendable, Equatable {
    /// Send the user to sign in, then back to this request (`loginAfter` set for `prompt=login`).
    case signIn(loginAfter: Int?)
    /// The policy does not allow this user to use this app: a page says so; nothing is redirected.
    case denied(reason: String)
    /// Ask the user to approve the scopes for a third-party client.
    case consent
    /// Issue the code and redirect.
    case issueCode
    /// Redirect with an error (prompt=none could not be honoured).
    case error(OAuthError)

    /// Facts about the browser's sign-in session, if it has a live one.
    public struct SessionFacts: Sendable, Equatable {
        public var authTime: Date
        public init(authTime: Date) { self.authTime = authTime }
    }

    public static func decide(
        _ request: AuthorizationRequest, session: SessionFacts?, policyDenial: String?, consentGiven: Bool, firstParty: Bool, now: Date
    ) -> AuthorizationStep {
        let silent = request.prompt.contains(.none)
        guard let session else {
            return silent ? .error(OAuthError(.loginRequired, "the user is not signed in")) : .signIn(loginAfter: nil)
        }
        // prompt=login: Gatehouse sends the user to sign in and back with a (verified)
        // `login_after`, which the returning request then checks instead.
        let freshSignIn = AuthorizationStep.signIn(loginAfter: Int(now.timeIntervalSince1970.rounded(.down)))
        if request.prompt.contains(.login), request.loginAfter == nil {
            return silent ? .error(OAuthError(.loginRequired, "prompt=login needs a sign-in")) : freshSignIn
        }
        if let earliest = request.earliestAuthTime(now: now), session.authTime < earliest {
            return silent ? .error(OAuthError(.loginRequired, "the sign-in is older than max_age allows")) : freshSignIn
        }
        if let policyDenial {
            return silent ? .error(OAuthError(.accessDenied, "the policy does not allow this user to use this app")) : .denied(reason: policyDenial)
        }
        if !firstParty && (!consentGiven || request.prompt.contains(.consent)) {
            return silent ? .error(OAuthError(.consentRequired, "the user has not approved this client")) : .consent
        }
        return .issueCode
    }
}
