import AsyncHTTPClient
public import Foundation
public import GatehouseAudit
public import GatehouseCore
public import GatehouseServices
import NIOCore
import NIOHTTP1

/// Talks to a running server through its local admin socket (`DATA_DIR/admin.sock`).
public struct AdminClient: Sendable {
    public let socketPath: String
    let timeout: TimeAmount = .seconds(15)

    public init(dataDir: String) {
        self.socketPath = (dataDir as NSString).appendingPathComponent("admin.sock")
    }

    public func status() async throws -> ServerStatus {
        try await self.send(method: .GET, path: "/v1/status", body: nil)
    }

    /// The reply to an invitation: the record's facts and the one-time enrollment link.
    public struct IssuedInvitation: Sendable, Decodable {
        public let id: String
        public let username: String
        public let email: String?
        public let role: String
        public let expiresAt: Date
        public let enrollmentURL: String

        enum CodingKeys: String, CodingKey {
            case id, username, email, role
            case expiresAt = "expires_at"
            case enrollmentURL = "enrollment_url"
        }
    }

    public func invite(username: String, email: String?, role: String?) async throws -> IssuedInvitation {
        var body: [String: String] = ["username": username]
        body["email"] = email
        body["role"] = role
        return try await self.send(method: .POST, path: "/v1/invitations", body: try JSONEncoder().encode(body))
    }

    /// A pending link as the server lists it.
    public struct PendingInvitation: Sendable, Decodable {
        public let id: String
        public let kind: String
        public let username: String
        public let email: String?
        public let role: String
        public let createdAt: Date
        public let expiresAt: Date
        public let createdBy: String
        public let state: String
        enum CodingKeys: String, CodingKey {
            case id, kind, username, email, role, state
            case createdAt = "created_at"
            case expiresAt = "expires_at"
            case createdBy = "created_by"
        }
    }

    public func invitations() async throws -> [PendingInvitation] {
        try await self.send(method: .GET, path: "/v1/invitations", body: nil)
    }

    public func revokeInvitation(username: String, reason: String?) async throws -> PendingInvitation {
        var body = ["username": username]
        body["reason"] = reason
        return try await self.send(method: .POST, path: "/v1/invitations/revoke", body: try JSONEncoder().encode(body))
    }

    public func resendInvitation(username: String) async throws -> IssuedInvitation {
        try await self.send(method: .POST, path: "/v1/invitations/resend", body: try JSONEncoder().encode(["username": username]))
    }

    /// A recovery link for an existing account (replaces its passkeys when used).
    public func recover(username: String) async throws -> IssuedInvitation {
        try await self.send(method: .POST, path: "/v1/users/recover", body: try JSONEncoder().encode(["username": username]))
    }

    /// What offboarding ended, per kind of credential.
    public struct Offboarded: Sendable, Decodable {
        public let username: String
        public let revoked: [String: Int]
    }

    public func offboard(username: String, reason: String?) async throws -> Offboarded {
        try await self.send(method: .POST, path: "/v1/users/offboard", body: Self.reasoned(username, reason))
    }

    /// Locking ends what offboarding ends, but keeps the account for `unlock`.
    public func lock(username: String, reason: String?) async throws -> Offboarded {
        try await self.send(method: .POST, path: "/v1/users/lock", body: Self.reasoned(username, reason))
    }

    public struct Unlocked: Sendable, Decodable {
        public let username: String
        public let status: String
    }

    public func unlock(username: String, reason: String?) async throws -> Unlocked {
        try await self.send(method: .POST, path: "/v1/users/unlock", body: Self.reasoned(username, reason))
    }

    static func reasoned(_ username: String, _ reason: String?) throws -> Data {
        var body: [String: String] = ["username": username]
        body["reason"] = reason
        return try JSONEncoder().encode(body)
    }

    // MARK: policy

    /// Largest answer a policy call may bring back: a policy text, JSON-escaped.
    static let policyReplyBytes = 2 * (8 << 20) + (1 << 20)

