/// The SSH wire encoding (RFC 4251 §5) for what certificates and keys are made of: `uint32`,
/// `uint64`, `string` (length-prefixed bytes) and `mpint`.
public struct SSHWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func uint32(_ v: UInt32) {
        self.bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    public mutating func uint64(_ v: UInt64) {
        self.uint32(UInt32(v >> 32))
        self.uint32(UInt32(v & 0xFFFF_FFFF))
    }

    public mutating func string(_ b: some Collection<UInt8>) {
        self.uint32(UInt32(b.count))
        self.bytes += b
    }

    public mutating func string(_ s: String) { self.string(Array(s.utf8)) }

    mutating func append(_ raw: [UInt8]) { self.bytes += raw }

    /// A non-negative integer from big-endian magnitude bytes: leading zeros dropped, and a zero
    /// byte prepended when the top bit is set (so it does not read as negative).
    public mutating func mpint(_ magnitude: some Collection<UInt8>) {
        var m = Array(magnitude.drop { $0 == 0 })
        if let first = m.first, first & 0x80 != 0 { m.insert(0, at: 0) }
        self.string(m)
    }
}

/// A bounded reader over SSH wire data; every read checks the remaining length.
public struct SSHReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { self.offset == self.bytes.count }

    public mutating func uint32() throws(SSHError) -> UInt32 {
        guard self.bytes.count - self.offset >= 4 else { throw SSHError(.malformed, "truncated SSH data") }
        defer { self.offset += 4 }
        return self.bytes[self.offset..<self.offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func uint64() throws(SSHError) -> UInt64 {
        UInt64(try self.uint32()) << 32 | UInt64(try self.uint32())
    }

    public mutating func string(max: Int = 1 << 16) throws(SSHError) -> [UInt8] {
        let n = Int(try self.uint32())
        guard n <= max, self.bytes.count - self.offset >= n else { throw SSHError(.malformed, "an SSH string is truncated or too long") }
        defer { self.offset += n }
        return Array(self.bytes[self.offset..<self.offset + n])
    }

    public mutating func text(max: Int = 1024) throws(SSHError) -> String {
        guard let s = String(validating: try self.string(max: max), as: UTF8.self) else { throw SSHError(.malformed, "an SSH string is not UTF-8") }
        return s
    }
}
