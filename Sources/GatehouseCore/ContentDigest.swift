import Crypto

/// SHA-256 of stored documents (policy versions, recordings), as lower-case hex: what the audit
/// log records so that a document can later be shown to be the one that was applied.
public enum ContentDigest {
    public static func sha256Hex(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }
}
