import Crypto
import Foundation
import GatehouseCore
import GatehouseRecording
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one session's recording file: the writer's frames go straight to the file (the
/// caller flushes at least every second), and a running SHA-256 of every byte written becomes
/// the digest the audit log records when the file is sealed. Confined to the session's event
/// loop. Any write error (a full disk, a quota) is thrown to the relay, which ends the session:
/// there is no unrecorded session.
final class SessionRecorder {
    let path: String
    private let writer: RecordingWriter
    private var fd: Int32
    private var hasher = SHA256()
    private(set) var size: Int64 = 0
    /// Frames are written when this much text is pending, or by the periodic flush.
    static let flushThreshold = 256 * 1024

    /// Creates the file (it must not exist) and writes the preamble and the header frame.
    init(directory: String, started: BastionStartInfo) throws {
        self.path = (directory as NSString).appendingPathComponent("\(started.header.session).\(RecordingFormat.fileExtension)")
        self.writer = try RecordingWriter(id: started.header.session, dataKey: started.dataKey, sealedKey: started.sealedKey, header: started.header)
        self.fd = open(self.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard self.fd >= 0 else { throw GatehouseError(.internal, "cannot create \(self.path): \(String(cString: strerror(errno)))") }
        do {
            try self.write(self.writer.start())
        } catch {
            close(self.fd)
            self.fd = -1
            throw error
        }
    }

    deinit { if self.fd >= 0 { close(self.fd) } }

    /// Terminal sessions are recorded as text; sessions without a terminal summarize binary
    /// chunks (file transfers) instead of writing them out as text.
    var binary = RecordingWriter.BinaryHandling.asText

    func record(_ kind: RecordingEvent.Kind, _ buffer: ByteBuffer, at time: Double) throws {
        buffer.withUnsafeReadableBytes { raw in
            self.writer.record(kind, buffer: raw.assumingMemoryBound(to: UInt8.self), at: time, binary: self.binary)
        }
        if self.writer.pendingBytes >= Self.flushThreshold { try self.write(self.writer.flush()) }
    }

    func flush() throws {
        try self.write(self.writer.flush())
    }

    /// Writes the final frame (into the page cache, on the session's loop) and hands the file
    /// over for syncing, which may block on a slow disk and so belongs on a thread pool.
    func seal(_ trailer: RecordingTrailer) throws -> Sealing {
        try self.write(self.writer.seal(trailer))
        defer { self.fd = -1 }
        return Sealing(fd: self.fd, path: self.path, sha256: Hex.encode(self.hasher.finalize()), size: self.size)
    }

    /// A recording whose every byte is written: `sync` makes it durable and closes it, then
    /// gives its SHA-256 (hex) and size.
    struct Sealing: Sendable {
        let fd: Int32
        let path: String
        let sha256: String
        let size: Int64

        func sync() throws -> (sha256: String, size: Int64) {
            defer { close(self.fd) }
            guard fsync(self.fd) == 0 else { throw GatehouseError(.internal, "cannot sync \(self.path): \(String(cString: strerror(errno)))") }
            return (self.sha256, self.size)
        }
    }

    /// Closes an unsealed file after a failure (it stays on disk, visibly unsealed).
    func abandon() {
        if self.fd >= 0 { close(self.fd) }
        self.fd = -1
    }

    private func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        guard self.fd >= 0 else { throw GatehouseError(.internal, "the recording is closed") }
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = Glibc.write(self.fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw GatehouseError(.internal, "cannot write \(self.path): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        self.hasher.update(data: bytes)
        self.size += Int64(bytes.count)
    }
}

/// What a recording is opened with.
struct BastionStartInfo {
    let header: RecordingHeader
    let dataKey: [UInt8]
    let sealedKey: [UInt8]
}