    public func policyDiff(source: String, fileName: String) async throws -> PolicyAPI.DiffResult {
        try await self.send(
            method: .POST, path: "/v1/policy/diff", body: try JSONEncoder().encode(PolicyAPI.SourceBody(source: source, fileName: fileName)))
    }

    public func policyApply(source: String, fileName: String, expectedVersion: Int64?, comment: String?) async throws -> PolicyAPI.ApplyResult {
        let body = PolicyAPI.SourceBody(source: source, fileName: fileName, expectedVersion: expectedVersion, comment: comment)
        return try await self.send(method: .POST, path: "/v1/policy/apply", body: try JSONEncoder().encode(body))
    }

    public func policyVersion(_ version: Int64?) async throws -> PolicyAPI.VersionResult {
        try await self.send(method: .GET, path: "/v1/policy" + (version.map { "?version=\($0)" } ?? ""), body: nil, maxBytes: Self.policyReplyBytes)
    }

    public func policyHistory(limit: Int) async throws -> [PolicyVersionInfo] {
        try await self.send(method: .GET, path: "/v1/policy/history?limit=\(limit)", body: nil)
    }

    public func policyExplain(_ query: PolicyAPI.ExplainQuery) async throws -> PolicyAPI.ExplainResult {
        try await self.send(method: .POST, path: "/v1/policy/explain", body: try JSONEncoder().encode(query))
    }

    // MARK: audit

    public struct CheckpointReply: Sendable, Decodable {
        public let size: Int64
        public let note: String
        public let verifier: String
    }

    /// The latest signed checkpoint (the server signs a new one first if entries are uncovered).
    public func auditCheckpoint() async throws -> CheckpointReply {
        try await self.send(method: .GET, path: "/v1/audit/checkpoint", body: nil)
    }

    /// The log as a bundle; `signFirst` (an export) has the server sign a checkpoint over it first.
    public func auditBundle(since: Date? = nil, signFirst: Bool = false) async throws -> AuditBundle {
        let query = since.map { "?since_ms=\(Int64(max(0, $0.timeIntervalSince1970 * 1000)))" } ?? (signFirst ? "?sign=1" : "")
        return try await self.send(method: .GET, path: "/v1/audit/bundle" + query, body: nil, maxBytes: 1 << 30)
    }

    public func auditInclusionProof(entry: Int64, size: Int64?) async throws -> ProofDocument {
        try await self.send(method: .GET, path: "/v1/audit/proof?entry=\(entry)" + (size.map { "&size=\($0)" } ?? ""), body: nil)
    }

    public func auditConsistencyProof(oldSize: Int64, size: Int64?) async throws -> ProofDocument {
        try await self.send(method: .GET, path: "/v1/audit/proof?old=\(oldSize)" + (size.map { "&size=\($0)" } ?? ""), body: nil)
    }

    public func auditTail(limit: Int, code: String? = nil, actor: String? = nil) async throws -> [String] {
        try await self.send(method: .GET, path: "/v1/audit/tail?limit=\(limit)" + Self.filterQuery(code: code, actor: actor), body: nil)
    }

    /// Follows the log: calls `line` with each canonical entry after `after`, as they are
    /// appended, until the server ends the stream (at shutdown) or the connection drops.
    public func followAudit(after: Int64, code: String?, actor: String?, _ line: (String) async throws -> Void) async throws {
        try await self.streamLines("/v1/audit/stream?after=\(after)" + Self.filterQuery(code: code, actor: actor), what: "an audit entry", line)
    }

