import Crypto
import Foundation
import GatehouseCore
import GatehouseRecording

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

let key: [UInt8] = Array(repeating: 9, count: 32)
let sealed: [UInt8] = Array("sealed".utf8)
let id = "00000000-0000-4000-8000-000000000001"
let header = RecordingHeader(
    session: id, user: "u", login: "root", host: "h", source: nil, mode: "exec", command: nil, term: nil, width: 80, height: 24, started: 0)

func decoder(limit: Int = 1 << 22) -> RecordingDecoder {
    RecordingDecoder(limit: limit) { _ in key }
}

/// A file in the sealed format around arbitrary plaintext frames (the format is specified in
/// RecordingFormat; written out here so the decoder's layers behind the AEAD get hostile input:
/// the inflater and the line parser).
func sealedFile(frames: [[UInt8]], finalLast: Bool) -> [UInt8] {
    var preamble = Array("GHREC01\n".utf8)
    preamble += [0, UInt8(id.utf8.count)] + Array(id.utf8) + [0, UInt8(sealed.count)] + sealed
    let digest = Array(SHA256.hash(data: preamble))
    var out = preamble
    for (n, plaintext) in frames.enumerated() {
        let kind: UInt8 = finalLast && n == frames.count - 1 ? 2 : 1
        var counter: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { counter.append(UInt8((UInt64(n) >> UInt64(shift)) & 0xFF)) }
        let box = try! AES.GCM.seal(
            plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: [0, 0, 0, 0] + counter), authenticating: digest + counter + [kind])
        let length = UInt32(1 + box.ciphertext.count + 16)
        out +=
            [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF), kind] + Array(box.ciphertext)
            + Array(box.tag)
    }
    return out
}

/// Raw deflate "stored" blocks around `text`: lets arbitrary lines reach the line parser.
func stored(_ text: [UInt8], final: Bool) -> [UInt8] {
    var out: [UInt8] = []
    var rest = text[...]
    repeat {
        let chunk = rest.prefix(65535)
        rest = rest.dropFirst(chunk.count)
        let last = final && rest.isEmpty
        let n = UInt16(chunk.count)
        out += [last ? 1 : 0, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + chunk
    } while !rest.isEmpty
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecording(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // 1. The bytes as a file: refused or read, never a crash.
    _ = try? decoder().feed(bytes)
    guard let selector = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    // 2. The bytes as authenticated frames of raw deflate, and as lines in stored blocks.
    let cut = body.isEmpty ? 0 : Int(selector) % (body.count + 1)
    _ = try? decoder().feed(sealedFile(frames: [Array(body[..<cut]), Array(body[cut...])], finalLast: selector & 1 == 1))
    let lines = Array(#"{"session":"x","user":"u","login":"l","host":"h","mode":"exec","width":1,"height":1,"started":0}"#.utf8) + [0x0A] + body
    let d = decoder()
    if let read = try? d.feed(sealedFile(frames: [stored(lines, final: true)], finalLast: true)), d.sealed {
        guard case .trailer? = read.last else { fatalError("a sealed recording without a trailer line was accepted") }
    }
    // 3. The writer and the decoder agree: valid UTF-8 recorded as text, in chunks, comes back whole.
    let writer = try! RecordingWriter(id: id, dataKey: key, sealedKey: sealed, header: header)
    var file = writer.start()
    var offset = 0
    let step = max(1, Int(selector))
    while offset < body.count {
        let end = min(body.count, offset + step)
        writer.record(.output, bytes: Array(body[offset..<end]), at: Double(offset), binary: selector & 2 == 0 ? .asText : .summarize)
        offset = end
        if offset % 3 == 0 { file += writer.flush() }
    }
    file += writer.seal(RecordingTrailer(ended: 1, exitStatus: 0, exitSignal: nil, endedBy: nil, bytesIn: 0, bytesOut: body.count))
    let check = decoder(limit: 1 << 26)
    guard let events = try? check.feed(file), check.sealed else { fatalError("the decoder refused what the writer wrote") }
    if selector & 2 == 0, let text = String(validating: body, as: UTF8.self) {
        let output = events.compactMap { line -> String? in if case .event(let e) = line, e.kind == .output { e.data } else { nil } }.joined()
        guard output == text else { fatalError("recorded text came back different") }
    }
    return 0
}

@main
enum FuzzRecording {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzRecording($0, $1) }))
    }
}
