public import Foundation
public import GatehouseAudit
public import GatehouseCore

/// The audit log's read side and its signatures: publishing checkpoints, proofs and exports.
/// Appending happens inside ``Store/commit(_:)``, with the state change it describes.
public struct AuditLog: Sendable {
    let environment: ServiceEnvironment
    let signingKey: SigningKey
    /// The log's name, in every checkpoint: `gatehouse.audit/<installation id>`.
    public let origin: String
    /// Called with every checkpoint this process signs (the server keeps a copy outside the store).
    let onPublish: @Sendable (CheckpointRecord) throws -> Void
    /// The last checkpoint kept outside the store, if any: new checkpoints must extend it.
    let trustedHead: @Sendable () -> String?
    /// Publishing is serialized: two checkpoints are never signed at once.
    let publishGate = AsyncGate()
    /// The tree this process has verified so far (and its roots at checkpoint sizes), so each
    /// publish re-hashes only the entries appended since the last one instead of the whole log.
    let verified = LockedBox<VerifiedTree?>(nil)

    struct RootNotKept: Error {}

    struct VerifiedTree: Sendable {
        var accumulator = MerkleAccumulator()
        /// Roots at the sizes of checkpoints met along the way (ours and other replicas').
        var roots: [Int: TreeHash] = [0: MerkleAccumulator().root]
        var lastLeaf: TreeHash? = nil
        /// When this tree was last built from entry 1: every ten minutes it is rebuilt, so an
        /// entry altered after it was verified is caught within that time, not only at restart.
        var fullyVerifiedAt: Date? = nil
    }

    static let fullVerificationInterval: TimeInterval = 600

    public init(
        environment: ServiceEnvironment, keys: KeyRing,
        trustedHead: @escaping @Sendable () -> String? = { nil },
        onPublish: @escaping @Sendable (CheckpointRecord) throws -> Void = { _ in }
    ) async throws {
        let key = keys[.auditSigning]
        guard key.algorithm == .ed25519 else {
            throw GatehouseError(.keyMaterialCorrupted, "the audit signing key is not an Ed25519 key")
        }
        let installation = try await environment.store.read { tx in try await tx.metaValue(.installationID) } ?? "unknown"
        self.environment = environment
        self.signingKey = key
        self.origin = "gatehouse.audit/\(installation)"
        self.onPublish = onPublish
        self.trustedHead = trustedHead
    }

    /// Entries and checkpoints from one read transaction, so they describe the same log.
    /// Checkpoints are read first: each is committed after the entries it covers, so the
    /// entries read next include them even where a store shows each statement the latest
    /// committed state (PostgreSQL's READ COMMITTED).
    public func snapshot() async throws -> (entries: [AuditRecord], checkpoints: [CheckpointRecord]) {
        try await self.environment.store.read { tx in
            let checkpoints = try await tx.checkpoints()
            var all: [AuditRecord] = []
            while true {
                let page = try await tx.auditRecords(after: all.last?.sequence ?? 0, limit: 5000)
                all += page
                if page.count < 5000 { break }
            }
            return (all, checkpoints)
        }
    }

    /// The key an auditor verifies checkpoints with.
    public var verifier: NoteVerifier {
        NoteVerifier(name: self.origin, publicKey: self.signingKey.publicKeyBytes)
    }

    /// Every entry from sequence 1, oldest first, read in pages.
    public func entries() async throws -> [AuditRecord] {
        try await self.environment.store.read { tx in
            var all: [AuditRecord] = []
            while true {
                let page = try await tx.auditRecords(after: all.last?.sequence ?? 0, limit: 5000)
                all += page
                if page.count < 5000 { return all }
            }
        }
    }

    /// Up to `limit` entries after `sequence`.
    public func records(after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        try await self.environment.store.read { tx in try await tx.auditRecords(after: sequence, limit: limit) }
    }

    public func checkpoints() async throws -> [CheckpointRecord] {
        try await self.environment.store.read { tx in try await tx.checkpoints() }
    }

