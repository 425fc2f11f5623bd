/// A decoded CBOR data item (RFC 8949), as much of CBOR as WebAuthn and COSE use: integers,
/// byte and text strings, arrays, maps, booleans and null.
public indirect enum CBORValue: Sendable, Equatable {
    case unsigned(UInt64)
    /// A negative integer, stored as its value (`-1 - n` on the wire).
    case negative(Int64)
    case bytes([UInt8])
    case text(String)
    case array([CBORValue])
    /// Pairs in wire order. Duplicate keys are refused by the decoder.
    case map([(key: CBORValue, value: CBORValue)])
    case bool(Bool)
    case null

    /// The integer value, if this is an integer that fits in Int64.
    public var int: Int64? {
        switch self {
        case .unsigned(let u): return u <= UInt64(Int64.max) ? Int64(u) : nil
        case .negative(let n): return n
        default: return nil
        }
    }

    public var byteString: [UInt8]? {
        if case .bytes(let b) = self { return b }
        return nil
    }

    public var textString: String? {
        if case .text(let t) = self { return t }
        return nil
    }

    public var mapPairs: [(key: CBORValue, value: CBORValue)]? {
        if case .map(let m) = self { return m }
        return nil
    }

    /// The value under an integer key of a map (COSE keys use integer labels).
    public subscript(int key: Int64) -> CBORValue? {
        self.mapPairs?.first { $0.key.int == key }?.value
    }

    /// The value under a text key of a map (attestation objects use text keys).
    public subscript(text key: String) -> CBORValue? {
        self.mapPairs?.first { $0.key.textString == key }?.value
    }

    public static func == (a: CBORValue, b: CBORValue) -> Bool {
        switch (a, b) {
        case let (.unsigned(x), .unsigned(y)): return x == y
        case let (.negative(x), .negative(y)): return x == y
        case let (.bytes(x), .bytes(y)): return x == y
        case let (.text(x), .text(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

/// A bounded, total CBOR decoder. Every length is checked against the bytes that remain before
/// anything is allocated; nesting depth and the number of items are bounded; indefinite lengths,
/// tags, floats, `undefined`, duplicate map keys and invalid UTF-8 are refused. Malformed input
/// gets a ``WebAuthnError`` with code `malformed`, never a crash.
public struct CBORDecoder: Sendable {
    public struct Limits: Sendable {
        public var maxBytes = 64 * 1024
        public var maxDepth = 16
        public var maxItems = 10_000
        public static let `default` = Limits()
        public init() {}
    }

    public let limits: Limits

    public init(limits: Limits = .default) {
        self.limits = limits
    }

    /// Decodes exactly one item that fills `bytes`.
    public func decode(_ bytes: [UInt8]) throws(WebAuthnError) -> CBORValue {
        let (value, end) = try self.decodePrefix(bytes, from: 0)
        guard end == bytes.count else { throw WebAuthnError(.malformed, "CBOR: \(bytes.count - end) bytes after the data item") }
        return value
    }

    /// Decodes one item starting at `offset`; returns it and where it ended (authenticator data
    /// embeds a COSE key followed by more data).
    public func decodePrefix(_ bytes: [UInt8], from offset: Int) throws(WebAuthnError) -> (CBORValue, Int) {
        guard bytes.count <= self.limits.maxBytes else {
            throw WebAuthnError(.tooLarge, "CBOR: input is larger than \(self.limits.maxBytes) bytes")
        }
        var reader = Reader(bytes: bytes, index: offset, limits: self.limits)
        let value = try reader.item(depth: 0)
        return (value, reader.index)
    }

    private struct Reader {
        let bytes: [UInt8]
        var index: Int
        let limits: Limits
        var items = 0

        init(bytes: [UInt8], index: Int, limits: Limits) {
            self.bytes = bytes
            self.index = index
            self.limits = limits
        }

        var remaining: Int { self.bytes.count - self.index }

        mutating func byte() throws(WebAuthnError) -> UInt8 {
            guard self.index < self.bytes.count else { throw WebAuthnError(.malformed, "CBOR: unexpected end of data") }
            defer { self.index += 1 }
            return self.bytes[self.index]
        }

        mutating func argument(_ info: UInt8) throws(WebAuthnError) -> UInt64 {
            switch info {
            case 0..<24: return UInt64(info)
            case 24, 25, 26, 27:
                let count = 1 << Int(info - 24)
                guard self.remaining >= count else { throw WebAuthnError(.malformed, "CBOR: unexpected end of data") }
                var value: UInt64 = 0
                for _ in 0..<count {
                    value = value << 8 | UInt64(self.bytes[self.index])
                    self.index += 1
                }
                return value
            case 31: throw WebAuthnError(.malformed, "CBOR: indefinite lengths are not allowed")
            default: throw WebAuthnError(.malformed, "CBOR: reserved additional information \(info)")
            }
        }

        /// A length that must fit in what remains (each element takes at least one byte).
        mutating func length(_ info: UInt8, unit: Int) throws(WebAuthnError) -> Int {
            let n = try self.argument(info)
            guard n <= UInt64(self.remaining / unit) else { throw WebAuthnError(.malformed, "CBOR: length \(n) runs past the end of the data") }
            return Int(n)
        }

        mutating func item(depth: Int) throws(WebAuthnError) -> CBORValue {
            guard depth <= self.limits.maxDepth else { throw WebAuthnError(.malformed, "CBOR: nested deeper than \(self.limits.maxDepth)") }
            self.items += 1
            guard self.items <= self.limits.maxItems else { throw WebAuthnError(.tooLarge, "CBOR: more than \(self.limits.maxItems) items") }
            let initial = try self.byte()
            let major = initial >> 5
            let info = initial & 0x1F
            switch major {
            case 0:
                return .unsigned(try self.argument(info))
            case 1:
                let n = try self.argument(info)
                guard n <= UInt64(Int64.max) else { throw WebAuthnError(.malformed, "CBOR: negative integer out of range") }
                return .negative(-1 - Int64(n))
            case 2:
                let n = try self.length(info, unit: 1)
                defer { self.index += n }
                return .bytes(Array(self.bytes[self.index..<self.index + n]))
            case 3:
                let n = try self.length(info, unit: 1)
                guard let text = String(validating: self.bytes[self.index..<self.index + n], as: UTF8.self) else {
                    throw WebAuthnError(.malformed, "CBOR: text string is not valid UTF-8")
                }
                self.index += n
                return .text(text)
            case 4:
                let n = try self.length(info, unit: 1)
                var out: [CBORValue] = []
                out.reserveCapacity(n)
                for _ in 0..<n { out.append(try self.item(depth: depth + 1)) }
                return .array(out)
            case 5:
                let n = try self.length(info, unit: 2)
                var out: [(key: CBORValue, value: CBORValue)] = []
                out.reserveCapacity(n)
                var unsignedKeys = Set<UInt64>()
                var negativeKeys = Set<Int64>()
                var textKeys = Set<String>()
                for _ in 0..<n {
                    let key = try self.item(depth: depth + 1)
                    let fresh: Bool
                    switch key {
                    case .unsigned(let u): fresh = unsignedKeys.insert(u).inserted
                    case .negative(let v): fresh = negativeKeys.insert(v).inserted
                    case .text(let t): fresh = textKeys.insert(t).inserted
                    default: throw WebAuthnError(.malformed, "CBOR: map keys must be integers or text")
                    }
                    guard fresh else { throw WebAuthnError(.malformed, "CBOR: duplicate map key") }
                    out.append((key, try self.item(depth: depth + 1)))
                }
                return .map(out)
            case 6:
                throw WebAuthnError(.malformed, "CBOR: tags are not allowed here")
            default:
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22: return .null
                default: throw WebAuthnError(.malformed, "CBOR: simple value or float \(info) is not allowed here")
                }
            }
        }
    }
}

/// Encodes CBOR in the canonical CTAP2 form (shortest lengths; map keys as given). Used to build
/// test authenticators and for the COSE keys Gatehouse stores.
public enum CBOREncoder {
    public static func encode(_ value: CBORValue) -> [UInt8] {
        var out: [UInt8] = []
        Self.append(value, to: &out)
        return out
    }

    static func head(_ major: UInt8, _ n: UInt64, to out: inout [UInt8]) {
        let m = major << 5
        switch n {
        case 0..<24: out.append(m | UInt8(n))
        case 24...0xFF: out += [m | 24, UInt8(n)]
        case 0x100...0xFFFF: out += [m | 25, UInt8(n >> 8), UInt8(n & 0xFF)]
        case 0x10000...0xFFFF_FFFF:
            out.append(m | 26)
            for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8((n >> UInt64(s)) & 0xFF)) }
        default:
            out.append(m | 27)
            for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8((n >> UInt64(s)) & 0xFF)) }
        }
    }

    static func append(_ value: CBORValue, to out: inout [UInt8]) {
        switch value {
        case .unsigned(let u): Self.head(0, u, to: &out)
        case .negative(let n): Self.head(1, UInt64(-1 - n), to: &out)
        case .bytes(let b):
            Self.head(2, UInt64(b.count), to: &out)
            out += b
        case .text(let t):
            Self.head(3, UInt64(t.utf8.count), to: &out)
            out += Array(t.utf8)
        case .array(let a):
            Self.head(4, UInt64(a.count), to: &out)
            for v in a { Self.append(v, to: &out) }
        case .map(let m):
            Self.head(5, UInt64(m.count), to: &out)
            for (k, v) in m {
                Self.append(k, to: &out)
                Self.append(v, to: &out)
            }
        case .bool(let b): out.append(b ? 0xF5 : 0xF4)
        case .null: out.append(0xF6)
        }
    }
}
