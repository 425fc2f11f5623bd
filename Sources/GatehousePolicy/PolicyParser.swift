/// A bounded, total parser for the policy syntax (``PolicySyntax``). Malformed input gets one
/// diagnostic with file:line:col and never a crash; input size, nesting depth, token length and
/// list sizes are bounded by ``Limits`` so hostile files cannot exhaust memory or stack.
public struct PolicyParser: Sendable {
    public struct Limits: Sendable {
        public var maxBytes = 8 << 20
        public var maxDepth = 12
        public var maxTokenBytes = 4096
        public var maxListElements = 100_000
        public var maxStatements = 1_000_000
        /// Bounds the token array (about 60 bytes each) whatever the text is made of.
        public var maxTokens = 1_000_000
        public static let `default` = Limits()
        public init() {}
    }

    public let fileName: String
    public let limits: Limits

    public init(fileName: String, limits: Limits = .default) {
        self.fileName = fileName
        self.limits = limits
    }

    public func parse(_ text: String) throws(PolicyError) -> [PolicySyntax.Statement] {
        try self.parse(Array(text.utf8))
    }

    public func parse(_ bytes: [UInt8]) throws(PolicyError) -> [PolicySyntax.Statement] {
        let start = PolicyLocation(file: self.fileName, line: 1, column: 1)
        guard bytes.count <= self.limits.maxBytes else {
            throw PolicyError(start, "policy is larger than \(self.limits.maxBytes) bytes")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw PolicyError(start, "policy is not valid UTF-8")
        }
        var lexer = Lexer(bytes: bytes, file: self.fileName, limits: self.limits)
        var tokens = try lexer.tokens()
        tokens.append(Token(kind: .end, text: "", location: tokens.last?.location ?? start))
        var reader = Reader(tokens: tokens, limits: self.limits)
        return try reader.file()
    }
}

struct Token {
    enum Kind: Equatable { case word, string, equals, openBrace, closeBrace, openBracket, closeBracket, comma, newline, end }
    var kind: Kind
    var text: String
    var location: PolicyLocation

    var display: String {
        switch self.kind {
        case .word: return "'\(self.text)'"
        case .string: return "a string"
        case .newline: return "end of line"
        case .end: return "end of file"
        default: return "'\(self.text)'"
        }
    }
}

private struct Lexer {
    let bytes: [UInt8]
    let file: String
    let limits: PolicyParser.Limits
    var index = 0
    var line = 1
    var lineStart = 0

    init(bytes: [UInt8], file: String, limits: PolicyParser.Limits) {
        self.bytes = bytes
        self.file = file
        self.limits = limits
    }

    var location: PolicyLocation { PolicyLocation(file: self.file, line: self.line, column: self.index - self.lineStart + 1) }

