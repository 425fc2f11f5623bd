import Foundation
import GatehouseAudit
import GatehouseCore
import GatehouseServices
import Hummingbird
import NIOCore
import ServiceLifecycle

/// Audit log routes on the admin socket: the latest checkpoint, proofs, the full bundle and
/// the tail. The CLI verifies what it receives itself; these routes only read and sign.
enum AuditRoutes {
    static func add(to router: Router<BasicRequestContext>, log: AuditLog) {
        router.get("/v1/audit/checkpoint") { _, _ in
            try await Self.answer {
                guard let checkpoint = try await log.publishCheckpoint() else {
                    throw GatehouseError(.notFound, "the audit log is empty")
                }
                return CheckpointResponse(size: checkpoint.size, note: checkpoint.note, verifier: log.verifier.description)
            }
        }
        router.get("/v1/audit/bundle") { request, _ in
            try await Self.answer {
                if let since = try Self.integer(request, "since_ms", required: false) {
                    return try await log.bundle(since: Date(timeIntervalSince1970: Double(since) / 1000))
                }
                return try await log.bundle(signFirst: request.uri.queryParameters.get("sign") == "1")
            }
        }
        router.get("/v1/audit/proof") { request, _ in
            try await Self.answer {
                let size = try Self.integer(request, "size", required: false)
                if let old = try Self.integer(request, "old", required: false) {
                    return Self.document(try await log.consistencyProof(oldSize: old, size: size))
                }
                let entry = try Self.integer(request, "entry", required: true)!
                return Self.document(try await log.inclusionProof(sequence: entry, size: size))
            }
        }
        router.get("/v1/audit/tail") { request, _ in
            try await Self.answer {
                let limit = try Self.integer(request, "limit", required: false) ?? 20
                guard (1...10_000).contains(limit) else { throw GatehouseError(.invalidInput, "limit must be 1 to 10000") }
                let filter = try AuditFilter(request)
                let entries = try await log.entries().filter(filter.matches).suffix(Int(limit))
                return entries.map { String(decoding: CanonicalEntry.encode(sequence: $0.sequence, event: $0.event), as: UTF8.self) }
            }
        }
        // NDJSON, one canonical entry per line, from `after` onwards and then as entries are
        // appended: resumable by passing the last sequence number seen. Ends when the server
        // shuts down, so a follower never holds up a graceful stop.
        router.get("/v1/audit/stream") { request, _ in
            let after: Int64
            let filter: AuditFilter
            after = try Self.integer(request, "after", required: false) ?? 0
            filter = try AuditFilter(request)
            var headers = HTTPFields()
            headers[.contentType] = "application/x-ndjson"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    var cursor = after
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        let page = try await log.records(after: cursor, limit: 500)
                        guard let last = page.last else {
                            try? await Task.sleep(for: .milliseconds(200))
                            continue
                        }
                        cursor = last.sequence
                        var buffer = ByteBuffer()
                        for record in page where filter.matches(record) {
                            buffer.writeBytes(CanonicalEntry.encode(sequence: record.sequence, event: record.event))
                            buffer.writeInteger(UInt8(ascii: "\n"))
                        }
                        if buffer.readableBytes > 0 { try await writer.write(buffer) }
                    }
                    try await writer.finish(nil)
                })
        }
    }

    static func answer(_ body: () async throws -> some Encodable) async throws -> Response {
        return JSONResponse.make(.ok, try await body())
    }

    /// Filters for tail and stream: exact event code and/or actor.
    struct AuditFilter: Sendable {
        let code: String?
        let actor: String?

        init(_ request: Request) throws(GatehouseError) {
            let code = request.uri.queryParameters["code"].map(String.init)
            let actor = request.uri.queryParameters["actor"].map(String.init)
            for value in [code, actor].compactMap({ $0 }) where value.utf8.count > 256 {
                throw GatehouseError(.invalidInput, "filters are at most 256 bytes")
            }
            if let code, AuditCode(rawValue: code) == nil {
                throw GatehouseError(.invalidInput, "unknown event code '\(code.prefix(64))'")
            }
            self.code = code
            self.actor = actor
        }

        func matches(_ record: AuditRecord) -> Bool {
            (self.code == nil || record.event.code.rawValue == self.code) && (self.actor == nil || record.event.actor == self.actor)
        }
    }

    /// A non-negative decimal query parameter of at most 18 digits.
    static func integer(_ request: Request, _ name: String, required: Bool) throws(GatehouseError) -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else {
            if required { throw GatehouseError(.invalidInput, "\(name) is required") }
            return nil
        }
        guard text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else {
            throw GatehouseError(.invalidInput, "\(name) must be a whole number")
        }
        return value
    }

    struct CheckpointResponse: Encodable {
        let size: Int64
        let note: String
        let verifier: String
    }

    static func document(_ p: InclusionProof) -> ProofDocument {
        ProofDocument(
            kind: "inclusion", entry: p.sequence, leafHash: Hex.encode(p.leafHash), oldSize: nil, oldRoot: nil,
            size: p.size, root: Hex.encode(p.root), proof: p.proof.map { Hex.encode($0) }, checkpoint: p.checkpoint, oldCheckpoint: nil
        )
    }

    static func document(_ p: ConsistencyProof) -> ProofDocument {
        ProofDocument(
            kind: "consistency", entry: nil, leafHash: nil, oldSize: p.oldSize, oldRoot: Hex.encode(p.oldRoot),
            size: p.newSize, root: Hex.encode(p.newRoot), proof: p.proof.map { Hex.encode($0) }, checkpoint: p.newCheckpoint,
            oldCheckpoint: p.oldCheckpoint
        )
    }
}