    /// Signs and stores a checkpoint over every entry so far, unless the latest checkpoint
    /// already covers them (then returns that one). Before signing, every entry not yet verified
    /// by this process is re-hashed from its content (all of them on the first publish after a
    /// start), and the new tree must extend the newest stored checkpoint and the checkpoint kept
    /// outside the store: the server never signs over an altered entry, a rewritten history or a
    /// database rolled back to an older state. An entry altered after this process verified it
    /// is caught by the next start and by `gatehouse audit verify`, which always reads it all.
    @discardableResult
    public func publishCheckpoint() async throws -> CheckpointRecord? {
        try await self.publishGate.withExclusiveAccess { try await self.publishSerialized() }
    }

    private func publishSerialized() async throws -> CheckpointRecord? {
        do {
            return try await self.publishVerified()
        } catch is RootNotKept {
            // A checkpoint (another replica's) lands at a size this process passed before it
            // existed: verify from entry 1 once more, which keeps that root too.
            self.verified.value = nil
        } catch {
            self.verified.value = nil  // start over from entry 1 next time
            throw error
        }
        do {
            return try await self.publishVerified()
        } catch is RootNotKept {
            self.verified.value = nil
            throw GatehouseError(.storeFailure, "refusing to sign a checkpoint: a stored checkpoint does not match any prefix of the log")
        } catch {
            self.verified.value = nil
            throw error
        }
    }

    /// Extends the verified tree with the entries appended since the last publish (all of them
    /// the first time in a process), checks it against the anchors, and signs it.
    private func publishVerified() async throws -> CheckpointRecord? {
        // Checkpoints first: each is committed after the entries it covers, so the entries read
        // next include them. Entries are append-only, so reading them in pages (each its own
        // short transaction, never holding the store for the whole log) sees a prefix at least.
        let existing = try await self.checkpoints()
        let now = self.environment.time.now()
        var tree = self.verified.value ?? VerifiedTree()
        if let at = tree.fullyVerifiedAt, now.timeIntervalSince(at) >= Self.fullVerificationInterval { tree = VerifiedTree() }
        // The store must still hold the last entry this process verified, unchanged; if it was
        // rolled back or rewritten, verify from entry 1 (and the anchors below then refuse).
        if tree.accumulator.size > 0 {
            let last = try await self.records(after: Int64(tree.accumulator.size - 1), limit: 1).first
            if last?.sequence != Int64(tree.accumulator.size) || last?.entryHash != tree.lastLeaf { tree = VerifiedTree() }
        }
        var anchors: [(what: String, checkpoint: Checkpoint)] = []
        do {
            if let latest = existing.last {
                anchors.append(("the newest stored checkpoint", try Checkpoint.open(latest.note, verifier: self.verifier)))
            }
            if let head = self.trustedHead() {
                anchors.append(("the checkpoint kept outside the database", try Checkpoint.open(head, verifier: self.verifier)))
            }
        } catch {
            throw GatehouseError(.storeFailure, "refusing to sign a checkpoint: a previous checkpoint does not verify (\(error))")
        }
        // Roots are kept at every size something may later be compared against.
        let checkpointSizes = Set(existing.map { Int($0.size) }).union(anchors.map(\.checkpoint.size))
        if tree.accumulator.size == 0 { tree.fullyVerifiedAt = now }
        while true {
            let after = Int64(tree.accumulator.size)
            let page = try await self.records(after: after, limit: 5000)
            for record in page {
                let leaf = Merkle.leafHash(CanonicalEntry.encode(sequence: record.sequence, event: record.event))
                guard record.sequence == Int64(tree.accumulator.size + 1), leaf == record.entryHash else {
                    throw GatehouseError(
                        .storeFailure,
                        "refusing to sign a checkpoint: audit entry \(tree.accumulator.size + 1) is missing or altered; run `gatehouse audit verify`"
                    )
                }
                tree.accumulator.append(leaf)
                tree.lastLeaf = leaf
                if checkpointSizes.contains(tree.accumulator.size) { tree.roots[tree.accumulator.size] = tree.accumulator.root }
            }
            if page.count < 5000 { break }
        }
        for anchor in anchors {
            guard anchor.checkpoint.size <= tree.accumulator.size else {
                throw GatehouseError(
                    .storeFailure,
                    "refusing to sign a checkpoint: \(anchor.what) covers \(anchor.checkpoint.size) entries but the log has \(tree.accumulator.size) (rolled back?)"
                )
            }
            guard let root = tree.roots[anchor.checkpoint.size] else { throw RootNotKept() }
            guard root == anchor.checkpoint.root else {
                throw GatehouseError(
                    .storeFailure,
                    "refusing to sign a checkpoint: the log no longer matches \(anchor.what) at size \(anchor.checkpoint.size) (rewritten?)"
                )
            }
        }
        self.verified.value = tree
        if let latest = existing.last, latest.size == Int64(tree.accumulator.size) { return latest }
        guard tree.accumulator.size > 0 else { return nil }
        let checkpoint = Checkpoint(origin: self.origin, size: tree.accumulator.size, root: tree.accumulator.root, time: self.environment.time.now())
        var record = CheckpointRecord(
            size: Int64(checkpoint.size), root: checkpoint.root, createdAt: checkpoint.time, note: try checkpoint.signed(with: self.signingKey)
        )
        if try await !self.environment.store.recordCheckpoint(record) {
            // Another replica signed this size first: it must have signed the same tree.
            guard let stored = try await self.checkpoints().first(where: { $0.size == record.size }), stored.root == record.root else {
                throw GatehouseError(.storeFailure, "two checkpoints of size \(record.size) disagree: the log has forked")
            }
            record = stored
        }
        tree.roots[checkpoint.size] = checkpoint.root
        self.verified.value = tree
        try self.onPublish(record)
        return record
    }

