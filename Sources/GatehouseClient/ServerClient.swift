import AsyncHTTPClient
public import Foundation
public import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// Talks to a Gatehouse server over HTTP(S) as a person's CLI does: the OAuth endpoints of its
/// OpenID Connect provider (device and code grants, refresh, revocation) and the APIs a bearer
/// token opens (SSH certificates). Every answer is size-bounded and decoded strictly.
public struct ServerClient: Sendable {
    public let server: URL
    /// The public client the CLI signs in as (declared in the policy file).
    public let clientID: String
    let timeout: TimeAmount = .seconds(30)
    /// The shared client, or one holding a mutual-TLS identity (see ``init(server:mtls:)``).
    let http: HTTPClient

    public init(server: URL, clientID: String = "gatehouse-cli") {
        self.server = server
        self.clientID = clientID
        self.http = .shared
    }

    /// An agent's or service's identity for the mutual-TLS listener: its certificate chain and
    /// key (PEM), and the Gatehouse root it trusts the server through (nothing else).
    public struct MTLSCredentials: Sendable {
        public let chainPEM: String
        public let keyPEM: String
        public let rootPEM: String
        public init(chainPEM: String, keyPEM: String, rootPEM: String) {
            self.chainPEM = chainPEM
            self.keyPEM = keyPEM
            self.rootPEM = rootPEM
        }
    }