    static func isWordByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "@"), UInt8(ascii: "*"),
            UInt8(ascii: "-"), UInt8(ascii: "$"), UInt8(ascii: "+"), UInt8(ascii: "~"), UInt8(ascii: "!"):
            return true
        default: return false
        }
    }

    mutating func tokens() throws(PolicyError) -> [Token] {
        var out: [Token] = []
        while self.index < self.bytes.count {
            guard out.count < self.limits.maxTokens else {
                throw PolicyError(self.location, "policy has more than \(self.limits.maxTokens) tokens")
            }
            let c = self.bytes[self.index]
            let here = self.location
            switch c {
            case 0x20, 0x09, 0x0D:
                self.index += 1
            case 0x0A:
                out.append(Token(kind: .newline, text: "\n", location: here))
                self.index += 1
                self.line += 1
                self.lineStart = self.index
            case UInt8(ascii: "#"):
                while self.index < self.bytes.count && self.bytes[self.index] != 0x0A { self.index += 1 }
            case UInt8(ascii: "="):
                out.append(Token(kind: .equals, text: "=", location: here))
                self.index += 1
            case UInt8(ascii: "{"):
                out.append(Token(kind: .openBrace, text: "{", location: here))
                self.index += 1
            case UInt8(ascii: "}"):
                out.append(Token(kind: .closeBrace, text: "}", location: here))
                self.index += 1
            case UInt8(ascii: "["):
                out.append(Token(kind: .openBracket, text: "[", location: here))
                self.index += 1
            case UInt8(ascii: "]"):
                out.append(Token(kind: .closeBracket, text: "]", location: here))
                self.index += 1
            case UInt8(ascii: ","):
                out.append(Token(kind: .comma, text: ",", location: here))
                self.index += 1
            case UInt8(ascii: ";"):
                out.append(Token(kind: .newline, text: ";", location: here))
                self.index += 1
            case UInt8(ascii: "\""):
                out.append(Token(kind: .string, text: try self.string(), location: here))
            default:
                guard Self.isWordByte(c) else {
                    if c < 0x20 || c == 0x7F { throw PolicyError(here, "control character 0x\(String(c, radix: 16)) is not allowed") }
                    if c >= 0x80 { throw PolicyError(here, "non-ASCII text must be inside a quoted string") }
                    throw PolicyError(here, "unexpected character '\(Character(Unicode.Scalar(c)))'")
                }
                let begin = self.index
                while self.index < self.bytes.count && Self.isWordByte(self.bytes[self.index]) { self.index += 1 }
                guard self.index - begin <= self.limits.maxTokenBytes else {
                    throw PolicyError(here, "word is longer than \(self.limits.maxTokenBytes) bytes")
                }
                out.append(Token(kind: .word, text: String(decoding: self.bytes[begin..<self.index], as: UTF8.self), location: here))
            }
        }
        return out
    }

    private mutating func string() throws(PolicyError) -> String {
        let open = self.location
        self.index += 1
        var value: [UInt8] = []
        while true {
            guard self.index < self.bytes.count, self.bytes[self.index] != 0x0A else {
                throw PolicyError(open, "string is not closed on the same line")
            }
            let c = self.bytes[self.index]
            if c == UInt8(ascii: "\"") {
                self.index += 1
                break
            }
            if c < 0x20 || c == 0x7F { throw PolicyError(self.location, "control character in string; write \\n or \\t") }
            if c == UInt8(ascii: "\\") {
                guard self.index + 1 < self.bytes.count else { throw PolicyError(self.location, "string is not closed") }
                switch self.bytes[self.index + 1] {
                case UInt8(ascii: "\""): value.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): value.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "n"): value.append(0x0A)
                case UInt8(ascii: "t"): value.append(0x09)
                default: throw PolicyError(self.location, "unknown escape; only \\\" \\\\ \\n \\t are allowed")
                }
                self.index += 2
            } else {
                value.append(c)
                self.index += 1
            }
            guard value.count <= self.limits.maxTokenBytes else {
                throw PolicyError(open, "string is longer than \(self.limits.maxTokenBytes) bytes")
            }
        }
        return String(decoding: value, as: UTF8.self)
    }
}

private struct Reader {
    let tokens: [Token]
    let limits: PolicyParser.Limits
    var index = 0
    var statements = 0

    init(tokens: [Token], limits: PolicyParser.Limits) {
        self.tokens = tokens
        self.limits = limits
    }

    var current: Token { self.tokens[self.index] }

    mutating func skipNewlines() {
        while self.current.kind == .newline { self.index += 1 }
    }

    mutating func file() throws(PolicyError) -> [PolicySyntax.Statement] {
        let body = try self.body(depth: 0)
        guard self.current.kind == .end else {
            throw PolicyError(self.current.location, "unexpected \(self.current.display): no block is open here")
        }
        return body
    }

    /// Statements until `}` or end of file (not consumed).
    mutating func body(depth: Int) throws(PolicyError) -> [PolicySyntax.Statement] {
        guard depth <= self.limits.maxDepth else {
            throw PolicyError(self.current.location, "blocks are nested deeper than \(self.limits.maxDepth)")
        }
        var out: [PolicySyntax.Statement] = []
        while true {
            self.skipNewlines()
            if self.current.kind == .closeBrace || self.current.kind == .end { return out }
            self.statements += 1
            guard self.statements <= self.limits.maxStatements else {
                throw PolicyError(self.current.location, "more than \(self.limits.maxStatements) statements")
            }
            out.append(try self.statement(depth: depth))
        }
    }

