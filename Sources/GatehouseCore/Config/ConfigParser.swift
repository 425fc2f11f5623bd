/// A bounded, total parser for the subset of TOML that Gatehouse's configuration uses:
/// comments, `[table]` headers (one level), `key = value` with basic and literal strings,
/// integers, booleans and single-line arrays of those.
///
/// Anything outside that subset is an error with its line and column, never a guess. Input is
/// bounded (``Limits``) and the parser never recurses, so hostile files cannot exhaust the stack.
public struct ConfigParser: Sendable {
    public struct Limits: Sendable {
        public var maxBytes = 1 << 20
        public var maxLineBytes = 16 * 1024
        public var maxKeys = 1024
        public var maxArrayElements = 1024
        public static let `default` = Limits()
        public init() {}
    }

    public let fileName: String
    public let limits: Limits

    public init(fileName: String, limits: Limits = .default) {
        self.fileName = fileName
        self.limits = limits
    }

    public func parse(_ bytes: [UInt8]) throws(ConfigError) -> ConfigDocument {
        guard bytes.count <= self.limits.maxBytes else {
            throw self.error(line: 1, column: nil, "file is larger than \(self.limits.maxBytes) bytes")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw self.error(line: 1, column: nil, "file is not valid UTF-8")
        }
        var document = ConfigDocument()
        var table: String? = nil
        var seenTables: Set<String> = []
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var line = bytes[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            guard line.count <= self.limits.maxLineBytes else {
                throw self.error(line: lineNumber, column: nil, "line is longer than \(self.limits.maxLineBytes) bytes")
            }
            var cursor = LineCursor(bytes: Array(line), line: lineNumber, parser: self)
            try cursor.parseLine(document: &document, table: &table, seenTables: &seenTables)
            start = end + 1
        }
        return document
    }

    func error(line: Int, column: Int?, _ message: String) -> ConfigError {
        ConfigError(fileName: self.fileName, line: line, column: column, message: message)
    }
}

/// Walks one line. Columns are 1-based byte offsets.
private struct LineCursor {
    let bytes: [UInt8]
    let line: Int
    let parser: ConfigParser
    var index = 0

    init(bytes: [UInt8], line: Int, parser: ConfigParser) {
        self.bytes = bytes
        self.line = line
        self.parser = parser
    }

    private var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private func fail(_ message: String) -> ConfigError {
        self.parser.error(line: self.line, column: self.index + 1, message)
    }

    private mutating func skipSpaces() {
        while let c = self.current, c == 0x20 || c == 0x09 { self.index += 1 }
    }

    /// After a value or header: only spaces and an optional comment may follow.
    private mutating func expectEndOfLine() throws(ConfigError) {
        self.skipSpaces()
        guard let c = self.current else { return }
        guard c == 0x23 else { throw self.fail("unexpected text after the value; start a comment with '#'") }
        try self.checkCommentCharacters()
    }

    private func checkCommentCharacters() throws(ConfigError) {
        for (offset, c) in self.bytes[self.index...].enumerated() where (c < 0x20 && c != 0x09) || c == 0x7F {
            throw self.parser.error(line: self.line, column: self.index + offset + 1, "control character in comment")
        }
    }

