public import Foundation
import GatehouseCore

/// A self-contained export of the audit log for offline verification: every entry in its
/// canonical form with the hash recorded at append time, every signed checkpoint, and the
/// verifier key the exporter claims. An auditor verifies it with a key obtained separately
/// (`gatehouse audit verify --bundle FILE --key KEY`), never with the key inside.
public struct AuditBundle: Codable, Sendable {
    public static let format = "gatehouse-audit-bundle/v1"

    public struct Entry: Codable, Sendable {
        public let seq: Int64
        /// The canonical JSON text of the entry: the exact bytes hashed into the tree.
        public let entry: String
        /// Hex leaf hash recorded when the entry was appended.
        public let hash: String

        public init(seq: Int64, entry: String, hash: String) {
            self.seq = seq
            self.entry = entry
            self.hash = hash
        }
    }

    public let format: String
    public let verifier: String
    public let checkpoints: [String]
    public let entries: [Entry]
    /// Present in a partial export (`--since`): for each entry, its audit path (hex hashes)
    /// to the tree signed by the last checkpoint. A full export has none: it is recomputed.
    public let proofs: [[String]]?
    /// For a partial export: the window's start. Its entries run without gaps from the last
    /// entry before this time (if any) to the checkpoint.
    public let since: String?

    public init(verifier: String, checkpoints: [String], since: String? = nil, entries: [Entry], proofs: [[String]]? = nil) {
        self.format = Self.format
        self.verifier = verifier
        self.checkpoints = checkpoints
        self.since = since
        self.entries = entries
        self.proofs = proofs
    }

    public var isPartial: Bool { self.proofs != nil }

    /// Reads a bundle, refusing other formats and more than `maxBytes`.
    public static func decode(_ data: Data, maxBytes: Int = 1 << 30) throws(CheckpointError) -> AuditBundle {
        guard data.count <= maxBytes else { throw .malformed("bundle is larger than \(maxBytes) bytes") }
        let bundle: AuditBundle
        do {
            bundle = try JSONDecoder().decode(AuditBundle.self, from: data)
        } catch {
            throw .malformed("bundle is not a gatehouse audit bundle (JSON with format, verifier, checkpoints, entries)")
        }
        guard bundle.format == Self.format else { throw .malformed("bundle format '\(bundle.format.prefix(64))' is not \(Self.format)") }
        return bundle
    }

    /// The entries as the verifier reads them. An entry whose text does not carry its own
    /// sequence number is given sequence 0, which the verifier reports as out of order.
    public var verifiableEntries: [VerifiableEntry] {
        self.entries.map { item in
            let bytes = Array(item.entry.utf8)
            let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
            let embedded = (object?["seq"] as? NSNumber)?.int64Value
            let version = (object?["v"] as? NSNumber)?.intValue
            let sequence = embedded == item.seq && version == CanonicalEntry.version ? item.seq : 0
            return VerifiableEntry(sequence: sequence, canonical: bytes, recordedHash: Hex.decode(item.hash).flatMap { $0.count == 32 ? $0 : nil })
        }
    }
}
