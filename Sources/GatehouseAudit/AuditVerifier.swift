public import Foundation
public import GatehouseCore

/// One entry as read back for verification: its sequence number, its canonical bytes, and the
/// leaf hash recorded when it was appended (if the source keeps one).
public struct VerifiableEntry: Sendable {
    public let sequence: Int64
    public let canonical: [UInt8]
    public let recordedHash: TreeHash?

    public init(sequence: Int64, event: AuditEvent, recordedHash: TreeHash?) {
        self.init(sequence: sequence, canonical: CanonicalEntry.encode(sequence: sequence, event: event), recordedHash: recordedHash)
    }

    /// An entry exactly as exported: the canonical text is what gets hashed.
    public init(sequence: Int64, canonical: [UInt8], recordedHash: TreeHash?) {
        self.sequence = sequence
        self.canonical = canonical
        self.recordedHash = recordedHash
    }
}

/// The outcome of verifying a log: counts, the latest verified checkpoint, and the first fault.
public struct AuditVerification: Sendable {
    public var entries = 0
    public var checkpoints = 0
    public var latest: Checkpoint?
    public var fault: AuditFault?

    public var isValid: Bool { self.fault == nil }

    public init(fault: AuditFault? = nil) { self.fault = fault }
}

/// What is wrong, naming the first bad entry or the range it must lie in.
public enum AuditFault: Error, Sendable, Equatable, CustomStringConvertible {
    case sequenceBreak(position: Int, found: Int64)
    case entryAltered(sequence: Int64)
    case checkpointInvalid(size: Int?, reason: String)
    case rootMismatch(size: Int, firstSuspect: Int, lastSuspect: Int)
    case truncated(checkpointSize: Int, entries: Int)
    case behindTrustedCheckpoint(trustedSize: Int, entries: Int)
    case notInCheckpoint(sequence: Int64, size: Int)

    public var description: String {
        switch self {
        case .sequenceBreak(let position, let found):
            "entry \(position) is missing or out of order: found sequence \(found) where \(position) belongs"
        case .entryAltered(let sequence):
            "entry \(sequence) was altered: its content no longer matches the hash recorded when it was appended"
        case .checkpointInvalid(let size, let reason):
            "checkpoint\(size.map { " at size \($0)" } ?? ""): \(reason)"
        case .rootMismatch(let size, let first, let last):
            "entries do not match the signed checkpoint at size \(size): an entry from \(first) to \(last) was altered, removed, inserted or reordered"
        case .truncated(let size, let entries):
            "log truncated: a signed checkpoint covers \(size) entries but only \(entries) remain"
        case .behindTrustedCheckpoint(let size, let entries):
            "log rolled back: a trusted checkpoint covers \(size) entries but the log has \(entries)"
        case .notInCheckpoint(let sequence, let size):
            "entry \(sequence) is not in the tree signed by the checkpoint at size \(size) (altered, or its proof is wrong)"
        }
    }
}

/// Recomputes everything about an audit log from its entries and signed checkpoints.
/// Pure: the caller reads entries and notes from wherever (live store, bundle file).
public enum AuditVerifier {
    /// Opens every note, or names the first that does not verify (by the size it claims).
    static func open(_ notes: [String], verifier: NoteVerifier) throws(AuditFault) -> [Checkpoint] {
        var opened: [Checkpoint] = []
        for note in notes {
            do {
                opened.append(try Checkpoint.open(note, verifier: verifier))
            } catch {
                let size = note.split(separator: "\n").dropFirst().first.flatMap { Int($0) }
                throw .checkpointInvalid(size: size, reason: error.description)
            }
        }
        return opened
    }

