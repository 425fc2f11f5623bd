import AsyncHTTPClient
public import Foundation
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

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    private func send<T: Decodable>(method: HTTPMethod, path: String, body: Data?) async throws -> T {
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
            bytes = try await response.body.collect(upTo: 1 << 20)
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
