import ArgumentParser
import Foundation
import GatehouseAudit
import GatehouseClient
import GatehouseCore
import GatehouseRecording
import GatehouseStorage

/// `gatehouse audit ...`: read, prove and verify the tamper-evident audit log.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read, prove and verify the tamper-evident audit log.",
        subcommands: [Verify.self, Checkpoint.self, Prove.self, Export.self, Tail.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the whole log and check every signed checkpoint.",
            discussion: """
                Without --bundle, fetches the log from the running server and also checks it still
                contains the checkpoint last written to DATA_DIR/audit-head. With --bundle and --key,
                verifies an exported bundle with no server at all. Exits 1 and names the first fault.
                """
        )

        @OptionGroup var options: DataDirOption
        @Option(help: "An exported bundle to verify offline (needs --key).") var bundle: String?
        @Option(help: "The audit verifier key, NAME+KEYID+BASE64 (from `gatehouse audit checkpoint`).") var key: String?
        @Option(help: "A signed checkpoint you trust (a file); the log must still contain it.") var checkpoint: [String] = []
        @Option(help: "The directory of SSH session recordings to check against the log (default: the data dir's, when verifying the live log).")
        var recordings: String?

        func run() async throws {
            do {
                let bundle: AuditBundle
                let verifier: NoteVerifier
                var trustedNotes = try self.checkpoint.map { path in
                    guard let data = FileManager.default.contents(atPath: path), data.count <= 8192 else {
                        throw GatehouseError(.invalidInput, "cannot read checkpoint file \(path)")
                    }
                    return String(decoding: data, as: UTF8.self)
                }
                // Read the head before fetching the log: a checkpoint signed in between is then
                // inside the fetched log, never ahead of it.
                let head = DataDirectory.auditHeadPath(self.options.dataDir)
                let headNote = self.bundle == nil ? FileManager.default.contents(atPath: head).map { String(decoding: $0, as: UTF8.self) } : nil
                if let path = self.bundle {
                    guard let keyText = self.key else {
                        throw GatehouseError(.invalidInput, "--bundle needs --key: never trust the key inside the bundle")
                    }
                    verifier = try NoteVerifier(parsing: keyText)
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw GatehouseError(.invalidInput, "cannot read bundle \(path)")
                    }
                    bundle = try AuditBundle.decode(data)
                } else {
                    bundle = try await AdminClient(dataDir: self.options.dataDir).auditBundle()
                    verifier = try self.key.map { try NoteVerifier(parsing: $0) } ?? NoteVerifier(parsing: bundle.verifier)
                    if let headNote { trustedNotes.append(headNote) }
                }
                var trusted: [GatehouseAudit.Checkpoint] = []
                for note in trustedNotes {
                    trusted.append(try GatehouseAudit.Checkpoint.open(note, verifier: verifier))
                }
                let result: AuditVerification
                if let proofs = bundle.proofs {
                    guard trusted.isEmpty else {
                        throw GatehouseError(
                            .invalidInput, "--checkpoint needs a full export: a partial one cannot show it extends an older checkpoint")
                    }
                    let paths = proofs.map { $0.map { Hex.decode($0) ?? [] } }
                    result = AuditVerifier.verifyPartial(
                        entries: bundle.verifiableEntries, proofs: paths, checkpoints: bundle.checkpoints, verifier: verifier,
                        since: bundle.since.flatMap(CanonicalEntry.parseTimestamp)
                    )
                    if let fault = result.fault { throw GatehouseError(.invalidInput, "audit export FAILED verification: \(fault)") }
                    let first = bundle.entries.first?.seq ?? 0
                    print(
                        "partial audit export verified: \(result.entries) entries proven in the signed checkpoint at size \(result.latest?.size ?? 0)"
                            + ": every entry from \(first) on, starting with the last entry before \(bundle.since ?? "?") (check that this is the window you asked for)"
                    )
                    return
                }
                result = AuditVerifier.verify(
                    entries: bundle.verifiableEntries, checkpoints: bundle.checkpoints, verifier: verifier, trusted: trusted)
                if let fault = result.fault {
                    throw GatehouseError(.invalidInput, "audit log FAILED verification: \(fault)")
                }
                let latest = result.latest.map { " up to checkpoint \($0.size) of \(CanonicalEntry.timestamp($0.time))" } ?? ""
                let uncovered = result.entries - (result.latest?.size ?? 0)
                print(
                    "audit log verified: \(result.entries) entries, \(result.checkpoints) signed checkpoints\(latest)"
                        + (uncovered > 0 ? " (\(uncovered) newer entries not yet under a checkpoint)" : ""))
                // Session recordings: each sealed one must still have the digest the log recorded.
                if let directory = self.recordings ?? (self.bundle == nil ? DataDirectory.recordingsPath(self.options.dataDir) : nil) {
                    let sealed = RecordingDigestCheck.sealedRecordings(in: bundle.entries.map(\.entry))
                    let problems = RecordingDigestCheck.problems(
                        sealed, directory: directory, digest: { RecordingDigestCheck.fileDigest($0)?.sha256 })
                    guard problems.isEmpty else {
                        throw GatehouseError(.invalidInput, "session recordings FAILED verification:\n  " + problems.joined(separator: "\n  "))
                    }
                    if !sealed.isEmpty { print("session recordings verified: \(sealed.count) sealed recordings match the digests in the log") }
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the latest signed checkpoint and the key that verifies it.")
        @OptionGroup var options: DataDirOption

        func run() async throws {
            do {
                let reply = try await AdminClient(dataDir: self.options.dataDir).auditCheckpoint()
                print(reply.note, terminator: "")
                FileHandle.standardError.write(Data("verifier key: \(reply.verifier)\n".utf8))
            } catch {
                throw fail(error)
            }
        }
    }

    struct Prove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove an entry is in a checkpoint, or that one checkpoint extends another.",
            discussion: "The proof is verified here before it is printed (as JSON)."
        )
        @OptionGroup var options: DataDirOption
        @Option(help: "Entry sequence number to prove.") var entry: Int64?
        @Option(help: "Older checkpoint size for a consistency proof.") var consistency: Int64?
        @Option(name: .customLong("checkpoint"), help: "Checkpoint size to prove against (default: latest).") var size: Int64?

        func run() async throws {
            do {
                let client = AdminClient(dataDir: self.options.dataDir)
                let reply: ProofDocument
                let verified: Bool
                let hashes = { (texts: [String]) in texts.map { Array(Hex.decode($0) ?? []) } }
                switch (self.entry, self.consistency) {
                case (let entry?, nil):
                    reply = try await client.auditInclusionProof(entry: entry, size: self.size)
                    verified = Merkle.verifyInclusion(
                        leaf: Hex.decode(reply.leafHash ?? "") ?? [], index: Int(entry - 1), size: Int(reply.size),
                        proof: hashes(reply.proof), root: Hex.decode(reply.root) ?? []
                    )
                case (nil, let old?):
                    reply = try await client.auditConsistencyProof(oldSize: old, size: self.size)
                    verified = Merkle.verifyConsistency(
                        oldSize: Int(old), newSize: Int(reply.size), oldRoot: Hex.decode(reply.oldRoot ?? "") ?? [],
                        newRoot: Hex.decode(reply.root) ?? [], proof: hashes(reply.proof)
                    )
                default:
                    throw GatehouseError(.invalidInput, "give exactly one of --entry N or --consistency OLD_SIZE")
                }
                guard verified else { throw GatehouseError(.invalidInput, "the server's proof does not verify") }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(reply), as: UTF8.self))
                FileHandle.standardError.write(Data("proof verified\n".utf8))
            } catch {
                throw fail(error)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write entries and checkpoints to a bundle for offline verification.",
            discussion:
                "Without --since: every entry and checkpoint. With --since: the entries from that time on, each with its proof against a checkpoint signed now."
        )
        @OptionGroup var options: DataDirOption
        @Option(help: "Output file.") var out: String
        @Option(help: "Only entries at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).") var since: String?

        func run() async throws {
            do {
                var since: Date? = nil
                if let text = self.since {
                    let formatter = ISO8601DateFormatter()
                    formatter.formatOptions = [.withInternetDateTime]
                    let fractional = ISO8601DateFormatter()
                    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                    guard let date = formatter.date(from: text) ?? fractional.date(from: text) else {
                        throw GatehouseError(.invalidInput, "--since must be an RFC 3339 time like 2026-11-01T00:00:00Z")
                    }
                    since = date
                }
                let bundle = try await AdminClient(dataDir: self.options.dataDir).auditBundle(since: since, signFirst: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                try encoder.encode(bundle).write(to: URL(fileURLWithPath: self.out), options: .atomic)
                print("wrote \(bundle.entries.count) entries and \(bundle.checkpoints.count) checkpoints to \(self.out)")
                print("verify with: gatehouse audit verify --bundle \(self.out) --key '\(bundle.verifier)'")
            } catch {
                throw fail(error)
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the newest entries, one canonical JSON object per line (NDJSON).",
            discussion: "With --follow, keeps printing entries as they are appended; resume with --after SEQ."
        )
        @OptionGroup var options: DataDirOption
        @Option(name: .shortAndLong, help: "How many entries (1-10000).") var n: Int = 20
        @Flag(name: .shortAndLong, help: "Keep printing new entries as they are appended.") var follow = false
        @Option(help: "With --follow: start after this sequence number (default: after the last -n entries).") var after: Int64?
        @Option(help: "Only entries with this event code (e.g. invitation.created).") var code: String?
        @Option(help: "Only entries by this actor (e.g. admin-socket).") var actor: String?

        func run() async throws {
            do {
                let client = AdminClient(dataDir: self.options.dataDir)
                var last: Int64 = 0
                if self.after == nil {
                    for line in try await client.auditTail(limit: self.n, code: self.code, actor: self.actor) {
                        Self.emit(line)
                        last = Self.sequence(of: line) ?? last
                    }
                }
                guard self.follow else { return }
                if last == 0 {
                    // Nothing matched the filter yet: follow from the current end of the log.
                    last = try await client.auditTail(limit: 1).last.flatMap(Self.sequence(of:)) ?? 0
                }
                try await client.followAudit(after: self.after ?? last, code: self.code, actor: self.actor) { line in
                    Self.emit(line)
                }
            } catch {
                throw fail(error)
            }
        }

        /// Unbuffered, so a follower piped into another program sees each entry at once.
        static func emit(_ line: String) {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }

        static func sequence(of line: String) -> Int64? {
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]).flatMap { ($0["seq"] as? NSNumber)?.int64Value }
        }
    }
}