    /// The entries appended at or after `since`, each with its audit path to a checkpoint
    /// signed now over the whole log: enough to prove them offline without the rest.
    public func bundle(since: Date) async throws -> AuditBundle {
        guard let checkpoint = try await self.publishCheckpoint() else {
            return AuditBundle(verifier: self.verifier.description, checkpoints: [], since: CanonicalEntry.timestamp(since), entries: [], proofs: [])
        }
        let all = Array(try await self.entries().prefix(Int(checkpoint.size)))
        let levels = MerkleLevels(leaves: all.map(\.entryHash))
        // Every entry from the first one at or after `since` to the checkpoint, plus the one
        // before it: the verifier can then see the window is complete at both ends.
        let first = all.firstIndex { $0.event.time >= since } ?? all.count
        let chosen = all[max(0, first - 1)...]
        return AuditBundle(
            verifier: self.verifier.description, checkpoints: [checkpoint.note], since: CanonicalEntry.timestamp(since),
            entries: chosen.map {
                AuditBundle.Entry(
                    seq: $0.sequence, entry: String(decoding: CanonicalEntry.encode(sequence: $0.sequence, event: $0.event), as: UTF8.self),
                    hash: Hex.encode($0.entryHash)
                )
            },
            proofs: chosen.map { levels.inclusionProof(index: Int($0.sequence - 1)).map { Hex.encode($0) } }
        )
    }

    /// Everything needed to verify the log offline. With `signFirst` (an export), under a
    /// checkpoint signed now: the bundle holds every entry up to that checkpoint and none after
    /// it, so no entry in it is unsigned. Without (`audit verify`), the log exactly as stored,
    /// so a verifier sees a rollback or an edit rather than a refusal to sign over it.
    public func bundle(signFirst: Bool = false) async throws -> AuditBundle {
        let signed = signFirst ? try await self.publishCheckpoint() : nil
        var (entries, checkpoints) = try await self.snapshot()
        if let signed {
            // Entries appended after the checkpoint belong to the next export.
            entries = entries.filter { $0.sequence <= signed.size }
            checkpoints = checkpoints.filter { $0.size <= signed.size }
        }
        return AuditBundle(
            verifier: self.verifier.description, checkpoints: checkpoints.map(\.note),
            entries: entries.map {
                AuditBundle.Entry(
                    seq: $0.sequence, entry: String(decoding: CanonicalEntry.encode(sequence: $0.sequence, event: $0.event), as: UTF8.self),
                    hash: Hex.encode($0.entryHash)
                )
            }
        )
    }