    /// A client for the mutual-TLS listener: TLS 1.3, our certificate, the Gatehouse root as the
    /// only trust anchor. Call ``shutdown()`` when done.
    public init(server: URL, mtls: MTLSCredentials) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(mtls.chainPEM.utf8)).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(mtls.keyPEM.utf8), format: .pem))
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(mtls.rootPEM.utf8)))
        } catch {
            throw GatehouseError(.invalidInput, "the mutual-TLS certificate, key or root cannot be read: \(error)")
        }
        tls.minimumTLSVersion = .tlsv13
        self.server = server
        self.clientID = "gatehouse-agent"
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }

    public func shutdown() async throws {
        if self.http !== HTTPClient.shared { try await self.http.shutdown() }
    }

    /// The token endpoint's answer.
    public struct Tokens: Sendable, Codable {
        public let accessToken: String
        public let expiresIn: Int
        public let refreshToken: String?
        public let idToken: String?
        public let scope: String

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case expiresIn = "expires_in"
            case refreshToken = "refresh_token"
            case idToken = "id_token"
            case scope
        }
    }

    public struct DeviceStart: Sendable, Decodable {
        public let deviceCode: String
        public let userCode: String
        public let verificationURI: String
        public let verificationURIComplete: String
        public let expiresIn: Int
        public let interval: Int

        enum CodingKeys: String, CodingKey {
            case deviceCode = "device_code"
            case userCode = "user_code"
            case verificationURI = "verification_uri"
            case verificationURIComplete = "verification_uri_complete"
            case expiresIn = "expires_in"
            case interval
        }
    }

    struct OAuthErrorBody: Decodable {
        let error: String
        let errorDescription: String?
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }

    struct APIErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    /// The OAuth error code of a refused token request (`authorization_pending`, ...).
    public struct OAuthRefusal: Error, Sendable {
        public let code: String
        public let message: String
    }

    // MARK: OAuth

    public func startDeviceAuthorization(scope: String) async throws -> DeviceStart {
        try await self.form("/oauth2/device_authorization", ["client_id": self.clientID, "scope": scope])
    }

    /// Polls until the person approves (or refuses, or the code expires), honouring the interval
    /// and `slow_down`.
    /// `progress` hears the seconds left about every 30 seconds, so a person sees what is awaited.
    public func waitForDeviceApproval(
        _ start: DeviceStart, sleep: @Sendable (Int) async throws -> Void = { try await Task.sleep(for: .seconds($0)) },
        progress: (Int) -> Void = { _ in }
    ) async throws -> Tokens {
        var interval = max(start.interval, 1)
        let deadline = Date().addingTimeInterval(TimeInterval(start.expiresIn))
        var nextProgress = Date()
        while Date() < deadline {
            if Date() >= nextProgress {
                progress(max(0, Int(deadline.timeIntervalSinceNow.rounded())))
                nextProgress = Date().addingTimeInterval(30)
            }
            try await sleep(interval)
            do {
                return try await self.form(
                    "/oauth2/token",
                    [
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start.deviceCode,
                        "client_id": self.clientID,
                    ])
            } catch let refusal as OAuthRefusal where refusal.code == "authorization_pending" {
                continue
            } catch let refusal as OAuthRefusal where refusal.code == "slow_down" {
                interval += 5
            }
        }
        throw GatehouseError(.unauthenticated, "the code expired before it was approved; run gatehouse login again")
    }

    public func exchangeCode(_ code: String, verifier: String, redirectURI: String) async throws -> Tokens {
        try await self.form(
            "/oauth2/token",
            [
                "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirectURI,
                "client_id": self.clientID,
            ])
    }

    public func refresh(_ refreshToken: String) async throws -> Tokens {
        try await self.form("/oauth2/token", ["grant_type": "refresh_token", "refresh_token": refreshToken, "client_id": self.clientID])
    }

    /// RFC 7009; a refresh token ends its whole grant.
    public func revoke(_ token: String) async throws {
        let _: EmptyBody = try await self.form("/oauth2/revoke", ["token": token, "client_id": self.clientID], allowEmpty: true)
    }

    struct EmptyBody: Decodable {}

    // MARK: SSH

    public struct SSHCertificate: Sendable, Decodable {
        public let certificate: String
        public let serial: String
        public let principals: [String]
        public let validBefore: Date
        /// Logins a fresh passkey check would add (the policy's `step_up`).
        public let stepUpWouldAdd: [String]?

        enum CodingKeys: String, CodingKey {
            case certificate, serial, principals
            case validBefore = "valid_before"
            case stepUpWouldAdd = "step_up_would_add"
        }
    }

    public struct SSHAuthorities: Sendable, Decodable {
        public let userCA: String
        public let hostCA: String
        /// The SSH bastion, when the server runs one.
        public let bastion: Bastion?
        enum CodingKeys: String, CodingKey {
            case userCA = "user_ca"
            case hostCA = "host_ca"
            case bastion
        }
    }

    public struct Bastion: Sendable, Decodable {
        public let host: String
        public let port: Int
        public let hostKey: String
        enum CodingKeys: String, CodingKey {
            case host, port
            case hostKey = "host_key"
        }
    }

    public struct SSHHost: Sendable, Codable {
        public let name: String
        public let addresses: [String]
        /// The host's sshd port; nil from a server that does not say (then 22).
        public let port: Int?
    }

    /// The hosts the signed-in person may reach with SSH.
    public func sshHosts(accessToken: String) async throws -> [SSHHost] {
        try await self.send(method: .GET, path: "/api/ssh/hosts", body: nil, contentType: nil, bearer: accessToken)
    }

    public func sshAuthorities() async throws -> SSHAuthorities {
        try await self.send(method: .GET, path: "/api/ssh/ca", body: nil, contentType: nil, bearer: nil)
    }

    /// `proof`: the key's signature over ``SSHKeyPossession/message(accessToken:)`` (`ssh-keygen -Y sign`).
    public func sshCertificate(publicKey: String, proof: String, hosts: [String]?, lifetime: Int?, accessToken: String) async throws -> SSHCertificate
    {
        var body: [String: any Sendable] = ["public_key": publicKey, "proof": proof]
        if let hosts { body["hosts"] = hosts }
        if let lifetime { body["lifetime_seconds"] = lifetime }
        let data = try JSONSerialization.data(withJSONObject: body)
        return try await self.send(method: .POST, path: "/api/ssh/certificates", body: data, contentType: "application/json", bearer: accessToken)
    }

    // MARK: hosts (the agent)

    public struct HostCertificate: Sendable, Decodable {
        public let host: String
        public let hostCertificate: String
        public let principals: [String]
        public let validBefore: Date
        public let agentToken: String?
        public let userCA: String
        public let agentCertificate: String?
        public let rootCertificate: String?
        public let mtlsURL: String?
        enum CodingKeys: String, CodingKey {
            case host, principals
            case agentCertificate = "agent_certificate"
            case rootCertificate = "root_certificate"
            case mtlsURL = "mtls_url"
            case hostCertificate = "host_certificate"
            case validBefore = "valid_before"
            case agentToken = "agent_token"
            case userCA = "user_ca"
        }
    }

    public func joinHost(token: String, hostKey: String, agentCSR: String?) async throws -> HostCertificate {
        var body = ["token": token, "host_key": hostKey]
        if let agentCSR { body["agent_csr"] = agentCSR }
        return try await self.send(
            method: .POST, path: "/api/hosts/join", body: try JSONEncoder().encode(body), contentType: "application/json", bearer: nil)
    }

    /// Over mutual TLS: a fresh host certificate for the agent's own host.
    public func renewHostOverMTLS(hostKey: String) async throws -> HostCertificate {
        try await self.send(
            method: .POST, path: "/api/agent/host-certificate", body: try JSONEncoder().encode(["host_key": hostKey]),
            contentType: "application/json", bearer: nil)
    }

    public struct AgentIdentity: Sendable, Decodable {
        public let certificate: String
        public let root: String
        public let notAfter: Date
        enum CodingKeys: String, CodingKey {
            case certificate, root
            case notAfter = "not_after"
        }
    }

    /// Over mutual TLS: a new agent certificate for a new key (the CSR is made on the host).
    public func renewAgentIdentity(csr: String) async throws -> AgentIdentity {
        try await self.send(
            method: .POST, path: "/api/agent/certificate", body: try JSONEncoder().encode(["csr": csr]), contentType: "application/json", bearer: nil)
    }

    public struct IssuedCertificate: Sendable, Decodable {
        public let certificate: String
        public let chain: String
        public let root: String
        public let serial: String
        public let spiffeID: String
        public let notAfter: Date
        enum CodingKeys: String, CodingKey {
            case certificate, chain, root, serial
            case spiffeID = "spiffe_id"
            case notAfter = "not_after"
        }
    }

    /// `POST /api/pki/sign`: over mutual TLS as an agent, or with a person's bearer token.
    public func signCertificate(csr: String, lifetime: Int?, bearer: String? = nil) async throws -> IssuedCertificate {
        var body: [String: Any] = ["csr": csr]
        if let lifetime { body["lifetime_seconds"] = lifetime }
        return try await self.send(
            method: .POST, path: "/api/pki/sign", body: try JSONSerialization.data(withJSONObject: body), contentType: "application/json",
            bearer: bearer)
    }

    public func renewHost(agentToken: String, hostKey: String) async throws -> HostCertificate {
        try await self.send(
            method: .POST, path: "/api/hosts/renew", body: try JSONEncoder().encode(["host_key": hostKey]), contentType: "application/json",
            bearer: agentToken)
    }

    /// The key revocation list, as bytes for `RevokedKeys`.
    public func revocationList() async throws -> Data {
        guard let url = URL(string: "/api/ssh/krl", relativeTo: self.server) else { throw GatehouseError(.invalidInput, "bad server URL") }
        let response = try await self.http.execute(HTTPClientRequest(url: url.absoluteString), timeout: self.timeout)
        guard response.status.code == 200 else {
            throw GatehouseError(.internal, "the server answered \(response.status.code) for the revocation list")
        }
        let buffer = try await response.body.collect(upTo: 16 << 20)
        let data = Data(buffer.readableBytesView)
        guard data.count >= 8, data.prefix(6) == Data("SSHKRL".utf8) else { throw GatehouseError(.internal, "the revocation list is malformed") }
        return data
    }

    // MARK: private network

    /// Registers a device's WireGuard public key under the signed-in person (`network` scope).
    public func registerDevice(publicKey: WireGuardKey, name: String, accessToken: String) async throws -> DeviceNetworkConfig {
        let body = try JSONEncoder().encode(["public_key": publicKey.description, "name": name])
        return try await self.send(method: .POST, path: "/api/network/devices", body: body, contentType: "application/json", bearer: accessToken)
    }

    public func networkDevices(accessToken: String) async throws -> [NetworkDevice] {
        try await self.send(method: .GET, path: "/api/network/devices", body: nil, contentType: nil, bearer: accessToken)
    }

    public func removeDevice(id: String, accessToken: String) async throws {
        let _: EmptyBody = try await self.send(
            method: .DELETE, path: "/api/network/devices/\(Self.encode(id))", body: nil, contentType: nil, bearer: accessToken, allowEmpty: true)
    }

    /// Over mutual TLS: registers the host's WireGuard key and endpoint; answers the host's
    /// configuration.
    public func registerHostNetwork(publicKey: WireGuardKey, endpoint: String) async throws -> HostNetworkConfig {
        let body = try JSONEncoder().encode(["public_key": publicKey.description, "endpoint": endpoint])
        return try await self.send(
            method: .POST, path: "/api/agent/network", body: body, contentType: "application/json", bearer: nil, limit: 256 << 20)
    }

    /// Over mutual TLS: the host's configuration once it differs from `after` (or after `wait`).
    public func hostNetwork(after version: String?, wait: Int) async throws -> HostNetworkConfig {
        let query = "wait=\(wait)" + (version.map { "&after=\(Self.encode($0))" } ?? "")
        return try await self.send(
            method: .GET, path: "/api/agent/network?\(query)", body: nil, contentType: nil, bearer: nil,
            timeout: .seconds(Int64(wait) + 30), limit: 256 << 20)
    }

    /// Over mutual TLS: takes the host off the network (`gatehouse agent leave`).
    public func leaveNetwork() async throws {
        let _: EmptyBody = try await self.send(
            method: .DELETE, path: "/api/agent/network", body: nil, contentType: nil, bearer: nil, allowEmpty: true)
    }

    // MARK: transport

    func form<T: Decodable>(_ path: String, _ fields: [String: String], allowEmpty: Bool = false) async throws -> T {
        let body = fields.sorted { $0.key < $1.key }.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
        return try await self.send(
            method: .POST, path: path, body: Data(body.utf8), contentType: "application/x-www-form-urlencoded", bearer: nil, allowEmpty: allowEmpty)
    }

    static func encode(_ s: String) -> String {
        s.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? ""
    }

    func send<T: Decodable>(
        method: HTTPMethod, path: String, body: Data?, contentType: String?, bearer: String?, allowEmpty: Bool = false,
        timeout: TimeAmount? = nil, limit: Int = 1 << 20
    ) async throws -> T {
        guard let url = URL(string: path, relativeTo: self.server) else { throw GatehouseError(.invalidInput, "bad server URL \(self.server)") }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do {
            response = try await self.http.execute(request, timeout: timeout ?? self.timeout)
        } catch {
            throw GatehouseError(.serverNotRunning, "cannot reach \(self.server.absoluteString): \(error)")
        }
        let buffer = try await response.body.collect(upTo: limit)
        let bytes = Data(buffer.readableBytesView)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard (200..<300).contains(response.status.code) else {
            // A live token whose passkey check is too old for what was asked (RFC 9470): the
            // caller can ask for a fresh one and retry.
            if response.status.code == 401, bearer != nil, let api = try? decoder.decode(APIErrorBody.self, from: bytes),
                api.error.code == GatehouseError.Code.stepUpRequired.rawValue
            {
                throw GatehouseError(.stepUpRequired, api.error.message)
            }
            // A bearer token the server no longer takes: say what that means for the person.
            if response.status.code == 401, bearer != nil {
                throw GatehouseError(
                    .unauthenticated,
                    "the server no longer accepts this sign-in (you signed out or revoked it, or the account was locked, recovered or offboarded); run gatehouse login"
                )
            }
            if response.status.code == 403, bearer != nil, (try? decoder.decode(APIErrorBody.self, from: bytes))?.error.code == "insufficient_scope" {
                throw GatehouseError(
                    .forbidden,
                    "this sign-in does not carry what that needs (a device sign-in gets no SSH, certificate or network access unless the policy allows it); run gatehouse login with a browser"
                )
            }
            if let oauth = try? decoder.decode(OAuthErrorBody.self, from: bytes) {
                throw OAuthRefusal(code: oauth.error, message: oauth.errorDescription ?? oauth.error)
            }
            if let api = try? decoder.decode(APIErrorBody.self, from: bytes) {
                throw GatehouseError(GatehouseError.Code(rawValue: api.error.code) ?? .invalidInput, api.error.message)
            }
            throw GatehouseError(.internal, "the server answered \(response.status.code)")
        }
        if allowEmpty && bytes.isEmpty, let empty = EmptyBody() as? T { return empty }
        guard let value = try? decoder.decode(T.self, from: bytes) else { throw GatehouseError(.internal, "the server's answer could not be read") }
        return value
    }
}

extension ServerClient.OAuthRefusal: CustomStringConvertible {
    public var description: String { "\(self.message) (\(self.code))" }
}
