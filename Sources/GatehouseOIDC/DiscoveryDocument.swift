/// The OpenID Provider metadata served at `/.well-known/openid-configuration` (OIDC Discovery
/// §3, RFC 8414, RFC 8628 §4). It advertises only what Gatehouse does: code flow with S256,
/// ES256/EdDSA, no `none` algorithm, no implicit or hybrid flows.
public struct DiscoveryDocument: Sendable, Encodable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var userinfoEndpoint: String
    public var jwksURI: String
    public var revocationEndpoint: String
    public var introspectionEndpoint: String
    public var endSessionEndpoint: String
    public var deviceAuthorizationEndpoint: String
    public var responseTypesSupported = ["code"]
    public var responseModesSupported = ["query"]
    public var grantTypesSupported = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]
    public var subjectTypesSupported = ["public"]
    public var idTokenSigningAlgValuesSupported: [String]
    public var tokenEndpointAuthMethodsSupported = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    public var tokenEndpointAuthSigningAlgValuesSupported = JWSAlgorithm.allCases.map(\.rawValue)
    public var codeChallengeMethodsSupported = ["S256"]
    public var scopesSupported = Scope.allCases.map(\.rawValue)
    public var claimsSupported = [
        "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "sid", "preferred_username", "email", "groups", "roles",
    ]
    public var acrValuesSupported = ["phrh", "phr"]
    public var promptValuesSupported = ["none", "login", "consent", "select_account"]
    public var authorizationResponseIssParameterSupported = true
    public var requestParameterSupported = false
    public var requestURIParameterSupported = false
    public var claimsParameterSupported = false

    public init(issuer: String, signingAlgorithms: [JWSAlgorithm]) {
        self.issuer = issuer
        self.authorizationEndpoint = issuer + "/oauth2/authorize"
        self.tokenEndpoint = issuer + "/oauth2/token"
        self.userinfoEndpoint = issuer + "/oauth2/userinfo"
        self.jwksURI = issuer + "/oauth2/jwks"
        self.revocationEndpoint = issuer + "/oauth2/revoke"
        self.introspectionEndpoint = issuer + "/oauth2/introspect"
        self.endSessionEndpoint = issuer + "/oauth2/logout"
        self.deviceAuthorizationEndpoint = issuer + "/oauth2/device_authorization"
        self.idTokenSigningAlgValuesSupported = signingAlgorithms.map(\.rawValue)
    }

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case userinfoEndpoint = "userinfo_endpoint"
        case jwksURI = "jwks_uri"
        case revocationEndpoint = "revocation_endpoint"
        case introspectionEndpoint = "introspection_endpoint"
        case endSessionEndpoint = "end_session_endpoint"
        case deviceAuthorizationEndpoint = "device_authorization_endpoint"
        case responseTypesSupported = "response_types_supported"
        case responseModesSupported = "response_modes_supported"
        case grantTypesSupported = "grant_types_supported"
        case subjectTypesSupported = "subject_types_supported"
        case idTokenSigningAlgValuesSupported = "id_token_signing_alg_values_supported"
        case tokenEndpointAuthMethodsSupported = "token_endpoint_auth_methods_supported"
        case tokenEndpointAuthSigningAlgValuesSupported = "token_endpoint_auth_signing_alg_values_supported"
        case codeChallengeMethodsSupported = "code_challenge_methods_supported"
        case scopesSupported = "scopes_supported"
        case claimsSupported = "claims_supported"
        case acrValuesSupported = "acr_values_supported"
        case promptValuesSupported = "prompt_values_supported"
        case authorizationResponseIssParameterSupported = "authorization_response_iss_parameter_supported"
        case requestParameterSupported = "request_parameter_supported"
        case requestURIParameterSupported = "request_uri_parameter_supported"
        case claimsParameterSupported = "claims_parameter_supported"
    }
}