    /// An inclusion proof for entry `sequence` against the checkpoint of `size` (default: latest).
    public func inclusionProof(sequence: Int64, size: Int64?) async throws -> InclusionProof {
        let (entries, checkpoint) = try await self.prefix(size: size)
        guard sequence >= 1, sequence <= checkpoint.size else {
            throw GatehouseError(.notFound, "entry \(sequence) is not covered by the checkpoint of size \(checkpoint.size)")
        }
        let proof = MerkleLevels(leaves: entries).inclusionProof(index: Int(sequence - 1))
        return InclusionProof(
            sequence: sequence, leafHash: entries[Int(sequence - 1)], size: checkpoint.size, root: checkpoint.root, proof: proof,
            checkpoint: checkpoint.note
        )
    }

    /// A consistency proof from the checkpoint of `oldSize` to the one of `size` (default: latest).
    public func consistencyProof(oldSize: Int64, size: Int64?) async throws -> ConsistencyProof {
        let (leaves, newer) = try await self.prefix(size: size)
        guard let older = try await self.checkpoints().first(where: { $0.size == oldSize }), oldSize <= newer.size else {
            throw GatehouseError(.notFound, "no checkpoint of size \(oldSize) at or below \(newer.size)")
        }
        return ConsistencyProof(
            oldSize: oldSize, newSize: newer.size, oldRoot: older.root, newRoot: newer.root,
            proof: Merkle.consistencyProof(oldSize: Int(oldSize), leaves: leaves[...]), oldCheckpoint: older.note, newCheckpoint: newer.note
        )
    }

    private func prefix(size: Int64?) async throws -> ([TreeHash], CheckpointRecord) {
        let checkpoints = try await self.checkpoints()
        let chosen = size.map { wanted in checkpoints.first { $0.size == wanted } } ?? checkpoints.last
        guard let checkpoint = chosen else {
            throw GatehouseError(.notFound, size.map { "no checkpoint of size \($0)" } ?? "no checkpoint has been published yet")
        }
        let leaves = try await self.entries().prefix(Int(checkpoint.size)).map(\.entryHash)
        guard leaves.count == Int(checkpoint.size) else {
            throw GatehouseError(.storeFailure, "the log has fewer entries than its checkpoint of size \(checkpoint.size)")
        }
        return (leaves, checkpoint)
    }
}

/// Proof that one entry is in the tree a checkpoint signs.
public struct InclusionProof: Codable, Sendable {
    public let sequence: Int64
    public let leafHash: [UInt8]
    public let size: Int64
    public let root: [UInt8]
    public let proof: [[UInt8]]
    public let checkpoint: String

    public var verifies: Bool {
        Merkle.verifyInclusion(leaf: self.leafHash, index: Int(self.sequence - 1), size: Int(self.size), proof: self.proof, root: self.root)
    }
}

/// Proof that an older checkpoint's tree is a prefix of a newer one's.
public struct ConsistencyProof: Codable, Sendable {
    public let oldSize: Int64
    public let newSize: Int64
    public let oldRoot: [UInt8]
    public let newRoot: [UInt8]
    public let proof: [[UInt8]]
    public let oldCheckpoint: String
    public let newCheckpoint: String

    public var verifies: Bool {
        Merkle.verifyConsistency(
            oldSize: Int(self.oldSize), newSize: Int(self.newSize), oldRoot: self.oldRoot, newRoot: self.newRoot, proof: self.proof)
    }
}