    /// Verifies a partial export: every checkpoint's signature, and each entry's inclusion in
    /// the tree of the largest checkpoint through its audit path. Entries must increase.
    public static func verifyPartial(
        entries: [VerifiableEntry], proofs: [[TreeHash]], checkpoints notes: [String], verifier: NoteVerifier, since: Date? = nil
    ) -> AuditVerification {
        var result = AuditVerification()
        let opened: [Checkpoint]
        do { opened = try Self.open(notes, verifier: verifier) } catch { return AuditVerification(fault: error) }
        result.checkpoints = opened.count
        guard let latest = opened.max(by: { $0.size < $1.size }) else {
            result.fault = .checkpointInvalid(size: nil, reason: "a partial export needs a signed checkpoint")
            return result
        }
        result.latest = latest
        guard proofs.count == entries.count else {
            result.fault = .checkpointInvalid(size: latest.size, reason: "the export has \(entries.count) entries but \(proofs.count) proofs")
            return result
        }
        // The window must be complete: consecutive entries ending at the checkpoint, starting
        // at entry 1 or at the last entry before `since`. A partial export always carries at
        // least that boundary entry.
        guard let since else {
            result.fault = .checkpointInvalid(size: latest.size, reason: "a partial export must state the time its window starts")
            return result
        }
        guard !entries.isEmpty || latest.size == 0 else {
            result.fault = .truncated(checkpointSize: latest.size, entries: 0)
            return result
        }
        var previous = (entries.first?.sequence ?? 1) - 1
        if let first = entries.first, first.sequence > 1 {
            let time = ((try? JSONSerialization.jsonObject(with: Data(first.canonical))) as? [String: Any])?["time"] as? String
            guard let start = time.flatMap(CanonicalEntry.parseTimestamp), start < since else {
                result.fault = .sequenceBreak(position: Int(first.sequence - 1), found: first.sequence)
                return result
            }
        }
        for (entry, proof) in zip(entries, proofs) {
            guard entry.sequence == previous + 1 else {
                result.fault = .sequenceBreak(position: Int(previous + 1), found: entry.sequence)
                return result
            }
            previous = entry.sequence
            let leaf = Merkle.leafHash(entry.canonical)
            if let recorded = entry.recordedHash, recorded != leaf {
                result.fault = .entryAltered(sequence: entry.sequence)
                return result
            }
            guard Merkle.verifyInclusion(leaf: leaf, index: Int(entry.sequence - 1), size: latest.size, proof: proof, root: latest.root) else {
                result.fault = .notInCheckpoint(sequence: entry.sequence, size: latest.size)
                return result
            }
            result.entries += 1
        }
        if previous != Int64(latest.size) {
            result.fault = .truncated(checkpointSize: latest.size, entries: Int(previous))
        }
        return result
    }

    /// - Parameters:
    ///   - entries: every entry, in order, from sequence 1.
    ///   - checkpoints: signed notes in any order.
    ///   - verifier: the audit key.
    ///   - trusted: checkpoints the auditor saw earlier; the log must still contain them.
    public static func verify(
        entries: some Sequence<VerifiableEntry>, checkpoints notes: [String], verifier: NoteVerifier, trusted: [Checkpoint] = []
    ) -> AuditVerification {
        var result = AuditVerification()
        let opened: [Checkpoint]
        do { opened = try Self.open(notes, verifier: verifier) } catch { return AuditVerification(fault: error) }
        // A trusted checkpoint the log also carries is checked once.
        let extra = trusted.filter { t in !opened.contains { $0.size == t.size && $0.root == t.root } }
        let all = (opened + extra).sorted { $0.size < $1.size }
        var pending = all[...]
        var accumulator = MerkleAccumulator()
        var lastGoodSize = 0

        func checkPending() -> AuditFault? {
            // Every checkpoint checked here has the current size; suspects start after the last
            // size that was fully confirmed before it.
            let confirmedBefore = lastGoodSize
            while let next = pending.first, next.size == accumulator.size {
                pending = pending.dropFirst()
                guard next.root == accumulator.root else {
                    return .rootMismatch(size: next.size, firstSuspect: confirmedBefore + 1, lastSuspect: next.size)
                }
                lastGoodSize = next.size
                result.checkpoints += 1
                if result.latest.map({ $0.size <= next.size }) ?? true { result.latest = next }
            }
            return nil
        }

        if let fault = checkPending() {
            result.fault = fault
            return result
        }
        for entry in entries {
            let position = accumulator.size + 1
            guard entry.sequence == Int64(position) else {
                result.fault = .sequenceBreak(position: position, found: entry.sequence)
                return result
            }
            let leaf = Merkle.leafHash(entry.canonical)
            if let recorded = entry.recordedHash, recorded != leaf {
                result.fault = .entryAltered(sequence: entry.sequence)
                return result
            }
            accumulator.append(leaf)
            result.entries = accumulator.size
            if let fault = checkPending() {
                result.fault = fault
                return result
            }
        }
        if let beyond = pending.first {
            let trustedOnly = trusted.contains(beyond) && !opened.contains(beyond)
            result.fault =
                trustedOnly
                ? .behindTrustedCheckpoint(trustedSize: beyond.size, entries: accumulator.size)
                : .truncated(checkpointSize: beyond.size, entries: accumulator.size)
        }
        return result
    }
}
