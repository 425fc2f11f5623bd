public import Crypto
public import Foundation
public import GatehouseCore

/// Turns a session's events into the bytes of a sealed recording file. No I/O and no clock: the
/// caller appends what ``start()``, ``flush()`` and ``seal(_:)`` return to the file, and passes
/// event times in. Not thread-safe: one writer belongs to one session.
public final class RecordingWriter {
    private let key: SymmetricKey
    private let preamble: [UInt8]
    private let preambleDigest: [UInt8]
    private let deflater = Deflater()
    private var counter: UInt64 = 0
    private var pending: [UInt8] = []
    private var started = false
    private var sealed = false
    /// An incomplete UTF-8 sequence at the end of the last chunk of each direction, kept for the next.
    private var carry: [RecordingEvent.Kind: [UInt8]] = [:]

    /// - Parameters:
    ///   - dataKey: 32 random bytes, this recording's own key.
    ///   - sealedKey: the data key sealed under the root key, stored in the preamble.
    public init(id: String, dataKey: [UInt8], sealedKey: [UInt8], header: RecordingHeader) throws(GatehouseError) {
        guard RecordingFormat.isValidID(id), dataKey.count == 32, !sealedKey.isEmpty, sealedKey.count <= 1024 else {
            throw GatehouseError(.invalidInput, "a recording needs a valid id and a 32-byte key")
        }
        self.key = SymmetricKey(data: dataKey)
        self.preamble = RecordingFormat.preamble(id: id, sealedKey: sealedKey)
        self.preambleDigest = Array(SHA256.hash(data: self.preamble))
        self.pending = Self.line(header)
    }

    /// Bytes buffered and not yet in a frame.
    public var pendingBytes: Int { self.pending.count }

    /// The preamble and the first frame, which holds the header: written before the session starts.
    public func start() -> [UInt8] {
        precondition(!self.started)
        self.started = true
        return self.preamble + self.flush()
    }

    /// Records terminal bytes (output or input) or a resize/marker text at `time` seconds into the session.
    ///
    /// Input is always recorded whole, whatever its encoding: a chunk that is not UTF-8 becomes
    /// a marker holding its exact bytes in base64, preceded (up to 4 KiB, the size of anything
    /// typed) by an input event with its text, U+FFFD where a byte is not UTF-8, so every command
    /// stays readable. The client chooses chunk boundaries, so nothing typed may depend on them
    /// to be seen.
    ///
    /// With `binary: .summarize` (the output of a file transfer: scp, rsync), an output chunk
    /// that is not UTF-8 is recorded as a marker with its size and every run of 8 or more
    /// printable ASCII characters in it, instead of as lossy text. Everything else is text.
    public func record(_ kind: RecordingEvent.Kind, bytes: [UInt8], at time: Double, binary: BinaryHandling = .asText) {
        bytes.withUnsafeBufferPointer { self.record(kind, buffer: $0, at: time, binary: binary) }
    }

    /// The same, from memory the caller owns for the duration of the call (no copy is made of
    /// a chunk that is summarized).
    public func record(_ kind: RecordingEvent.Kind, buffer: UnsafeBufferPointer<UInt8>, at time: Double, binary: BinaryHandling = .asText) {
        if let carried = self.carry.removeValue(forKey: kind), !carried.isEmpty {
            (carried + Array(buffer)).withUnsafeBufferPointer { self.recordWhole(kind, $0, at: time, binary: binary) }
        } else {
            self.recordWhole(kind, buffer, at: time, binary: binary)
        }
    }

