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
    public func record(_ kind: RecordingEvent.Kind, bytes: [UInt8], at time: Double) {
        var data = (self.carry.removeValue(forKey: kind) ?? []) + bytes
        if kind == .output || kind == .input {
            let cut = Self.incompleteTail(data)
            if cut > 0 {
                self.carry[kind] = Array(data.suffix(cut))
                data.removeLast(cut)
            }
        }
        guard !data.isEmpty else { return }
        self.append(RecordingEvent(time: time, kind: kind, data: String(decoding: data, as: UTF8.self)))
    }

    public func record(_ event: RecordingEvent) { self.append(event) }

    private func append(_ event: RecordingEvent) {
        precondition(!self.sealed)
        self.pending += Array("[\(Self.formatTime(event.time)),\"\(event.kind.rawValue)\",".utf8)
        Self.appendJSONString(event.data, to: &self.pending)
        self.pending += [0x5D, 0x0A]
    }

    /// A data frame with everything recorded since the last flush; empty when there is nothing.
    public func flush() -> [UInt8] {
        precondition(!self.sealed)
        guard !self.pending.isEmpty else { return [] }
        let plaintext = self.deflater.compress(self.pending, flush: .sync)
        self.pending.removeAll(keepingCapacity: true)
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
    static func incompleteTail(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        var seen = 0
        while i >= 0 && seen < 4 {
            let b = bytes[i]
            seen += 1
            if b & 0xC0 == 0x80 { i -= 1; continue }  // continuation byte
            let needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            return needed > seen ? seen : 0
        }
        return 0
    }

    /// JSON string escaping of already-valid UTF-8 (RFC 8259 §7).
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        out.append(0x22)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in text.utf8 {
            switch b {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case 0..<0x20: out += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}