    mutating func parseLine(document: inout ConfigDocument, table: inout String?, seenTables: inout Set<String>) throws(ConfigError) {
        self.skipSpaces()
        guard let c = self.current else { return }
        if c == 0x23 {
            try self.checkCommentCharacters()
            return
        }
        if c == 0x5B {
            self.index += 1
            if self.current == 0x5B { throw self.fail("arrays of tables ([[...]]) are not supported") }
            self.skipSpaces()
            let name = try self.parseBareKey()
            self.skipSpaces()
            if self.current == 0x2E { throw self.fail("nested tables are not supported; use one level, like [tls]") }
            guard self.current == 0x5D else { throw self.fail("expected ']' to close the table header") }
            self.index += 1
            guard seenTables.insert(name).inserted else { throw self.fail("table [\(name)] is defined twice") }
            guard document[name] == nil else { throw self.fail("table [\(name)] conflicts with the key '\(name)'") }
            table = name
            try self.expectEndOfLine()
            return
        }
        let keyColumn = self.index
        let key = try self.parseBareKey()
        self.skipSpaces()
        if self.current == 0x2E { throw self.fail("dotted keys are not supported; use a [table] header") }
        guard self.current == 0x3D else { throw self.fail("expected '=' after key '\(key)'") }
        self.index += 1
        self.skipSpaces()
        let value = try self.parseValue(allowArray: true)
        try self.expectEndOfLine()
        let fullKey = table.map { "\($0).\(key)" } ?? key
        guard document.keys.count < self.parser.limits.maxKeys else {
            throw self.parser.error(line: self.line, column: keyColumn + 1, "more than \(self.parser.limits.maxKeys) keys")
        }
        guard !seenTables.contains(fullKey), document.insert(fullKey, .init(value: value, line: self.line)) else {
            throw self.parser.error(line: self.line, column: keyColumn + 1, "key '\(fullKey)' is defined twice")
        }
    }

    private mutating func parseBareKey() throws(ConfigError) -> String {
        let start = self.index
        while let c = self.current, Self.isBareKeyByte(c) { self.index += 1 }
        guard self.index > start else {
            if self.current == 0x22 || self.current == 0x27 { throw self.fail("quoted keys are not supported") }
            throw self.fail("expected a key (letters, digits, '_' or '-')")
        }
        guard self.index - start <= 128 else { throw self.fail("key is longer than 128 characters") }
        return String(decoding: self.bytes[start..<self.index], as: UTF8.self)
    }

