import CZlib

/// One raw-deflate stream (RFC 1951, no zlib or gzip wrapper) that a recording compresses its
/// event lines into. Each ``compress(_:flush:)`` returns the bytes produced so far; with
/// `flush: .sync` they end on a byte boundary, so every sealed frame can be inflated on its own
/// prefix of the stream (live watching and a truncated file both stay readable).
final class Deflater {
    enum Flush { case none, sync, finish }

    // zlib keeps a pointer back to its z_stream, so the stream lives at one fixed address.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var finished = false

    /// Level 1: a terminal transcript compresses 5–10× at this level, and a bulk transfer
    /// through the bastion must not wait for a slower one. A 4 KiB window and memory level 5
    /// keep zlib's state near 32 KiB per stream (the defaults take 256 KiB, which would be
    /// most of an idle session's budget); terminal text loses little by it.
    init(level: Int32 = 1) {
        // Raw deflate (-12: a 4 KiB window), memory level 5: fixed values zlib always accepts.
        self.stream.initialize(to: z_stream())
        let status = deflateInit2_(self.stream, level, Z_DEFLATED, -12, 5, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(self.stream)
        self.stream.deallocate()
    }

    private var huffmanOnly = false
    private var level: Int32 = 1

    /// Compresses `input`. With `huffmanOnly`, Huffman coding alone (no string matching): base64
    /// of a bulk upload gains nothing from LZ77 matching, which then costs most of the time, and
    /// its 6-bit alphabet still compresses to three quarters. The switch happens before the
    /// input, inside the stream (zlib ends the block it was in), so inflating is unchanged.
    func compress(_ input: [UInt8], flush: Flush, huffmanOnly: Bool = false) -> [UInt8] {
        precondition(!self.finished, "the deflate stream is finished")
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 2 + 64)
        var chunk = [UInt8](repeating: 0, count: max(16384, Int(deflateBound(self.stream, UInt(input.count)))))
        if huffmanOnly != self.huffmanOnly {
            self.huffmanOnly = huffmanOnly
            chunk.withUnsafeMutableBufferPointer { out in
                self.stream.pointee.next_in = nil
                self.stream.pointee.avail_in = 0
                self.stream.pointee.next_out = out.baseAddress
                self.stream.pointee.avail_out = UInt32(out.count)
                let status = deflateParams(self.stream, self.level, huffmanOnly ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY)
                precondition(status == Z_OK, "deflateParams failed: \(status)")
                output.append(contentsOf: out[0..<(out.count - Int(self.stream.pointee.avail_out))])
            }
        }
        let mode: Int32 =
            switch flush {
            case .none: Z_NO_FLUSH
            case .sync: Z_SYNC_FLUSH
            case .finish: Z_FINISH
            }
        input.withUnsafeBufferPointer { inputBuffer in
            self.stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBuffer.baseAddress)
            self.stream.pointee.avail_in = UInt32(inputBuffer.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    self.stream.pointee.next_out = out.baseAddress
                    self.stream.pointee.avail_out = UInt32(out.count)
                    let status = deflate(self.stream, mode)
                    // Z_BUF_ERROR only means "no progress possible", which the loop condition handles.
                    precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate failed: \(status)")
                    output.append(contentsOf: out[0..<(out.count - Int(self.stream.pointee.avail_out))])
                }
            } while self.stream.pointee.avail_out == 0 || self.stream.pointee.avail_in > 0
        }
        self.stream.pointee.next_in = nil
        if flush == .finish { self.finished = true }
        return output
    }
}

/// The reverse of ``Deflater``, with a hard cap on what it will produce: a recording that
/// inflates past the cap is refused, so a small hostile file cannot exhaust memory.
final class Inflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private(set) var produced = 0
    private(set) var ended = false
    let limit: Int

    init(limit: Int) {
        self.limit = limit
        self.stream.initialize(to: z_stream())
        let status = inflateInit2_(self.stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "inflateInit2 failed: \(status)")
    }

    deinit {
        inflateEnd(self.stream)
        self.stream.deallocate()
    }

    enum Failure: Error { case corrupt, tooLarge, dataAfterEnd }

    func inflate(_ input: [UInt8]) throws(Failure) -> [UInt8] {
        guard !input.isEmpty else { return [] }
        guard !self.ended else { throw .dataAfterEnd }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var failure: Failure?
        input.withUnsafeBufferPointer { inputBuffer in
            self.stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBuffer.baseAddress)
            self.stream.pointee.avail_in = UInt32(inputBuffer.count)
            while failure == nil {
                let status = chunk.withUnsafeMutableBufferPointer { out -> Int32 in
                    self.stream.pointee.next_out = out.baseAddress
                    self.stream.pointee.avail_out = UInt32(out.count)
                    let status = CZlib.inflate(self.stream, Z_NO_FLUSH)
                    output.append(contentsOf: out[0..<(out.count - Int(self.stream.pointee.avail_out))])
                    return status
                }
                if output.count + self.produced > self.limit {
                    failure = .tooLarge
                    break
                }
                if status == Z_STREAM_END {
                    self.ended = true
                    if self.stream.pointee.avail_in > 0 { failure = .dataAfterEnd }
                    break
                }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    failure = .corrupt
                    break
                }
                if self.stream.pointee.avail_in == 0 && self.stream.pointee.avail_out > 0 { break }
                if status == Z_BUF_ERROR && self.stream.pointee.avail_in == 0 { break }
            }
        }
        self.stream.pointee.next_in = nil
        if let failure { throw failure }
        self.produced += output.count
        return output
    }
}
