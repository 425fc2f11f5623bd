/// An inclusion or consistency proof as it travels between server and CLI (JSON, hex hashes).
public struct ProofDocument: Codable, Sendable {
    public let kind: String
    public let entry: Int64?
    public let leafHash: String?
    public let oldSize: Int64?
    public let oldRoot: String?
    public let size: Int64
    public let root: String
    public let proof: [String]
    public let checkpoint: String
    public let oldCheckpoint: String?

    public init(
        kind: String, entry: Int64?, leafHash: String?, oldSize: Int64?, oldRoot: String?,
        size: Int64, root: String, proof: [String], checkpoint: String, oldCheckpoint: String?
    ) {
        self.kind = kind
        self.entry = entry
        self.leafHash = leafHash
        self.oldSize = oldSize
        self.oldRoot = oldRoot
        self.size = size
        self.root = root
        self.proof = proof
        self.checkpoint = checkpoint
        self.oldCheckpoint = oldCheckpoint
    }

    enum CodingKeys: String, CodingKey {
        case kind, entry, size, root, proof, checkpoint
        case leafHash = "leaf_hash"
        case oldSize = "old_size"
        case oldRoot = "old_root"
        case oldCheckpoint = "old_checkpoint"
    }
}
