import Foundation

/// Parameters of a query string or an `application/x-www-form-urlencoded` body, parsed by a
/// bounded, total parser. OAuth forbids repeating a parameter (RFC 6749 §3.1, §3.2), so a
/// repeated name is an error rather than "the first one wins"; so are malformed percent escapes
/// and text that is not UTF-8.
public struct FormParameters: Sendable, Equatable {
    public static let maxSize = 64 * 1024
    public static let maxCount = 64

    public private(set) var values: [String: String]

    public init(_ values: [String: String] = [:]) { self.values = values }

    public subscript(_ name: String) -> String? { self.values[name] }

    /// The value of `name` if present and non-empty (OAuth treats an empty value as absent).
    public func nonEmpty(_ name: String) -> String? {
        guard let v = self.values[name], !v.isEmpty else { return nil }
        return v
    }

    public init(parsing bytes: some Collection<UInt8>) throws(OAuthError) {
        guard bytes.count <= Self.maxSize else { throw OAuthError(.invalidRequest, "request parameters are too large") }
        var values: [String: String] = [:]
        var count = 0
        for pair in Array(bytes).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= Self.maxCount else { throw OAuthError(.invalidRequest, "too many request parameters") }
            let eq = pair.firstIndex(of: UInt8(ascii: "="))
            let name = try Self.decode(eq.map { pair[pair.startIndex..<$0] } ?? pair[...])
            var value = ""
            if let eq { value = try Self.decode(pair[pair.index(after: eq)...]) }
            guard !name.isEmpty else { throw OAuthError(.invalidRequest, "a request parameter has no name") }
            guard values[name] == nil else { throw OAuthError(.invalidRequest, "parameter \(name.prefix(40)) is repeated") }
            values[name] = value
        }
        self.values = values
    }

    public init(parsing text: String) throws(OAuthError) {
        try self.init(parsing: Array(text.utf8))
    }

    static func decode(_ bytes: ArraySlice<UInt8>) throws(OAuthError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(0x20)
            } else if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex, let hi = Self.hex(bytes[i + 1]), let lo = Self.hex(bytes[i + 2]) else {
                    throw OAuthError(.invalidRequest, "malformed percent-encoding in request parameters")
                }
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(b)
            }
            i += 1
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw OAuthError(.invalidRequest, "request parameters are not UTF-8") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
            throw OAuthError(.invalidRequest, "request parameters contain control characters")
        }
        return text
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// Percent-encodes a value for a query string (RFC 3986 unreserved characters stay).
    public static func encode(_ value: String) -> String {
        var out = ""
        for b in value.utf8 {
            if (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// `name=value&...` in the given order, percent-encoded.
    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
    }
}
