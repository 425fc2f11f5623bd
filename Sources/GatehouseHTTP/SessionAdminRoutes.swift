import Foundation
import GatehouseCore
import GatehouseRecording
import GatehouseServices
import Hummingbird

/// `/v1/sessions/...` on the admin socket: bastion sessions, their recordings as asciicast v2
/// (whole, or followed live while the session runs), and ending a live session.
enum SessionAdminRoutes {
    static func add(to router: Router<BasicRequestContext>, bastion: BastionService, recordings: String, actor: String) {
        router.get("/v1/sessions") { request, _ in
            let live = request.uri.queryParameters["live"].map { $0 == "1" || $0 == "true" } ?? false
            let limit = request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100
            guard (1...10_000).contains(limit) else { throw GatehouseError(.invalidInput, "limit must be 1 to 10000") }
            return JSONResponse.make(.ok, try await bastion.sessions(liveOnly: live, limit: limit))
        }
        router.get("/v1/sessions/:id") { _, context in
            return JSONResponse.make(.ok, try await bastion.session(id: context.parameters.get("id") ?? ""))
        }
        router.post("/v1/sessions/:id/kill") { request, context in
            let bytes = try await collectBody(request, limit: 4096)
            var reason: String?
            if !bytes.isEmpty {
                try StrictJSON.checkKeys(bytes, allowed: ["reason"])
                let object = (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
                if let value = object["reason"] {
                    guard let text = value as? String, text.utf8.count <= 500 else {
                        throw GatehouseError(.invalidInput, "reason must be a string of at most 500 bytes")
                    }
                    reason = text
                }
            }
            try await bastion.kill(id: context.parameters.get("id") ?? "", actor: actor, reason: reason)
            return JSONResponse.make(.ok, ["status": "ended"])
        }
        // asciicast v2. Without `follow`, a finished recording: its digest is checked against the
        // one the audit log holds, then it is streamed with the exit status in its header. With
        // `follow=1`, the recording as it is written, until it is sealed (`sessions watch`).
        router.get("/v1/sessions/:id/recording") { request, context in
            let record: BastionSessionRecord
            let follow = request.uri.queryParameters["follow"].map { $0 == "1" || $0 == "true" } ?? false
            let path: String
            let summary: RecordingSummary?
            record = try await bastion.session(id: context.parameters.get("id") ?? "")
            path = (recordings as NSString).appendingPathComponent("\(record.id).\(RecordingFormat.fileExtension)")
            guard FileManager.default.fileExists(atPath: path) else { throw GatehouseError(.notFound, "session \(record.id) has no recording file") }
            summary = follow ? nil : try RecordingSummary.read(path: path, bastion: bastion, expected: record)
            var headers = HTTPFields()
            headers[.contentType] = "application/x-asciicast"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    let decoder = RecordingDecoder { try bastion.recordingKey($0) }
                    guard let file = FileHandle(forReadingAtPath: path) else { return try await writer.finish(nil) }
                    defer { try? file.close() }
                    var idle = 0
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        let chunk = (try? file.read(upToCount: 1 << 16)) ?? Data()
                        var out = ByteBuffer()
                        if !chunk.isEmpty {
                            idle = 0
                            let lines: [RecordingDecoder.Line]
                            do {
                                lines = try decoder.feed(chunk)
                                if let id = decoder.preamble?.id, id != record.id {
                                    throw GatehouseError(.invalidInput, "the recording file belongs to another session")
                                }
                            } catch {
                                // Headers are sent: the failure becomes the stream's last line, a marker event.
                                let message = (error as? GatehouseError)?.message ?? "\(error)"
                                out.writeString(Asciicast.event(RecordingEvent(time: 0, kind: .marker, data: "gatehouse: \(message)")) + "\n")
                                try await writer.write(out)
                                break
                            }
                            for line in lines {
                                switch line {
                                case .header(let header):
                                    out.writeString(Asciicast.header(header, trailer: summary?.trailer, sealed: summary?.sealed ?? false) + "\n")
                                case .event(let event): out.writeString(Asciicast.event(event) + "\n")
                                case .trailer: break
                                }
                            }
                            if out.readableBytes > 0 { try await writer.write(out) }
                            continue
                        }
                        guard follow, !decoder.sealed else { break }
                        // A followed session that ended without sealing (a failed recording) stops too.
                        idle += 1
                        if idle % 20 == 0, let now = try? await bastion.session(id: record.id), now.endedAt != nil { break }
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    try await writer.finish(nil)
                })
        }
    }
}

extension SessionAdminRoutes {
    /// A whole recording as asciicast v2 text (for GraphQL), its digest checked; refused past `limit` bytes.
    static func asciicast(id: String, after: Int, bastion: BastionService, recordings: String, limit: Int) async throws -> String {
        let record = try await bastion.session(id: id)
        let path = (recordings as NSString).appendingPathComponent("\(record.id).\(RecordingFormat.fileExtension)")
        let summary = try RecordingSummary.read(path: path, bastion: bastion, expected: record)
        guard let file = FileHandle(forReadingAtPath: path) else { throw GatehouseError(.notFound, "session \(record.id) has no recording file") }
        defer { try? file.close() }
        let decoder = RecordingDecoder { try bastion.recordingKey($0) }
        var out = ""
        var seen = 0
        while let chunk = try? file.read(upToCount: 1 << 20), !chunk.isEmpty {
            for line in try decoder.feed(chunk) {
                switch line {
                case .header(let header): out += Asciicast.header(header, trailer: summary.trailer, sealed: summary.sealed) + "\n"
                case .event(let event):
                    seen += 1
                    if seen > after { out += Asciicast.event(event) + "\n" }
                case .trailer: break
                }
            }
            guard out.utf8.count <= limit else {
                throw GatehouseError(
                    .inputTooLarge,
                    "the recording of \(record.id) is larger than \(limit >> 20) MiB as asciicast; use `gatehouse sessions play --raw`")
            }
        }
        return out
    }
}

/// A first pass over a finished recording: it must match the digest the audit log recorded
/// when it was sealed, and every frame must open; its trailer goes into the asciicast header.
struct RecordingSummary {
    let trailer: RecordingTrailer?
    let sealed: Bool

    static func read(path: String, bastion: BastionService, expected: BastionSessionRecord) throws(GatehouseError) -> RecordingSummary {
        guard let file = FileHandle(forReadingAtPath: path) else { throw GatehouseError(.notFound, "cannot open the recording of \(expected.id)") }
        defer { try? file.close() }
        // The digest first: a changed file is named as such, whatever part of it was changed.
        if let sealedDigest = expected.recordingSHA256 {
            guard RecordingDigestCheck.fileDigest(path)?.sha256 == sealedDigest else {
                throw GatehouseError(
                    .invalidInput,
                    "the recording of \(expected.id) does not match the SHA-256 the audit log recorded when it was sealed (\(sealedDigest.prefix(16))…): it was changed"
                )
            }
        }
        let decoder = RecordingDecoder { try bastion.recordingKey($0) }
        var trailer: RecordingTrailer?
        while let chunk = try? file.read(upToCount: 1 << 20), !chunk.isEmpty {
            for case .trailer(let t) in try decoder.feed(chunk) { trailer = t }
        }
        guard decoder.preamble?.id == expected.id else {
            throw GatehouseError(.invalidInput, "the recording file of \(expected.id) belongs to another session: it was replaced")
        }
        return RecordingSummary(trailer: trailer, sealed: decoder.sealed)
    }
}
