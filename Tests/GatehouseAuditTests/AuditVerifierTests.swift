import Crypto
import Foundation
import GatehouseAudit
import GatehouseCore
import Testing

/// The tamper battery: each way of editing a log is detected and named.
@Suite("Audit verifier")
struct AuditVerifierTests {
    static let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: Array(repeating: 9, count: 32))
    static let verifier = NoteVerifier(name: "gatehouse.audit/t", publicKey: Array(key.publicKey.rawRepresentation))

    struct Log {
        var entries: [VerifiableEntry]
        var notes: [String]
    }

    /// 20 entries with checkpoints at 5, 10, 16 and 20.
    static func log(recordHashes: Bool = true) throws -> Log {
        var entries: [VerifiableEntry] = []
        var accumulator = MerkleAccumulator()
        var notes: [String] = []
        for i in 1...20 {
            let event = AuditEvent(
                code: .invitationCreated, time: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)), actor: "a", subject: "s\(i)",
                details: ["i": "\(i)"])
            let leaf = Merkle.leafHash(CanonicalEntry.encode(sequence: Int64(i), event: event))
            accumulator.append(leaf)
            entries.append(VerifiableEntry(sequence: Int64(i), event: event, recordedHash: recordHashes ? leaf : nil))
            if [5, 10, 16, 20].contains(i) {
                notes.append(
                    try Checkpoint(origin: "gatehouse.audit/t", size: i, root: accumulator.root, time: Date(timeIntervalSince1970: 1_800_000_100))
                        .signed(with: Self.key))
            }
        }
        return Log(entries: entries, notes: notes)
    }

    func verify(_ log: Log, trusted: [Checkpoint] = []) -> AuditVerification {
        AuditVerifier.verify(entries: log.entries, checkpoints: log.notes, verifier: Self.verifier, trusted: trusted)
    }

    static func edited(_ entry: VerifiableEntry, keepHash: Bool) -> VerifiableEntry {
        let text = String(decoding: entry.canonical, as: UTF8.self).replacingOccurrences(of: #""actor":"a""#, with: #""actor":"mallory""#)
        let hash = keepHash ? entry.recordedHash : Merkle.leafHash(Array(text.utf8))
        return VerifiableEntry(sequence: entry.sequence, canonical: Array(text.utf8), recordedHash: hash)
    }

    @Test func anIntactLogVerifies() throws {
        let result = self.verify(try Self.log())
        #expect(result.isValid)
        #expect(result.entries == 20)
        #expect(result.checkpoints == 4)
        #expect(result.latest?.size == 20)
    }

    @Test func oneChangedFieldIsNamed() throws {
        var log = try Self.log()
        log.entries[11] = Self.edited(log.entries[11], keepHash: true)
        #expect(self.verify(log).fault == .entryAltered(sequence: 12))
        // An attacker who also rewrites the recorded hash is caught by the signed checkpoint.
        var both = try Self.log()
        both.entries[11] = Self.edited(both.entries[11], keepHash: false)
        #expect(self.verify(both).fault == .rootMismatch(size: 16, firstSuspect: 11, lastSuspect: 16))
    }

    @Test func deletionSwapAndTruncationAreNamed() throws {
        var deleted = try Self.log()
        deleted.entries.remove(at: 6)
        #expect(self.verify(deleted).fault == .sequenceBreak(position: 7, found: 8))

        var swapped = try Self.log()
        swapped.entries.swapAt(2, 3)
        #expect(self.verify(swapped).fault == .sequenceBreak(position: 3, found: 4))

        // Swapping two rows' contents but keeping their sequence numbers changes both hashes
        // (the sequence number is part of the canonical entry).
        var relabeled = try Self.log()
        let (a, b) = (relabeled.entries[2], relabeled.entries[3])
        func renumbered(_ entry: VerifiableEntry, to sequence: Int64) -> [UInt8] {
            Array(
                String(decoding: entry.canonical, as: UTF8.self).replacingOccurrences(of: "\"seq\":\(entry.sequence),", with: "\"seq\":\(sequence),")
                    .utf8)
        }
        relabeled.entries[2] = VerifiableEntry(sequence: 3, canonical: renumbered(b, to: 3), recordedHash: b.recordedHash)
        relabeled.entries[3] = VerifiableEntry(sequence: 4, canonical: renumbered(a, to: 4), recordedHash: a.recordedHash)
        #expect(self.verify(relabeled).fault == .entryAltered(sequence: 3))

        var truncated = try Self.log()
        truncated.entries.removeLast(3)
        #expect(self.verify(truncated).fault == .truncated(checkpointSize: 20, entries: 17))
    }

    @Test func replacedAndForgedCheckpointsAreNamed() throws {
        var replaced = try Self.log()
        let attacker = Curve25519.Signing.PrivateKey()
        replaced.notes[1] = try Checkpoint(origin: "gatehouse.audit/t", size: 10, root: Array(repeating: 0, count: 32), time: Date()).signed(
            with: attacker)
        #expect(self.verify(replaced).fault == .checkpointInvalid(size: 10, reason: "checkpoint carries no signature from gatehouse.audit/t"))

        var forged = try Self.log()
        forged.notes[2] = forged.notes[2].replacingOccurrences(of: "\n16\n", with: "\n15\n")
        #expect(self.verify(forged).fault == .checkpointInvalid(size: 15, reason: "checkpoint signature does not verify"))
    }

    @Test func rollbackToAnOlderConsistentPrefixNeedsAWitness() throws {
        let full = try Self.log()
        let latest = try Checkpoint.open(full.notes[3], verifier: Self.verifier)
        var rolledBack = full
        rolledBack.entries.removeLast(4)
        rolledBack.notes.removeLast()
        // The shortened log is internally consistent...
        #expect(self.verify(rolledBack).isValid)
        // ...but not to an auditor who kept the checkpoint they saw before.
        #expect(self.verify(rolledBack, trusted: [latest]).fault == .behindTrustedCheckpoint(trustedSize: 20, entries: 16))
        // And a trusted checkpoint that disagrees with the log is a mismatch.
        let other = Checkpoint(origin: latest.origin, size: 16, root: Array(repeating: 1, count: 32), time: latest.time)
        #expect(self.verify(full, trusted: [other]).fault == .rootMismatch(size: 16, firstSuspect: 11, lastSuspect: 16))
    }

    @Test func faultsReadAsSentences() {
        #expect(
            AuditFault.entryAltered(sequence: 12).description
                == "entry 12 was altered: its content no longer matches the hash recorded when it was appended")
        #expect(
            AuditFault.truncated(checkpointSize: 20, entries: 17).description
                == "log truncated: a signed checkpoint covers 20 entries but only 17 remain")
    }
}
