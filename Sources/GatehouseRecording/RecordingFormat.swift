public import Crypto
public import Foundation
public import GatehouseCore

/// The sealed recording file (`.ghrec`), version 1. Pinned by a golden test; never changes meaning.
///
/// ```
/// preamble: "GHREC01\n" | u16 id length | id (UTF-8) | u16 sealed-key length | sealed data key
/// frame*:   u32 length | kind (1 data, 2 final) | AES-256-GCM ciphertext | tag (16)
/// ```
///
/// The plaintext of the frames, concatenated, is one raw-deflate stream of newline-terminated
/// JSON lines: the ``RecordingHeader`` object, then one asciicast v2 event array per line, and
/// in the final frame the ``RecordingTrailer`` object. Each frame ends with a deflate sync flush,
/// so any prefix of whole frames inflates. Frame `n` is sealed with nonce `0^32 || n (u64)` and
/// associated data `SHA-256(preamble) || n (u64) || kind`: frames cannot be reordered, dropped,
/// moved to another recording or given another kind without the tag failing. The data key is
/// random per recording and stored sealed under the root key (``KeyPurpose/sessionRecording``).
public enum RecordingFormat {
    public static let magic: [UInt8] = Array("GHREC01\n".utf8)
    public static let fileExtension = "ghrec"
    /// Plaintext bytes per frame at most (before compression); writers flush before this.
    public static let maxFramePlaintext = 1 << 20
    static let tagLength = 16
    static let maxFrameLength = 1 + maxFramePlaintext + 1024 + tagLength
    static let dataFrame: UInt8 = 1
    static let finalFrame: UInt8 = 2

    static func preamble(id: String, sealedKey: [UInt8]) -> [UInt8] {
        var out = Self.magic
        out.appendU16(UInt16(id.utf8.count))
        out += Array(id.utf8)
        out.appendU16(UInt16(sealedKey.count))
        out += sealedKey
        return out
    }

    static func nonce(_ counter: UInt64) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 4)
        n.appendU64(counter)
        return n
    }

    static func associatedData(preambleDigest: [UInt8], counter: UInt64, kind: UInt8) -> [UInt8] {
        var aad = preambleDigest
        aad.appendU64(counter)
        aad.append(kind)
        return aad
    }

    /// A recording identifier: what session IDs look like (lowercase UUIDs). Checked before an
    /// ID becomes a file name, so no path can be smuggled through one.
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count >= 8 && id.utf8.count <= 64
            && id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
    }
}

extension [UInt8] {
    mutating func appendU16(_ v: UInt16) { self += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func appendU32(_ v: UInt32) { self += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    mutating func appendU64(_ v: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { self.append(UInt8((v >> UInt64(shift)) & 0xFF)) } }
}