    /// A streamed response, line by line, until the server ends it or the connection drops.
    private func streamLines(_ uri: String, what: String, _ line: (String) async throws -> Void) async throws {
        guard FileManager.default.fileExists(atPath: self.socketPath), let url = URL(httpURLWithSocketPath: self.socketPath, uri: uri) else {
            throw GatehouseError(.serverNotRunning, "no gatehouse server is running for this data dir (no socket at \(self.socketPath))")
        }
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url.absoluteString), deadline: .distantFuture)
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 16)
            let decoder = JSONDecoder()
            if let failure = try? decoder.decode(ErrorBody.self, from: Data(body.readableBytesView)) {
                throw GatehouseError(GatehouseError.Code(rawValue: failure.error.code) ?? .internal, failure.error.message)
            }
            throw GatehouseError(.internal, "the server answered \(response.status.code)")
        }
        var pending: [UInt8] = []
        for try await chunk in response.body {
            pending += chunk.readableBytesView
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                try await line(String(decoding: pending[start..<newline], as: UTF8.self))
                start = newline + 1
            }
            pending.removeFirst(start)
            guard pending.count <= 64 << 20 else { throw GatehouseError(.internal, "\(what) is longer than 64 MiB") }
        }
    }

    // MARK: SSH bastion sessions

    public func bastionSessions(live: Bool, limit: Int) async throws -> [BastionSessionRecord] {
        try await self.send(method: .GET, path: "/v1/sessions?limit=\(limit)" + (live ? "&live=1" : ""), body: nil, maxBytes: 64 << 20)
    }

    public func bastionSession(id: String) async throws -> BastionSessionRecord {
        try await self.send(method: .GET, path: "/v1/sessions/\(Self.escape(id))", body: nil)
    }

    public func killBastionSession(id: String, reason: String?) async throws -> [String: String] {
        let body = try JSONSerialization.data(withJSONObject: reason.map { ["reason": $0] } ?? [String: String]())
        return try await self.send(method: .POST, path: "/v1/sessions/\(Self.escape(id))/kill", body: body)
    }

    /// A session's recording as asciicast v2 lines; with `follow`, live until it is sealed.
    public func sessionRecording(id: String, follow: Bool, _ line: (String) async throws -> Void) async throws {
        try await self.streamLines("/v1/sessions/\(Self.escape(id))/recording" + (follow ? "?follow=1" : ""), what: "a recording line", line)
    }

    static func escape(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
    }

    static func filterQuery(code: String?, actor: String?) -> String {
        var query = ""
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        if let code { query += "&code=" + (code.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") }
        if let actor { query += "&actor=" + (actor.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") }
        return query
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    /// A registered OAuth client as the admin socket lists it; `secret` only in the reply to a
    /// registration, once.
    public struct OIDCClientListing: Sendable, Codable {
        public let id: String
        public let name: String
        public let kind: String
        public let source: String
        public let firstParty: Bool
        public let redirectURIs: [String]
        public let postLogoutRedirectURIs: [String]
        public let authMethods: [String]
        public let secret: String?

        enum CodingKeys: String, CodingKey {
            case id, name, kind, source, secret
            case firstParty = "first_party"
            case redirectURIs = "redirect_uris"
            case postLogoutRedirectURIs = "post_logout_redirect_uris"
            case authMethods = "auth_methods"
        }
    }

    public struct OIDCClientRequest: Sendable, Encodable {
        public var id: String
        public var name: String?
        public var kind: String
        public var redirectURIs: [String]
        public var postLogoutRedirectURIs: [String]
        public var firstParty: Bool
        public var jwks: [String: [[String: String]]]?

        public init(
            id: String, name: String?, kind: String, redirectURIs: [String], postLogoutRedirectURIs: [String], firstParty: Bool,
            jwks: [String: [[String: String]]]?
        ) {
            self.id = id
            self.name = name
            self.kind = kind
            self.redirectURIs = redirectURIs
            self.postLogoutRedirectURIs = postLogoutRedirectURIs
            self.firstParty = firstParty
            self.jwks = jwks
        }

        enum CodingKeys: String, CodingKey {
            case id, name, kind, jwks
            case redirectURIs = "redirect_uris"
            case postLogoutRedirectURIs = "post_logout_redirect_uris"
            case firstParty = "first_party"
        }
    }

    public func addOIDCClient(_ request: OIDCClientRequest) async throws -> OIDCClientListing {
        try await self.send(method: .POST, path: "/v1/oidc/clients", body: try JSONEncoder().encode(request))
    }

    public func oidcClients() async throws -> [OIDCClientListing] {
        try await self.send(method: .GET, path: "/v1/oidc/clients", body: nil)
    }

    public func removeOIDCClient(id: String) async throws -> [String: String] {
        try await self.send(method: .POST, path: "/v1/oidc/clients/remove", body: try JSONEncoder().encode(["id": id]))
    }

    /// A one-time join token for a host the policy defines.
    public func addHost(name: String, labels: [String: String]) async throws -> [String: String] {
        struct Body: Encodable {
            let name: String
            let labels: [String: String]
        }
        return try await self.send(method: .POST, path: "/v1/hosts", body: try JSONEncoder().encode(Body(name: name, labels: labels)))
    }

    public func pkiCertificates(all: Bool) async throws -> [PKICertificateRecord] {
        try await self.send(method: .GET, path: "/v1/pki/certificates" + (all ? "?all=1" : ""), body: nil, maxBytes: 16 << 20)
    }

    public func revokePKICertificate(serial: String, reason: String?) async throws -> [String: String] {
        var body = ["serial": serial]
        if let reason { body["reason"] = reason }
        return try await self.send(method: .POST, path: "/v1/pki/revoke", body: try JSONEncoder().encode(body))
    }

    public func requestIntermediate() async throws -> [String: String] {
        try await self.send(method: .POST, path: "/v1/pki/intermediate-request", body: Data("{}".utf8))
    }

    public func importIntermediate(pem: String) async throws -> [String: String] {
        try await self.send(method: .POST, path: "/v1/pki/intermediate", body: try JSONEncoder().encode(["pem": pem]))
    }

    public func networkDevices(all: Bool) async throws -> [NetworkDevice] {
        try await self.send(method: .GET, path: "/v1/network/devices" + (all ? "?all=1" : ""), body: nil, maxBytes: 64 << 20)
    }

    public func removeNetworkDevice(id: String) async throws -> [String: String] {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
        return try await self.send(method: .DELETE, path: "/v1/network/devices/\(escaped)", body: nil)
    }

    public func hostNetwork(host: String) async throws -> HostNetworkConfig {
        let escaped = host.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
        return try await self.send(method: .GET, path: "/v1/network/hosts/\(escaped)", body: nil, maxBytes: 256 << 20)
    }

    public func rotateOIDCKey(algorithm: String) async throws -> [String: String] {
        try await self.send(method: .POST, path: "/v1/oidc/keys/rotate", body: try JSONEncoder().encode(["algorithm": algorithm]))
    }

    private func send<T: Decodable>(method: HTTPMethod, path: String, body: Data?, maxBytes: Int = 1 << 20) async throws -> T {
        guard FileManager.default.fileExists(atPath: self.socketPath) else {
            throw GatehouseError(.serverNotRunning, "no gatehouse server is running for this data dir (no socket at \(self.socketPath))")
        }
        guard let url = URL(httpURLWithSocketPath: self.socketPath, uri: path) else {
            throw GatehouseError(.invalidInput, "socket path \(self.socketPath) cannot be used")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: self.timeout)
            bytes = try await response.body.collect(upTo: maxBytes)
        } catch {
            throw GatehouseError(.serverNotRunning, "cannot reach the gatehouse server at \(self.socketPath): \(error)")
        }
        let data = Data(bytes.readableBytesView)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard (200..<300).contains(Int(response.status.code)) else {
            if let failure = try? decoder.decode(ErrorBody.self, from: data) {
                throw GatehouseError(GatehouseError.Code(rawValue: failure.error.code) ?? .internal, failure.error.message)
            }
            throw GatehouseError(.internal, "the server answered \(response.status.code)")
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw GatehouseError(.internal, "the server's answer could not be read: \(error)")
        }
    }
}
