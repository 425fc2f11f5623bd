public import Crypto
public import Foundation
public import GatehouseCore

/// Reads a recording file, whole or as it grows. Feed it bytes in order; it returns the events
/// of every frame that is complete and authentic. Anything that is not a recording this key
/// sealed, frame by frame, is refused with a clear error; it never crashes on hostile input,
/// and stops at `limit` inflated bytes.
public final class RecordingDecoder {
    public struct Preamble: Sendable, Equatable {
        public let id: String
        public let sealedKey: [UInt8]
        public init(id: String, sealedKey: [UInt8]) {
            self.id = id
            self.sealedKey = sealedKey
        }
    }

    public enum Line: Sendable, Equatable {
        case header(RecordingHeader)
        case event(RecordingEvent)
        case trailer(RecordingTrailer)
    }

    private var buffer: [UInt8] = []
    private var preambleDigest: [UInt8]?
    private var key: SymmetricKey?
    private let openKey: @Sendable (Preamble) throws -> [UInt8]
    private let inflater: Inflater
    private var counter: UInt64 = 0
    private var textTail: [UInt8] = []
    private var sawHeader = false
    public private(set) var preamble: Preamble?
    /// True once the final frame has been read: the recording is complete and sealed.
    public private(set) var sealed = false

    /// - Parameter openKey: unseals the data key from the preamble (the root key's sealer).
    public init(limit: Int = 1 << 32, openKey: @escaping @Sendable (Preamble) throws -> [UInt8]) {
        self.inflater = Inflater(limit: limit)
        self.openKey = openKey
    }

    /// Bytes fed but not yet part of a complete frame (a file still being written, or cut short).
    public var unreadBytes: Int { self.buffer.count }

    public func feed(_ bytes: some Collection<UInt8>) throws(GatehouseError) -> [Line] {
        guard !self.sealed || bytes.isEmpty else { throw Self.fault("data after the final frame") }
        self.buffer += bytes
        var lines: [Line] = []
        if self.preamble == nil {
            guard try self.readPreamble() else { return [] }
        }
        var offset = 0
        while self.buffer.count - offset >= 4 {
            let length =
                Int(self.buffer[offset]) << 24 | Int(self.buffer[offset + 1]) << 16 | Int(self.buffer[offset + 2]) << 8 | Int(self.buffer[offset + 3])
            guard length >= 1 + RecordingFormat.tagLength, length <= RecordingFormat.maxFrameLength else {
                throw Self.fault("frame \(self.counter) has an impossible length")
            }
            guard self.buffer.count - offset - 4 >= length else { break }
            let kind = self.buffer[offset + 4]
            guard kind == RecordingFormat.dataFrame || kind == RecordingFormat.finalFrame else {
                throw Self.fault("frame \(self.counter) has an unknown kind")
            }
            let body = self.buffer[(offset + 5)..<(offset + 4 + length)]
            let plaintext: [UInt8]
            do {
                let box = try AES.GCM.SealedBox(
                    nonce: AES.GCM.Nonce(data: RecordingFormat.nonce(self.counter)),
                    ciphertext: body.dropLast(RecordingFormat.tagLength), tag: body.suffix(RecordingFormat.tagLength))
                plaintext = Array(
                    try AES.GCM.open(
                        box, using: self.key!,
                        authenticating: RecordingFormat.associatedData(preambleDigest: self.preambleDigest!, counter: self.counter, kind: kind)))
            } catch {
                throw Self.fault("frame \(self.counter) does not authenticate (edited, reordered or from another recording)")
            }
            offset += 4 + length
            self.counter += 1
            let text: [UInt8]
            do {
                text = try self.inflater.inflate(plaintext)
            } catch .tooLarge {
                throw GatehouseError(.inputTooLarge, "the recording inflates past the limit")
            } catch {
                throw Self.fault("frame \(self.counter - 1) does not inflate")
            }
            lines += try self.lines(text, final: kind == RecordingFormat.finalFrame)
            if kind == RecordingFormat.finalFrame {
                guard self.inflater.ended else { throw Self.fault("the final frame does not end the stream") }
                self.sealed = true
                guard offset == self.buffer.count else { throw Self.fault("data after the final frame") }
            }
        }
        self.buffer.removeFirst(offset)
        return lines
    }

