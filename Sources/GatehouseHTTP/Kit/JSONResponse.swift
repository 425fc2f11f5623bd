import Foundation
public import GatehouseCore
public import Hummingbird
import NIOCore

/// JSON responses and the mapping from ``GatehouseError`` codes to HTTP statuses, in one place.
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal","message":"response could not be encoded"}}"#.utf8)
        return self.raw(status, [UInt8](data))
    }

    static func raw(_ status: HTTPResponse.Status, _ bytes: [UInt8], contentType: String = "application/json") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    struct OAuthBody: Encodable {
        let error: String
        let errorDescription: String
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }

    /// What a server-side failure says to the caller: its message may carry a database's or the
    /// system's own words (a user name, a column, a path), which stay in the server's log.
    static let unavailable = "Gatehouse cannot answer this right now; try again"

    /// The answer for any coded error: its status and body, and the headers it asks for. A 5xx
    /// answer keeps its code but not its message, unless `revealing` (the local admin socket,
    /// whose operator needs "refusing to sign a checkpoint: ..." and already reads the log).
    static func error(_ error: any CodedError, revealing: Bool = false) -> Response {
        let status = HTTPResponse.Status(code: error.httpStatus)
        let message = error.httpStatus >= 500 && !revealing ? Self.unavailable : error.message
        var response =
            switch error.bodyFormat {
            case .gatehouse: self.make(status, ErrorBody(error: .init(code: error.stableCode, message: message)))
            case .oauth: self.make(status, OAuthBody(error: error.stableCode, errorDescription: message))
            }
        if error.stableCode == GatehouseError.Code.rateLimited.rawValue { response.headers[.retryAfter] = String(error.retryAfter ?? 60) }
        if let challenge = error.challenge { response.headers[.wwwAuthenticate] = challenge }
        return response
    }

    static func error(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        self.make(status, ErrorBody(error: .init(code: code, message: message)))
    }

    static func status(for code: GatehouseError.Code) -> HTTPResponse.Status {
        HTTPResponse.Status(code: code.httpStatus)
    }
}

/// Reads a request body of at most `limit` bytes, or fails with a clear `input.too_large`.
func collectBody(_ request: Request, limit: Int) async throws -> [UInt8] {
    var request = request
    do {
        let buffer = try await request.collectBody(upTo: limit)
        return Array(buffer.readableBytesView)
    } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
        throw GatehouseError(.inputTooLarge, "request body is larger than \(limit) bytes")
    }
}
