import Foundation
import GatehouseCore
import GatehousePolicy
import GatehouseServices
import Hummingbird

/// `/v1/policy/...` on the admin socket: check, diff, apply, show, history, explain.
/// Reaching the socket is the credential; applies are audited with the actor `admin-socket`.
enum PolicyRoutes {
    /// JSON escaping can double a text, so the body may be twice the largest policy.
    static let maxBodyBytes = 2 * PolicyService.maxSourceBytes + 64 * 1024

    static func add(to router: Router<BasicRequestContext>, policy: PolicyService, random: any RandomSource, actor: String, source: String) {
        router.post("/v1/policy/check") { request, _ in
            let body = try await Self.sourceBody(request, allowed: ["source", "file_name"])
            return JSONResponse.make(.ok, PolicyAPI.CheckResult(policy.check(source: body.source, fileName: Self.fileName(body))))
        }
        router.post("/v1/policy/diff") { request, _ in
            let body = try await Self.sourceBody(request, allowed: ["source", "file_name"])
            let diff = try await policy.diff(source: body.source, fileName: Self.fileName(body))
            return JSONResponse.make(.ok, PolicyAPI.DiffResult(activeVersion: policy.active.info?.version, diff: diff))
        }
        router.post("/v1/policy/apply") { request, _ in
            let body = try await Self.sourceBody(request, allowed: ["source", "file_name", "expected_version", "comment"])
            let applied = try await policy.apply(
                source: body.source, fileName: Self.fileName(body), actor: actor, expectedVersion: body.expectedVersion,
                comment: body.comment, requestID: Identifier.make(using: random), sourceAddress: source
            )
            return JSONResponse.make(applied.unchanged ? .ok : .created, PolicyAPI.ApplyResult(applied))
        }
        router.get("/v1/policy") { request, _ in
            let version = try Self.integer(request, "version", range: 1...Int64.max)
            return JSONResponse.make(.ok, PolicyAPI.VersionResult(try await policy.version(version)))
        }
        router.get("/v1/policy/history") { request, _ in
            let limit = try Self.integer(request, "limit", range: 1...1000) ?? 50
            return JSONResponse.make(.ok, try await policy.history(limit: Int(limit)))
        }
        router.post("/v1/policy/explain") { request, _ in
            let bytes = try await collectBody(request, limit: 16 * 1024)
            try StrictJSON.checkKeys(bytes, allowed: ["user", "ssh", "reach", "app", "request", "obtain", "from", "step_up_age_seconds"])
            let query = try StrictJSON.decode(PolicyAPI.ExplainQuery.self, bytes)
            return JSONResponse.make(.ok, try await policy.explain(query))
        }
    }

    static func fileName(_ body: PolicyAPI.SourceBody) -> String {
        guard let name = body.fileName, !name.isEmpty, name.utf8.count <= 255,
            name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
        else { return "policy" }
        return name
    }

    static func sourceBody(_ request: Request, allowed: Set<String>) async throws -> PolicyAPI.SourceBody {
        let bytes = try await collectBody(request, limit: Self.maxBodyBytes)
        try StrictJSON.checkKeys(bytes, allowed: allowed)
        let body = try StrictJSON.decode(PolicyAPI.SourceBody.self, bytes)
        guard body.source.utf8.count <= PolicyService.maxSourceBytes else {
            throw GatehouseError(.inputTooLarge, "policy is larger than \(PolicyService.maxSourceBytes) bytes")
        }
        return body
    }

    static func integer(_ request: Request, _ name: String, range: ClosedRange<Int64>) throws(GatehouseError) -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
        guard let value = Int64(String(text)), range.contains(value) else {
            throw GatehouseError(.invalidInput, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

/// JSON bodies that refuse what they do not know: unknown keys are an error, never ignored.
enum StrictJSON {
    static func checkKeys(_ bytes: [UInt8], allowed: Set<String>) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw GatehouseError(.invalidInput, "body must be a JSON object")
        }
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw GatehouseError(.invalidInput, "unknown field '\(key.prefix(64))'")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, _) {
            throw GatehouseError(.invalidInput, "\(key.stringValue) is required")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw GatehouseError(.invalidInput, "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw GatehouseError(.invalidInput, "body is not valid JSON for this request")
        }
    }
}
