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

    static func error(_ error: GatehouseError) -> Response {
        self.make(self.status(for: error.code), ErrorBody(error: .init(code: error.code.rawValue, message: error.message)))
    }

    static func error(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        self.make(status, ErrorBody(error: .init(code: code, message: message)))
    }

    static func status(for code: GatehouseError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidInput, .configInvalid: .badRequest
        case .inputTooLarge: .contentTooLarge
        case .conflict: .conflict
        case .policyInvalid, .policyTestsFailed: .unprocessableContent
        case .rateLimited: .tooManyRequests
        case .unauthenticated, .stepUpRequired: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .storeFailure, .storeUnreachable: .serviceUnavailable
        default: .internalServerError
        }
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