    private func recordWhole(_ kind: RecordingEvent.Kind, _ whole: UnsafeBufferPointer<UInt8>, at time: Double, binary: BinaryHandling) {
        var data = whole
        if kind == .output || kind == .input {
            let cut = Self.incompleteTail(whole)
            if cut > 0 {
                self.carry[kind] = Array(whole.suffix(cut))
                data = UnsafeBufferPointer(rebasing: whole.prefix(whole.count - cut))
            }
        }
        guard !data.isEmpty else { return }
        precondition(!self.sealed)
        let valid = Self.isValidUTF8(data)
        let small = data.count <= Self.textualInputLimit
        if !valid, kind == .output, binary == .summarize || (binary == .summarizeBulk && !small) {
            let runs = Self.printableRuns(data, minimum: 8)
            let summary = "binary output, \(data.count) bytes" + (runs.isEmpty ? "" : "; text in it: " + runs.joined(separator: " | "))
            self.append(RecordingEvent(time: time, kind: .marker, data: summary))
            return
        }
        if !valid, kind == .input || small {
            // Typed input and short output come in small chunks: their text too, so a reader sees
            // the command or what it printed. A bulk upload's chunks are kept as their exact bytes alone.
            if small {
                self.append(RecordingEvent(time: time, kind: kind, data: String(decoding: data, as: UTF8.self)))
            }
            self.appendExact(kind, data, at: time)
            return
        }
        self.pending += Array("[\(Self.formatTime(time)),\"\(kind.rawValue)\",".utf8)
        if valid {
            Self.escape(data, to: &self.pending)
        } else {
            Self.appendJSONString(String(decoding: data, as: UTF8.self), to: &self.pending)
        }
        self.pending.append(0x5D)
        self.pending.append(0x0A)
    }

    /// What to do with output bytes that are not UTF-8 (input is always kept whole). Whatever
    /// the mode, a chunk of up to 4 KiB (what a command prints) is kept as text and exact bytes.
    public enum BinaryHandling: Sendable {
        /// Keep larger chunks as text too (U+FFFD for what is not UTF-8): terminal sessions.
        case asText
        /// Record a larger chunk's size and the printable text in it: bulk output of a session
        /// without a terminal (`cat FILE`, a pipe).
        case summarizeBulk
        /// Record every chunk's size and the printable text in it: the output of scp and rsync.
        case summarize
    }

    /// How a marker carrying the exact bytes of an input chunk that is not UTF-8 begins.
    public static let exactInputPrefix = "input bytes (base64): "
    /// The same for a short output chunk.
    public static let exactOutputPrefix = "output bytes (base64): "

    /// A marker with a chunk's exact bytes in base64, written straight into the pending frame
    /// (base64 needs no JSON escaping: this is the bulk-upload path, so it must be cheap).
    private func appendExact(_ kind: RecordingEvent.Kind, _ data: UnsafeBufferPointer<UInt8>, at time: Double) {
        self.pending += Array("[\(Self.formatTime(time)),\"m\",\"\(kind == .input ? Self.exactInputPrefix : Self.exactOutputPrefix)".utf8)
        let before = self.pending.count
        Self.base64(data, to: &self.pending)
        self.exactPending += self.pending.count - before
        self.pending += [0x22, 0x5D, 0x0A]
    }

