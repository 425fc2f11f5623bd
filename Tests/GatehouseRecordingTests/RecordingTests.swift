import Crypto
import Foundation
import GatehouseCore
import Testing

@testable import GatehouseRecording

@Suite("Session recordings")
struct RecordingTests {
    static let key: [UInt8] = Array(repeating: 7, count: 32)
    static let sealed: [UInt8] = Array("sealed-key-blob".utf8)
    static let header = RecordingHeader(
        session: "3f0e2b7a-0000-4000-8000-000000000001", user: "alice", login: "root", host: "web-1", source: "127.0.0.1",
        mode: "shell", command: nil, term: "xterm-256color", width: 80, height: 24, started: 1_790_000_000)
    static let trailer = RecordingTrailer(ended: 1_790_000_012.5, exitStatus: 0, exitSignal: nil, endedBy: nil, bytesIn: 5, bytesOut: 22)

    static func decoder(key: [UInt8] = Self.key, limit: Int = 1 << 30) -> RecordingDecoder {
        RecordingDecoder(limit: limit) { preamble in
            guard preamble.sealedKey == Self.sealed else { throw GatehouseError(.keyMaterialCorrupted, "wrong sealed key") }
            return key
        }
    }

    /// A small session: the file bytes and where each frame starts.
    static func sample() throws -> (bytes: [UInt8], frames: [Int]) {
        let w = try RecordingWriter(id: Self.header.session, dataKey: Self.key, sealedKey: Self.sealed, header: Self.header)
        var bytes = w.start()
        var frames = [8 + 2 + 36 + 2 + Self.sealed.count, bytes.count]  // the preamble ends, the header's frame ends
        w.record(.output, bytes: Array("$ ".utf8), at: 0.1)
        w.record(.input, bytes: Array("ls\r".utf8), at: 1.25)
        bytes += w.flush()
        frames.append(bytes.count)
        w.record(.output, bytes: Array("ls\r\nfile \"a\"\u{1b}[0m\r\n".utf8), at: 1.3)
        w.record(.resize, bytes: Array("100x40".utf8), at: 2)
        bytes += w.seal(Self.trailer)
        return (bytes, frames)
    }

    static func lines(_ bytes: [UInt8]) throws -> ([RecordingDecoder.Line], Bool) {
        let d = Self.decoder()
        let lines = try d.feed(bytes)
        return (lines, d.sealed)
    }

    @Test func theDigestCheckCoversSealedAndInterruptedRecordings() throws {
        let digest = String(repeating: "ab", count: 32)
        let entries = [
            #"{"code":"ssh.recording_sealed","subject":"session:s-sealed-01","details":{"sha256":"\#(digest)"}}"#,
            #"{"code":"ssh.recording_interrupted","subject":"session:s-cut-short-01","details":{"sha256":"\#(digest)"}}"#,
            // Interrupted with the file on another server's disk: nothing to check.
            #"{"code":"ssh.recording_interrupted","subject":"session:s-elsewhere-01","details":{}}"#,
            #"{"code":"ssh.recording_failed","subject":"session:s-failed-01","details":{"sha256":"\#(digest)"}}"#,
        ]
        #expect(RecordingDigestCheck.sealedRecordings(in: entries).map(\.session) == ["s-sealed-01", "s-cut-short-01"])
        // fileDigest streams the whole file and reports its size; nil for a file that is not there.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)").path
        let bytes = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let found = try #require(RecordingDigestCheck.fileDigest(path))
        #expect(found.sha256 == Hex.encode(SHA256.hash(data: bytes)) && found.bytes == Int64(bytes.count))
        #expect(RecordingDigestCheck.fileDigest(path + ".missing") == nil)
    }

