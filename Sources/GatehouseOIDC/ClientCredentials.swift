import Foundation
public import GatehouseCore

/// What a request offered to authenticate its client: HTTP Basic (RFC 6749 §2.3.1, with the
/// form-urlencoding of id and secret that the RFC requires), `client_secret` in the body, a
/// `client_assertion` (RFC 7523), or only a `client_id` (public clients). Offering more than one
/// method is an error (§2.3: a client must not use more than one).
public enum ClientCredentials: Sendable, Equatable {
    case basic(id: String, secret: String)
    case post(id: String, secret: String)
    case assertion(id: String?, jwt: String)
    case none(id: String)

    public var clientID: String? {
        switch self {
        case .basic(let id, _), .post(let id, _), .none(let id): id
        case .assertion(let id, _): id
        }
    }

    public var method: OIDCClient.AuthMethod {
        switch self {
        case .basic: .clientSecretBasic
        case .post: .clientSecretPost
        case .assertion: .privateKeyJWT
        case .none: .none
        }
    }

    public static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    public static func parse(authorization: String?, form: FormParameters) throws(OAuthError) -> ClientCredentials {
        var found: [ClientCredentials] = []
        if let authorization {
            guard authorization.utf8.count <= 1024, authorization.lowercased().hasPrefix("basic "),
                let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else {
                throw OAuthError(.invalidClient, "the Authorization header is not valid HTTP Basic client authentication")
            }
            let id = try FormParameters.decode(ArraySlice(text[..<colon].utf8))
            let secret = try FormParameters.decode(ArraySlice(text[text.index(after: colon)...].utf8))
            guard !id.isEmpty else { throw OAuthError(.invalidClient, "the Authorization header names no client") }
            if let bodyID = form.nonEmpty("client_id"), bodyID != id {
                throw OAuthError(.invalidRequest, "client_id differs from the authenticated client")
            }
            found.append(.basic(id: id, secret: secret))
        }
        if let secret = form.nonEmpty("client_secret") {
            guard let id = form.nonEmpty("client_id") else { throw OAuthError(.invalidClient, "client_secret without client_id") }
            found.append(.post(id: id, secret: secret))
        }
        if let jwt = form.nonEmpty("client_assertion") {
            guard form["client_assertion_type"] == Self.assertionType else {
                throw OAuthError(.invalidClient, "client_assertion_type must be \(Self.assertionType)")
            }
            found.append(.assertion(id: form.nonEmpty("client_id"), jwt: jwt))
        }
        guard found.count <= 1 else { throw OAuthError(.invalidRequest, "the request uses more than one client authentication method") }
        if let one = found.first { return one }
        guard let id = form.nonEmpty("client_id") else { throw OAuthError(.invalidClient, "the request does not identify its client") }
        return .none(id: id)
    }
}