    private static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }

    private mutating func parseValue(allowArray: Bool) throws(ConfigError) -> ConfigValue {
        guard let c = self.current else { throw self.fail("expected a value after '='") }
        switch c {
        case 0x22:
            if self.bytes[self.index...].starts(with: [0x22, 0x22, 0x22]) { throw self.fail("multi-line strings are not supported") }
            return .string(try self.parseBasicString())
        case 0x27:
            if self.bytes[self.index...].starts(with: [0x27, 0x27, 0x27]) { throw self.fail("multi-line strings are not supported") }
            return .string(try self.parseLiteralString())
        case 0x5B:
            guard allowArray else { throw self.fail("nested arrays are not supported") }
            return try self.parseArray()
        case 0x74, 0x66:
            return try self.parseBoolean()
        case 0x2B, 0x2D, 0x30...0x39:
            return try self.parseInteger()
        default:
            throw self.fail("expected a value: a \"string\", an integer, true/false or an [array]")
        }
    }

    private mutating func parseBasicString() throws(ConfigError) -> String {
        self.index += 1
        var out: [UInt8] = []
        while true {
            guard let c = self.current else { throw self.fail("unterminated string") }
            if c == 0x22 {
                self.index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c == 0x5C {
                self.index += 1
                guard let e = self.current else { throw self.fail("unterminated escape sequence") }
                self.index += 1
                switch e {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x6E: out.append(0x0A)
                case 0x74: out.append(0x09)
                case 0x72: out.append(0x0D)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x75: out.append(contentsOf: try self.parseUnicodeEscape(digits: 4))
                case 0x55: out.append(contentsOf: try self.parseUnicodeEscape(digits: 8))
                default:
                    self.index -= 1
                    throw self.fail("unknown escape sequence '\\\(String(decoding: [e], as: UTF8.self))'")
                }
                continue
            }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw self.fail("control character in string; escape it") }
            out.append(c)
            self.index += 1
        }
    }

    private mutating func parseUnicodeEscape(digits: Int) throws(ConfigError) -> [UInt8] {
        guard self.index + digits <= self.bytes.count else { throw self.fail("truncated unicode escape") }
        var scalar: UInt32 = 0
        for _ in 0..<digits {
            let c = self.bytes[self.index]
            let v: UInt32
            switch c {
            case 0x30...0x39: v = UInt32(c - 0x30)
            case 0x41...0x46: v = UInt32(c - 0x41 + 10)
            case 0x61...0x66: v = UInt32(c - 0x61 + 10)
            default: throw self.fail("bad hex digit in unicode escape")
            }
            scalar = scalar << 4 | v
            self.index += 1
        }
        guard let u = Unicode.Scalar(scalar) else { throw self.fail("unicode escape is not a valid scalar value") }
        return Array(String(Character(u)).utf8)
    }

    private mutating func parseLiteralString() throws(ConfigError) -> String {
        self.index += 1
        let start = self.index
        while true {
            guard let c = self.current else { throw self.fail("unterminated string") }
            if c == 0x27 { break }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw self.fail("control character in string") }
            self.index += 1
        }
        let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        self.index += 1
        return text
    }

    private mutating func parseBoolean() throws(ConfigError) -> ConfigValue {
        for (word, value) in [("true", true), ("false", false)] where self.bytes[self.index...].starts(with: Array(word.utf8)) {
            let after = self.index + word.utf8.count
            if after == self.bytes.count || !Self.isBareKeyByte(self.bytes[after]) {
                self.index = after
                return .boolean(value)
            }
        }
        throw self.fail("expected a value: strings must be quoted")
    }

    private mutating func parseInteger() throws(ConfigError) -> ConfigValue {
        let start = self.index
        var negative = false
        if self.current == 0x2B || self.current == 0x2D {
            negative = self.current == 0x2D
            self.index += 1
        }
        var magnitude: UInt64 = 0
        var digits = 0
        var lastWasUnderscore = false
        while let c = self.current {
            if c >= 0x30 && c <= 0x39 {
                let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(c - 0x30))
                guard !o1, !o2, m2 <= UInt64(Int64.max) + (negative ? 1 : 0) else {
                    self.index = start
                    throw self.fail("integer does not fit in 64 bits")
                }
                magnitude = m2
                digits += 1
                lastWasUnderscore = false
            } else if c == 0x5F && digits > 0 && !lastWasUnderscore {
                lastWasUnderscore = true
            } else {
                break
            }
            self.index += 1
        }
        guard digits > 0, !lastWasUnderscore else { throw self.fail("malformed integer") }
        if let c = self.current, c == 0x2E || c == 0x65 || c == 0x45 || Self.isBareKeyByte(c) {
            self.index = start  // point at the value, not at the character that ended the number
            throw self.fail("only whole numbers are supported; strings must be quoted")
        }
        let firstDigit = self.bytes[start] == 0x2B || self.bytes[start] == 0x2D ? start + 1 : start
        if digits > 1 && self.bytes[firstDigit] == 0x30 {
            throw self.parser.error(line: self.line, column: start + 1, "leading zeros are not allowed")
        }
        if negative {
            return .integer(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        return .integer(Int64(magnitude))
    }

    private mutating func parseArray() throws(ConfigError) -> ConfigValue {
        self.index += 1
        var elements: [ConfigValue] = []
        self.skipSpaces()
        if self.current == 0x5D {
            self.index += 1
            return .array([])
        }
        while true {
            self.skipSpaces()
            guard elements.count < self.parser.limits.maxArrayElements else {
                throw self.fail("array has more than \(self.parser.limits.maxArrayElements) elements")
            }
            elements.append(try self.parseValue(allowArray: false))
            self.skipSpaces()
            guard let c = self.current else { throw self.fail("unterminated array; arrays must fit on one line") }
            self.index += 1
            if c == 0x5D { return .array(elements) }
            guard c == 0x2C else {
                self.index -= 1
                throw self.fail("expected ',' or ']' in array")
            }
            self.skipSpaces()
            if self.current == 0x5D {
                self.index += 1
                return .array(elements)
            }
        }
    }
}