    @Test func roundTripKeepsEveryEventAndTheTrailer() throws {
        let (lines, sealed) = try Self.lines(try Self.sample().bytes)
        #expect(sealed)
        #expect(
            lines == [
                .header(Self.header),
                .event(.init(time: 0.1, kind: .output, data: "$ ")),
                .event(.init(time: 1.25, kind: .input, data: "ls\r")),
                .event(.init(time: 1.3, kind: .output, data: "ls\r\nfile \"a\"\u{1b}[0m\r\n")),
                .event(.init(time: 2, kind: .resize, data: "100x40")),
                .trailer(Self.trailer),
            ])
    }

    @Test func theFileBeginsWithThePinnedPreambleAndHidesTheText() throws {
        let bytes = try Self.sample().bytes
        var expected = Array("GHREC01\n".utf8) + [0, 36] + Array(Self.header.session.utf8) + [0, UInt8(Self.sealed.count)] + Self.sealed
        #expect(Array(bytes.prefix(expected.count)) == expected)
        expected = Array(bytes.dropFirst(expected.count))
        #expect(String(decoding: bytes, as: UTF8.self).contains("alice") == false)  // encrypted, header included
        #expect(String(decoding: bytes, as: UTF8.self).contains("ls") == false)
    }

    @Test func feedingByteByByteGivesTheSameLines() throws {
        let bytes = try Self.sample().bytes
        let d = Self.decoder()
        var lines: [RecordingDecoder.Line] = []
        for b in bytes { lines += try d.feed([b]) }
        #expect(lines == (try Self.lines(bytes)).0)
        #expect(d.sealed && d.unreadBytes == 0)
    }

    @Test func aCharacterSplitAcrossReadsStaysWhole() throws {
        let w = try RecordingWriter(id: Self.header.session, dataKey: Self.key, sealedKey: Self.sealed, header: Self.header)
        var bytes = w.start()
        let text = Array("grüße 🚀".utf8)
        w.record(.output, bytes: Array(text[0..<3]), at: 0)  // "gr" + first byte of ü
        w.record(.output, bytes: Array(text[3..<9]), at: 0.5)  // rest of ü, "ße ", first byte of 🚀
        w.record(.output, bytes: Array(text[9...]), at: 1)
        w.record(.output, bytes: [0xFF, 0x41], at: 1.5)  // invalid UTF-8 becomes U+FFFD (and its exact bytes), never a crash
        bytes += w.seal(Self.trailer)
        let events = try Self.lines(bytes).0.compactMap { if case .event(let e) = $0 { e.data } else { nil } }
        #expect(events == ["gr", "üße ", "🚀", "\u{FFFD}A", RecordingWriter.exactOutputPrefix + "/0E="])
    }

    @Test func controlCharactersAreEscapedAsJSON() throws {
        var out: [UInt8] = []
        RecordingWriter.appendJSONString("a\u{0}b\u{1b}\"\\\n\t", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #""a\u0000b\u001b\"\\\n\t""#)
        #expect(
            RecordingWriter.formatTime(0) == "0.000000" && RecordingWriter.formatTime(12.5) == "12.500000"
                && RecordingWriter.formatTime(-1) == "0.000000")
    }

    @Test func everyEditedByteIsDetected() throws {
        let bytes = try Self.sample().bytes
        // The preamble's id and sealed key are bound through the digest in every frame's associated data.
        for i in stride(from: 8, to: bytes.count, by: 1) {
            var edited = bytes
            edited[i] ^= 0x01
            let d = Self.decoder()
            #expect(throws: GatehouseError.self, "byte \(i)") {
                _ = try d.feed(edited)
                if !d.sealed { throw GatehouseError(.invalidInput, "not sealed") }
            }
        }
    }

    @Test func dropsReordersAndTruncationsAreDetected() throws {
        let (bytes, frames) = try Self.sample()
        let preamble = Array(bytes[0..<frames[0]])
        #expect(frames.count == 3)
        let f0 = Array(bytes[frames[0]..<frames[1]])
        let f1 = Array(bytes[frames[1]..<frames[2]])
        let f2 = Array(bytes[frames[2]...])
        #expect(throws: GatehouseError.self) { _ = try Self.lines(preamble + f0 + f2) }  // a frame dropped
        #expect(throws: GatehouseError.self) { _ = try Self.lines(preamble + f1 + f0 + f2) }  // reordered
        #expect(throws: GatehouseError.self) { _ = try Self.lines(preamble + f0 + f1 + f2 + f2) }  // data after the end
        // Cut short: the whole frames read, and the recording says it is not sealed.
        let (lines, sealed) = try Self.lines(preamble + f0 + f1 + f2.prefix(10))
        #expect(!sealed && lines.count == 3)  // the header and the two events of the second frame
        // Another recording's frame under this preamble.
        let other = try RecordingWriter(id: "3f0e2b7a-0000-4000-8000-000000000002", dataKey: Self.key, sealedKey: Self.sealed, header: Self.header)
        let otherStart = other.start()
        let otherFrame = Array(otherStart[frames[0]...])
        #expect(try Self.lines(preamble + f0).0.count == 1)
        #expect(throws: GatehouseError.self) { _ = try Self.lines(preamble + otherFrame) }
    }

    @Test func theWrongKeyAndHostileFilesAreRefusedWithClearErrors() throws {
        let bytes = try Self.sample().bytes
        let wrong = Self.decoder(key: Array(repeating: 8, count: 32))
        #expect { _ = try wrong.feed(bytes) } throws: { ($0 as? GatehouseError)?.message.contains("does not authenticate") == true }
        for hostile: [UInt8] in [
            Array("not a recording at all".utf8), Array("GHREC02\n".utf8) + [0, 1], Array("GHREC01\n".utf8) + [0xFF, 0xFF],
            Array("GHREC01\n".utf8) + [0, 8] + Array("../../x/".utf8) + [0, 1, 1],
            Array(bytes.prefix(62)) + [0x7F, 0xFF, 0xFF, 0xFF, 1],
        ] {
            #expect(throws: GatehouseError.self) { _ = try Self.decoder().feed(hostile) }
        }
        // Random bytes after a valid preamble: refused, never a crash.
        var generator = SystemRandomNumberGenerator()
        let preamble = Array(bytes.prefix(8 + 2 + 36 + 2 + Self.sealed.count))
        for _ in 0..<200 {
            let junk = (0..<Int.random(in: 4...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let d = Self.decoder()
            _ = try? d.feed(preamble + junk)
            #expect(!d.sealed)
        }
    }

    @Test func aDecompressionBombStopsAtTheLimit() throws {
        let w = try RecordingWriter(id: Self.header.session, dataKey: Self.key, sealedKey: Self.sealed, header: Self.header)
        var bytes = w.start()
        for i in 0..<64 { w.record(.output, bytes: Array(repeating: 0x41, count: 1 << 16), at: Double(i)) }
        bytes += w.seal(Self.trailer)
        #expect(bytes.count < 64 * 1024)  // 4 MiB of output compresses well
        #expect { _ = try Self.decoder(limit: 1 << 20).feed(bytes) } throws: { ($0 as? GatehouseError)?.code == .inputTooLarge }
        #expect(try Self.decoder(limit: 8 << 20).feed(bytes).count == 66)
    }

    @Test func asciicastCarriesTheSessionInItsHeader() throws {
        let (lines, sealed) = try Self.lines(try Self.sample().bytes)
        let events = lines.compactMap { if case .event(let e) = $0 { e } else { nil } }
        let text = Asciicast.render(header: Self.header, events: events, trailer: Self.trailer, sealed: sealed)
        let rows = text.split(separator: "\n")
        #expect(rows.count == 5)
        let head = try JSONSerialization.jsonObject(with: Data(rows[0].utf8)) as! [String: Any]
        #expect(head["version"] as? Int == 2 && head["width"] as? Int == 80 && head["height"] as? Int == 24)
        #expect(head["duration"] as? Double == 12.5 && head["timestamp"] as? Int == 1_790_000_000)
        let g = head["gatehouse"] as! [String: Any]
        #expect(
            g["user"] as? String == "alice" && g["login"] as? String == "root" && g["host"] as? String == "web-1" && g["exit_status"] as? Int == 0)
        #expect(rows[2] == #"[1.250000,"i","ls\r"]"#)
        #expect(RecordingFormat.isValidID("../etc") == false && RecordingFormat.isValidID(Self.header.session))
    }
}

