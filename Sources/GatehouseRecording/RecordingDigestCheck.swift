import Crypto
public import Foundation
import GatehouseCore

/// What `gatehouse audit verify` checks of session recordings: every recording the audit log
/// says was sealed still has the SHA-256 it was sealed with. The log is verified first, so the
/// digests themselves are vouched for by its signed checkpoints.
public enum RecordingDigestCheck {
    public struct Sealed: Sendable, Equatable {
        public let session: String
        public let sha256: String
        public init(session: String, sha256: String) {
            self.session = session
            self.sha256 = sha256
        }
    }

    /// The `ssh.recording_sealed` entries, and the `ssh.recording_interrupted` ones that sealed a
    /// file as found, among canonical audit entries (JSON text).
    public static func sealedRecordings(in entries: [String]) -> [Sealed] {
        entries.compactMap { text in
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                ["ssh.recording_sealed", "ssh.recording_interrupted"].contains(object["code"] as? String),
                let subject = object["subject"] as? String, subject.hasPrefix("session:"),
                let sha = (object["details"] as? [String: Any])?["sha256"] as? String
            else { return nil }
            return Sealed(session: String(subject.dropFirst("session:".count)), sha256: sha)
        }
    }

    /// Problems, one line each (empty when every recording matches). `digest` reads a file's
    /// SHA-256 (nil when it cannot be read).
    public static func problems(_ sealed: [Sealed], directory: String, digest: (String) -> String?) -> [String] {
        sealed.compactMap { s in
            guard RecordingFormat.isValidID(s.session) else {
                return "the audit log names a malformed session id \(s.session.prefix(64).debugDescription)"
            }
            let path = (directory as NSString).appendingPathComponent("\(s.session).\(RecordingFormat.fileExtension)")
            guard let actual = digest(path) else { return "the recording of session \(s.session) is missing (\(path))" }
            guard actual == s.sha256 else {
                return "the recording of session \(s.session) was changed: its SHA-256 is \(actual), the audit log sealed \(s.sha256)"
            }
            return nil
        }
    }

    /// A file's SHA-256 (hex) and size, streamed; nil when it cannot be read.
    public static func fileDigest(_ path: String) -> (sha256: String, bytes: Int64)? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while true {
            // nil or empty at the end of the file; a read error is no digest.
            let chunk: Data?
            do { chunk = try file.read(upToCount: 1 << 20) } catch { return nil }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return (Hex.encode(hasher.finalize()), size)
    }
}