    private func readPreamble() throws(GatehouseError) -> Bool {
        let magic = RecordingFormat.magic
        guard self.buffer.count >= magic.count + 2 else {
            let n = min(self.buffer.count, magic.count)
            if !self.buffer.prefix(n).elementsEqual(magic.prefix(n)) { throw Self.fault("not a Gatehouse recording") }
            return false
        }
        guard self.buffer.prefix(magic.count).elementsEqual(magic) else { throw Self.fault("not a Gatehouse recording (or another version)") }
        var i = magic.count
        let idLength = Int(self.buffer[i]) << 8 | Int(self.buffer[i + 1])
        i += 2
        guard idLength <= 64 else { throw Self.fault("the recording id is too long") }
        guard self.buffer.count >= i + idLength + 2 else { return false }
        let id = String(decoding: self.buffer[i..<(i + idLength)], as: UTF8.self)
        guard RecordingFormat.isValidID(id) else { throw Self.fault("the recording id is malformed") }
        i += idLength
        let keyLength = Int(self.buffer[i]) << 8 | Int(self.buffer[i + 1])
        i += 2
        guard keyLength > 0, keyLength <= 1024 else { throw Self.fault("the sealed key has an impossible length") }
        guard self.buffer.count >= i + keyLength else { return false }
        let preamble = Preamble(id: id, sealedKey: Array(self.buffer[i..<(i + keyLength)]))
        i += keyLength
        let raw: [UInt8]
        do {
            raw = try self.openKey(preamble)
        } catch let error as GatehouseError {
            throw error
        } catch {
            throw Self.fault("the recording key does not open")
        }
        guard raw.count == 32 else { throw Self.fault("the recording key has the wrong length") }
        self.key = SymmetricKey(data: raw)
        self.preambleDigest = Array(SHA256.hash(data: self.buffer[0..<i]))
        self.preamble = preamble
        self.buffer.removeFirst(i)
        return true
    }

    private func lines(_ text: [UInt8], final: Bool) throws(GatehouseError) -> [Line] {
        var data = self.textTail + text
        var lines: [Line] = []
        var start = 0
        var newlines: [Int] = []
        for (i, b) in data.enumerated() where b == 0x0A { newlines.append(i) }
        for (n, end) in newlines.enumerated() {
            let line = data[start..<end]
            start = end + 1
            let isLast = final && n == newlines.count - 1
            lines.append(try self.parse(line, trailer: isLast))
        }
        data.removeFirst(start)
        self.textTail = data
        guard self.textTail.count <= RecordingFormat.maxFramePlaintext * 2 else { throw Self.fault("a line is too long") }
        if final {
            guard self.textTail.isEmpty, case .trailer? = lines.last else { throw Self.fault("the final frame has no trailer") }
        }
        return lines
    }

    private func parse(_ line: ArraySlice<UInt8>, trailer: Bool) throws(GatehouseError) -> Line {
        let data = Data(line)
        if !self.sawHeader {
            guard let header = try? JSONDecoder().decode(RecordingHeader.self, from: data) else {
                throw Self.fault("the first line is not a recording header")
            }
            self.sawHeader = true
            return .header(header)
        }
        if trailer {
            guard let t = try? JSONDecoder().decode(RecordingTrailer.self, from: data) else {
                throw Self.fault("the last line is not a recording trailer")
            }
            return .trailer(t)
        }
        guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any], array.count == 3,
            let time = (array[0] as? NSNumber)?.doubleValue, time.isFinite, time >= 0,
            let code = array[1] as? String, let kind = RecordingEvent.Kind(rawValue: code), let text = array[2] as? String
        else { throw Self.fault("an event line is malformed") }
        return .event(RecordingEvent(time: time, kind: kind, data: text))
    }

    static func fault(_ message: String) -> GatehouseError {
        GatehouseError(.invalidInput, "recording rejected: \(message)")
    }
}
