import Crypto
import Foundation
import GatehouseAudit
import GatehouseCore
import Testing

@Suite("Checkpoints (C2SP signed note)")
struct CheckpointTests {
    static let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: Array(repeating: 7, count: 32))
    static var verifier: NoteVerifier { NoteVerifier(name: "gatehouse.audit/test", publicKey: Array(key.publicKey.rawRepresentation)) }
    static let checkpoint = Checkpoint(
        origin: "gatehouse.audit/test", size: 8, root: Array(repeating: 0xAB, count: 32), time: Date(timeIntervalSince1970: 1_800_000_000.123)
    )

    @Test func keyIDFollowsTheSignedNoteRule() throws {
        // SHA-256("gatehouse.audit/test" || 0x0A || 0x01 || 00 01 .. 1f)[0:4], computed independently.
        #expect(Hex.encode(NoteVerifier(name: "gatehouse.audit/test", publicKey: Array(0..<32)).keyID) == "8baf95c5")
        let text = Self.verifier.description
        #expect(try NoteVerifier(parsing: text) == Self.verifier)
        // Base64 keys may contain '+': only the first two separate the fields.
        for seed in 0..<64 {
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: Array(repeating: UInt8(seed), count: 32))
            let v = NoteVerifier(name: "n", publicKey: Array(key.publicKey.rawRepresentation))
            #expect(try NoteVerifier(parsing: v.description) == v)
        }
        #expect(throws: CheckpointError.self) { try NoteVerifier(parsing: text.replacingOccurrences(of: "+", with: "-")) }
        #expect(throws: CheckpointError.self) {
            try NoteVerifier(parsing: "name+00000000+" + Data([0x01] + Array(repeating: 1, count: 32)).base64EncodedString())
        }
    }

    @Test func signsAndOpens() throws {
        let note = try Self.checkpoint.signed(with: Self.key)
        #expect(
            note.hasPrefix(
                "gatehouse.audit/test\n8\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\ntime 2027-01-15T08:00:00.123Z\n\n\u{2014} gatehouse.audit/test "
            ))
        #expect(try Checkpoint.open(note, verifier: Self.verifier) == Self.checkpoint)
    }

    @Test func refusesForgeriesAndMalformedNotes() throws {
        let note = try Self.checkpoint.signed(with: Self.key)
        // Another size under the same signature.
        #expect(throws: CheckpointError.badSignature) {
            try Checkpoint.open(note.replacingOccurrences(of: "\n8\n", with: "\n9\n"), verifier: Self.verifier)
        }
        // Signed by someone else under the same name.
        let forger = Curve25519.Signing.PrivateKey()
        #expect(throws: CheckpointError.noSignatureFromKey("gatehouse.audit/test")) {
            try Checkpoint.open(try Self.checkpoint.signed(with: forger), verifier: Self.verifier)
        }
        for bad in [
            "", "x\n", "a\n1\nroot\n\n", "gatehouse.audit/test\n08\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\ntime 2027-01-15T08:00:00.123Z\n\n",
            note.replacingOccurrences(of: "\u{2014}", with: "-"), String(note.dropLast()), String(repeating: "a\n", count: 5000),
        ] {
            #expect(throws: CheckpointError.self) { try Checkpoint.open(bad, verifier: Self.verifier) }
        }
    }
}

@Suite("Canonical entries")
struct CanonicalEntryTests {
    @Test func goldenBytes() {
        let event = AuditEvent(
            code: .invitationCreated, time: Date(timeIntervalSince1970: 1_800_000_000.5), actor: "admin-socket",
            subject: "invitation:1", outcome: .allowed, reason: nil, requestID: "req-7", sourceAddress: nil,
            details: ["username": "alice", "role": "sre", "a\"b": "line\nbreak\u{01}é"]
        )
        let text = String(decoding: CanonicalEntry.encode(sequence: 42, event: event), as: UTF8.self)
        #expect(
            text
                == #"{"actor":"admin-socket","code":"invitation.created","details":{"a\"b":"line\nbreak\u0001é","role":"sre","username":"alice"},"outcome":"allowed","request_id":"req-7","seq":42,"subject":"invitation:1","time":"2027-01-15T08:00:00.500Z","v":1}"#
        )
        // It is JSON that an independent parser reads back to the same values.
        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((object?["details"] as? [String: String])?["a\"b"] == "line\nbreak\u{01}é")
        #expect(Hex.encode(Merkle.leafHash(CanonicalEntry.encode(sequence: 42, event: event))).count == 64)
    }

    @Test func timestampsRoundTripAndMatchFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in [0.0, 1.5, 951_782_400.999, 1_800_000_000.123, 4_102_444_799.999, -1.0, -86_400.25] {
            let date = Date(timeIntervalSince1970: seconds)
            let text = CanonicalEntry.timestamp(date)
            #expect(text == formatter.string(from: Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000)), "\(seconds)")
            #expect(CanonicalEntry.parseTimestamp(text).map(CanonicalEntry.timestamp) == text)
        }
        // Every stored millisecond value maps back to itself, far beyond 2038.
        var ms: Int64 = 2_200_000_000_000
        for _ in 0..<20_000 {
            ms += 7_919
            #expect(CanonicalEntry.milliseconds(Date(timeIntervalSince1970: Double(ms) / 1000)) == ms)
        }
        for bad in ["", "2026-13-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z", "2026-01-01 00:00:00.000Z", "2026-01-01T00:00:00Z"] {
            #expect(CanonicalEntry.parseTimestamp(bad) == nil, "\(bad)")
        }
    }
}