    mutating func statement(depth: Int) throws(PolicyError) -> PolicySyntax.Statement {
        let first = self.current
        guard first.kind == .word else {
            throw PolicyError(first.location, "expected a name at the start of a statement, found \(first.display)")
        }
        self.index += 1
        if self.current.kind == .equals {
            self.index += 1
            let value = try self.value(depth: depth + 1)
            // `a = 1 b = 2` on one line reads unambiguously; anything else must end the line.
            if !(self.current.kind == .word && self.tokens[self.index + 1].kind == .equals) {
                try self.endOfStatement()
            }
            return .attribute(name: first.text, value: value, location: first.location)
        }
        var words: [String] = []
        while self.current.kind == .word || self.current.kind == .string {
            words.append(self.current.text)
            self.index += 1
            guard words.count <= 64 else { throw PolicyError(first.location, "statement has more than 64 words") }
        }
        if self.current.kind == .openBrace {
            self.index += 1
            let body = try self.body(depth: depth + 1)
            guard self.current.kind == .closeBrace else {
                throw PolicyError(first.location, "block '\(first.text)' is not closed with '}'")
            }
            self.index += 1
            try self.endOfStatement()
            return .block(PolicySyntax.Block(keyword: first.text, labels: words, body: body, location: first.location))
        }
        guard self.current.kind == .newline || self.current.kind == .end || self.current.kind == .closeBrace else {
            throw PolicyError(
                self.current.location, "unexpected \(self.current.display) after '\(first.text)'; expected '=', '{' or the end of the line")
        }
        return .phrase(words: [first.text] + words, location: first.location)
    }

    mutating func endOfStatement() throws(PolicyError) {
        switch self.current.kind {
        case .newline: self.index += 1
        case .end, .closeBrace: break
        default: throw PolicyError(self.current.location, "unexpected \(self.current.display); one statement per line")
        }
    }

    mutating func value(depth: Int) throws(PolicyError) -> PolicySyntax.Value {
        guard depth <= self.limits.maxDepth else {
            throw PolicyError(self.current.location, "values are nested deeper than \(self.limits.maxDepth)")
        }
        let token = self.current
        switch token.kind {
        case .word:
            self.index += 1
            return .word(token.text, token.location)
        case .string:
            self.index += 1
            return .string(token.text, token.location)
        case .openBracket:
            self.index += 1
            var items: [PolicySyntax.Value] = []
            while true {
                self.skipSeparators()
                if self.current.kind == .closeBracket {
                    self.index += 1
                    break
                }
                guard self.current.kind != .end else { throw PolicyError(token.location, "list is not closed with ']'") }
                items.append(try self.value(depth: depth + 1))
                guard items.count <= self.limits.maxListElements else {
                    throw PolicyError(token.location, "list has more than \(self.limits.maxListElements) elements")
                }
                guard [.comma, .newline, .closeBracket].contains(self.current.kind) else {
                    throw PolicyError(self.current.location, "expected ',' or ']' in list, found \(self.current.display)")
                }
            }
            return .list(items, token.location)
        case .openBrace:
            self.index += 1
            var entries: [(key: String, value: PolicySyntax.Value)] = []
            while true {
                self.skipSeparators()
                if self.current.kind == .closeBrace {
                    self.index += 1
                    break
                }
                let key = self.current
                guard key.kind == .word || key.kind == .string else {
                    throw PolicyError(key.location, key.kind == .end ? "map is not closed with '}'" : "expected a key in map, found \(key.display)")
                }
                self.index += 1
                guard self.current.kind == .equals else {
                    throw PolicyError(self.current.location, "expected '=' after map key '\(key.text)'")
                }
                self.index += 1
                entries.append((key.text, try self.value(depth: depth + 1)))
                guard entries.count <= self.limits.maxListElements else {
                    throw PolicyError(token.location, "map has more than \(self.limits.maxListElements) entries")
                }
                guard [.comma, .newline, .closeBrace].contains(self.current.kind) else {
                    throw PolicyError(self.current.location, "expected ',' or '}' in map, found \(self.current.display)")
                }
            }
            return .map(entries, token.location)
        default:
            throw PolicyError(token.location, "expected a value, found \(token.display)")
        }
    }

    mutating func skipSeparators() {
        while self.current.kind == .newline || self.current.kind == .comma { self.index += 1 }
    }
}