@Suite("Session recordings: binary streams")
struct RecordingBinaryTests {
    @Test func binaryOutputOfATransferIsSummarizedAndInputIsAlwaysKeptWhole() throws {
        let w = try RecordingWriter(
            id: RecordingTests.header.session, dataKey: RecordingTests.key, sealedKey: RecordingTests.sealed, header: RecordingTests.header)
        var bytes = w.start()
        var chunk: [UInt8] = [0xFF, 0x00, 0xC3]
        chunk += Array("rm -rf /tmp/evidence".utf8) + [0x80, 0x01] + Array("short".utf8) + [0xFE]
        w.record(.output, bytes: chunk, at: 1, binary: .summarize)
        w.record(.output, bytes: Array("plain text stays text\n".utf8), at: 2, binary: .summarize)
        w.record(.output, bytes: [0xFF, 0x41], at: 3, binary: .asText)
        // The review's evasion: a command in runs shorter than eight characters with one stray
        // byte, which the shell still runs. Input is never summarized, in any mode.
        let evasion = Array("cat\t/etc/s\\\nhadow #".utf8) + [0xFF, 0x0A]
        w.record(.input, bytes: evasion, at: 4, binary: .summarize)
        w.record(.input, bytes: [0x01, 0xFE], at: 5, binary: .asText)
        // Without a terminal: a short chunk is text and exact bytes; a bulk one is summarized.
        w.record(.output, bytes: Array("root:x:".utf8) + [0xFF], at: 6, binary: .summarizeBulk)
        let bulk = [UInt8](repeating: 0xFF, count: 5000) + Array("hidden-in-bulk".utf8)
        w.record(.output, bytes: bulk, at: 7, binary: .summarizeBulk)
        bytes += w.seal(RecordingTests.trailer)
        let events = try RecordingTests.lines(bytes).0.compactMap { if case .event(let e) = $0 { e } else { nil } }
        #expect(
            events == [
                .init(time: 1, kind: .marker, data: "binary output, \(chunk.count) bytes; text in it: rm -rf /tmp/evidence"),
                .init(time: 2, kind: .output, data: "plain text stays text\n"),
                .init(time: 3, kind: .output, data: "\u{FFFD}A"),
                .init(time: 3, kind: .marker, data: RecordingWriter.exactOutputPrefix + "/0E="),
                .init(time: 4, kind: .input, data: "cat\t/etc/s\\\nhadow #\u{FFFD}\n"),
                .init(time: 4, kind: .marker, data: RecordingWriter.exactInputPrefix + Data(evasion).base64EncodedString()),
                .init(time: 5, kind: .input, data: "\u{01}\u{FFFD}"),
                .init(time: 5, kind: .marker, data: RecordingWriter.exactInputPrefix + "Af4="),
                .init(time: 6, kind: .output, data: "root:x:\u{FFFD}"),
                .init(time: 6, kind: .marker, data: RecordingWriter.exactOutputPrefix + Data(Array("root:x:".utf8) + [0xFF]).base64EncodedString()),
                .init(time: 7, kind: .marker, data: "binary output, 5014 bytes; text in it: hidden-in-bulk"),
            ])
    }

    @Test func bulkUploadsAreKeptExactlyAndReadBack() throws {
        // Frames that are mostly exact bytes are Huffman-coded only; the stream still inflates,
        // and text frames after them are compressed as before.
        var generator = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 3, 4, 5, 63, 64, 65, 1000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var ours: [UInt8] = []
            bytes.withUnsafeBufferPointer { RecordingWriter.base64($0, to: &ours) }
            #expect(String(decoding: ours, as: UTF8.self) == Data(bytes).base64EncodedString(), "length \(n)")
        }
        let w = try RecordingWriter(
            id: RecordingTests.header.session, dataKey: RecordingTests.key, sealedKey: RecordingTests.sealed, header: RecordingTests.header)
        var file = w.start()
        var uploads: [[UInt8]] = []
        for i in 0..<4 {
            // Ends in a newline: a chunk ending inside a UTF-8 sequence carries its tail into the next.
            let chunk = [0xFF] + (0..<32_768).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0x0A]
            uploads.append(chunk)
            w.record(.input, bytes: chunk, at: Double(i), binary: .summarizeBulk)
            file += w.flush()
        }
        w.record(.output, bytes: Array("after the upload\n".utf8), at: 5, binary: .summarizeBulk)
        file += w.seal(RecordingTests.trailer)
        let events = try RecordingTests.lines(file).0.compactMap { if case .event(let e) = $0 { e } else { nil } }
        let exact = events.filter { $0.data.hasPrefix(RecordingWriter.exactInputPrefix) }.map {
            [UInt8](Data(base64Encoded: String($0.data.dropFirst(RecordingWriter.exactInputPrefix.count)))!)
        }
        #expect(exact.count == uploads.count && exact == uploads)
        #expect(events.last == .init(time: 5, kind: .output, data: "after the upload\n"))
    }

    @Test func utf8ValidationAndPrintableRuns() {
        func valid(_ b: [UInt8]) -> Bool { b.withUnsafeBufferPointer { RecordingWriter.isValidUTF8($0) } }
        func runs(_ b: [UInt8]) -> [String] { b.withUnsafeBufferPointer { RecordingWriter.printableRuns($0, minimum: 8) } }
        #expect(valid(Array("plain ascii, longer than eight bytes".utf8)))
        #expect(valid(Array("grüße 🚀 and more ascii after".utf8)))
        #expect(!valid(Array("ascii first, then".utf8) + [0xC3, 0x28]))
        #expect(runs([0, 0x41, 0x42] + Array("12345678".utf8) + [0xFF] + Array("abcdefgh".utf8)) == ["AB12345678", "abcdefgh"])
        // Against a byte-by-byte reference, on random bytes with text planted at every offset.
        func reference(_ b: [UInt8]) -> [String] {
            var out: [String] = []
            var run: [UInt8] = []
            for c in b + [0] {
                if c >= 0x20 && c < 0x7F {
                    run.append(c)
                } else {
                    if run.count >= 8 { out.append(String(decoding: run, as: UTF8.self)) }
                    run = []
                }
            }
            return out
        }
        // A byte of 0xA0 or more next to a control character once made a word look printable.
        #expect(runs([0xFF, 0x1F, 0x41, 0x42] + Array("planted!".utf8) + [0]) == ["ABplanted!"])
        #expect(runs([0x41, 0x42, 0x43, 0xFF, 0x1F, 0x20, 0x20, 0x20, 0]) == [])
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var b = (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let at = b.isEmpty ? 0 : Int.random(in: 0...b.count, using: &generator)
            b.insert(contentsOf: Array("planted-\(round)-text".utf8).prefix(Int.random(in: 0...20, using: &generator)), at: at)
            #expect(runs(b) == reference(b), "\(b)")
        }
    }
}