    /// Bytes of exact-bytes markers in `pending` (they decide how the frame is compressed).
    private var exactPending = 0

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 (RFC 4648, padded), three bytes at a time straight into `out`.
    static func base64(_ data: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let alphabet = Self.base64Alphabet
        let n = data.count
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: (n + 2) / 3 * 4))
        out.withUnsafeMutableBufferPointer { o in
            alphabet.withUnsafeBufferPointer { a in
                var i = 0
                var j = start
                while i + 3 <= n {
                    let v = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2])
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                    o[j + 2] = a[Int(v >> 6 & 63)]
                    o[j + 3] = a[Int(v & 63)]
                    i += 3
                    j += 4
                }
                if n - i == 1 {
                    let v = UInt32(data[i]) << 16
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                    o[j + 2] = 0x3D
                    o[j + 3] = 0x3D
                } else if n - i == 2 {
                    let v = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                    o[j + 2] = a[Int(v >> 6 & 63)]
                    o[j + 3] = 0x3D
                }
            }
        }
    }
    /// Input chunks that are not UTF-8 up to this size are also recorded as text.
    public static let textualInputLimit = 4096

    public func record(_ event: RecordingEvent) { self.append(event) }

    private func append(_ event: RecordingEvent) {
        precondition(!self.sealed)
        self.pending += Array("[\(Self.formatTime(event.time)),\"\(event.kind.rawValue)\",".utf8)
        Self.appendJSONString(event.data, to: &self.pending)
        self.pending += [0x5D, 0x0A]
    }

    static func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // ASCII fast path, eight bytes at a time; the standard library's validation for the rest.
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= bytes.count {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        if i == bytes.count { return true }
        return String(validating: UnsafeBufferPointer(rebasing: bytes[i...]), as: UTF8.self) != nil
    }

    /// Runs of at least `minimum` (7 or more) printable ASCII characters (0x20–0x7E), like
    /// strings(1). Eight bytes are tested at a time: a run of 7 or more always covers a whole
    /// aligned 4-byte word, so only words that are all printable are looked at byte by byte.
    /// Random data has such a word about once in 50, which keeps this near memory speed.
    static func printableRuns(_ b: UnsafeBufferPointer<UInt8>, minimum: Int) -> [String] {
        precondition(minimum >= 7)
        var runs: [String] = []
        do {
            guard b.count > 0 else { return [] }
            let n = b.count
            @inline(__always) func printable(_ c: UInt8) -> Bool { c >= 0x20 && c < 0x7F }
            var i = 0
            var scannedTo = 0  // bytes before this are already part of a run that was handled
            let raw = UnsafeRawPointer(b.baseAddress!)
            let low: UInt64 = 0x0101_0101_0101_0101
            let high: UInt64 = 0x8080_8080_8080_8080
            while i + 8 <= n {
                let x = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                // Bit 7 of each byte: set when that byte is in 0x20...0x7E. A byte of 0xA0 or more
                // carries into its neighbour, so a word can look printable when it is not: each
                // candidate is confirmed byte by byte below. (It never hides a real run of 8: the
                // carry comes from a byte outside the run, and such a run has another whole word.)
                let mask = ~x & (x &+ 0x60 &* low) & ~(x &+ low) & high
                let lowHalf = mask & 0x0000_0000_8080_8080 == 0x0000_0000_8080_8080
                let highHalf = mask & 0x8080_8080_0000_0000 == 0x8080_8080_0000_0000
                if !lowHalf && !highHalf {
                    i += 8
                    continue
                }
                for start in [i, i + 4] where (start == i ? lowHalf : highHalf) && start >= scannedTo {
                    guard printable(b[start]) && printable(b[start + 1]) && printable(b[start + 2]) && printable(b[start + 3]) else { continue }
                    var lo = start
                    var hi = start + 4
                    while lo > scannedTo && printable(b[lo - 1]) { lo -= 1 }
                    while hi < n && printable(b[hi]) { hi += 1 }
                    if hi - lo >= minimum { runs.append(String(decoding: UnsafeBufferPointer(rebasing: b[lo..<hi]), as: UTF8.self)) }
                    scannedTo = hi
                }
                i += 8
            }
            // The tail that does not fill eight bytes.
            var start = -1
            var j = max(i, scannedTo)
            while j <= n {
                if j < n && printable(b[j]) {
                    if start < 0 { start = j }
                } else if start >= 0 {
                    // A run reaching back into the word loop's part was already found from there.
                    var lo = start
                    while lo > scannedTo && printable(b[lo - 1]) { lo -= 1 }
                    if j - lo >= minimum { runs.append(String(decoding: UnsafeBufferPointer(rebasing: b[lo..<j]), as: UTF8.self)) }
                    start = -1
                }
                j += 1
            }
        }
        return runs
    }

    /// A data frame with everything recorded since the last flush; empty when there is nothing.
    public func flush() -> [UInt8] {
        precondition(!self.sealed)
        guard !self.pending.isEmpty else { return [] }
        // A frame that is mostly the exact bytes of bulk uploads is Huffman-coded only (see Deflater).
        let plaintext = self.deflater.compress(self.pending, flush: .sync, huffmanOnly: self.exactPending * 2 > self.pending.count)
        self.pending.removeAll(keepingCapacity: true)
        self.exactPending = 0
        return self.frame(plaintext, kind: RecordingFormat.dataFrame)
    }

    /// The final frame: whatever is pending, the trailer, and the end of the deflate stream.
    /// Nothing can be recorded after it.
    public func seal(_ trailer: RecordingTrailer) -> [UInt8] {
        precondition(!self.sealed)
        for (kind, rest) in self.carry where !rest.isEmpty {
            self.append(RecordingEvent(time: 0, kind: kind, data: String(decoding: rest, as: UTF8.self)))
        }
        self.carry = [:]
        self.pending += Self.line(trailer)
        let plaintext = self.deflater.compress(self.pending, flush: .finish)
        self.pending = []
        self.sealed = true
        return self.frame(plaintext, kind: RecordingFormat.finalFrame)
    }

    private func frame(_ plaintext: [UInt8], kind: UInt8) -> [UInt8] {
        let aad = RecordingFormat.associatedData(preambleDigest: self.preambleDigest, counter: self.counter, kind: kind)
        // A 12-byte nonce and a 32-byte key are always accepted: sealing cannot fail.
        let box = try! AES.GCM.seal(plaintext, using: self.key, nonce: AES.GCM.Nonce(data: RecordingFormat.nonce(self.counter)), authenticating: aad)
        self.counter += 1
        var out: [UInt8] = []
        out.reserveCapacity(plaintext.count + 21)
        out.appendU32(UInt32(1 + box.ciphertext.count + RecordingFormat.tagLength))
        out.append(kind)
        out += box.ciphertext
        out += box.tag
        return out
    }

    static func line(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Header and trailer hold strings and numbers only: encoding cannot fail.
        return Array(try! encoder.encode(value)) + [0x0A]
    }

    static func formatTime(_ t: Double) -> String {
        let micros = Int64((max(0, t) * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    /// How many bytes at the end of `bytes` start a UTF-8 sequence that is not complete yet.
    static func incompleteTail(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var i = bytes.count - 1
        var seen = 0
        while i >= 0 && seen < 4 {
            let b = bytes[i]
            seen += 1
            if b & 0xC0 == 0x80 {
                i -= 1
                continue
            }  // continuation byte
            // Only a valid lead byte starts a sequence worth waiting for (0xC0, 0xC1 and 0xF5... never do).
            guard b >= 0xC2 && b <= 0xF4 else { return 0 }
            let needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
            return needed > seen ? seen : 0
        }
        return 0
    }

    /// JSON string escaping of already-valid UTF-8 (RFC 8259 §7).
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { Self.appendJSONString(utf8: $0, to: &out) }
    }

    static func appendJSONString(utf8 bytes: some Collection<UInt8>, to out: inout [UInt8]) {
        let done = bytes.withContiguousStorageIfAvailable { Self.escape($0, to: &out) }
        if done == nil { Array(bytes).withUnsafeBufferPointer { Self.escape($0, to: &out) } }
    }

    /// Escapes into a buffer sized for the worst case (six bytes per input byte), in one pass
    /// with no allocation per character: bulk output through the bastion goes through here.
    static func escape(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        let escaped = [UInt8](unsafeUninitializedCapacity: b.count * 6 + 2) { buffer, count in
            hex.withUTF8Buffer { h in
                var n = 0
                buffer[n] = 0x22
                n += 1
                for c in b {
                    if c >= 0x20 && c != 0x22 && c != 0x5C {
                        buffer[n] = c
                        n += 1
                        continue
                    }
                    buffer[n] = 0x5C
                    switch c {
                    case 0x22:
                        buffer[n + 1] = 0x22
                        n += 2
                    case 0x5C:
                        buffer[n + 1] = 0x5C
                        n += 2
                    case 0x0A:
                        buffer[n + 1] = 0x6E
                        n += 2
                    case 0x0D:
                        buffer[n + 1] = 0x72
                        n += 2
                    case 0x09:
                        buffer[n + 1] = 0x74
                        n += 2
                    default:
                        buffer[n + 1] = 0x75
                        buffer[n + 2] = 0x30
                        buffer[n + 3] = 0x30
                        buffer[n + 4] = h[Int(c >> 4)]
                        buffer[n + 5] = h[Int(c & 0xF)]
                        n += 6
                    }
                }
                buffer[n] = 0x22
                count = n + 1
            }
        }
        out.append(contentsOf: escaped)
    }
}
