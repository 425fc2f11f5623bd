import GatehouseCore
import GatehouseTesting
import Testing

@Suite("Config parser")
struct ConfigParserTests {
    func parse(_ text: String) throws(ConfigError) -> ConfigDocument {
        try ConfigParser(fileName: "g.toml").parse(Array(text.utf8))
    }

    func error(_ text: String) -> ConfigError? {
        do {
            _ = try self.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesTheSupportedSubset() throws {
        let doc = try self.parse(
            """
            # Gatehouse
            listen = "127.0.0.1:8443"   # trailing comment
            data_dir = '/var/lib/gatehouse'
            workers = 4
            negative = -17
            big = 1_000_000
            debug = false
            names = ["a", 'b', "c\\u00e9"]
            empty = []

            [tls]
            cert = "/etc/gatehouse/cert.pem"
            key = "tab\\there"
            """)
        #expect(doc.keys == ["listen", "data_dir", "workers", "negative", "big", "debug", "names", "empty", "tls.cert", "tls.key"])
        #expect(doc["listen"]?.value == .string("127.0.0.1:8443"))
        #expect(doc["listen"]?.line == 2)
        #expect(doc["data_dir"]?.value == .string("/var/lib/gatehouse"))
        #expect(doc["workers"]?.value == .integer(4))
        #expect(doc["negative"]?.value == .integer(-17))
        #expect(doc["big"]?.value == .integer(1_000_000))
        #expect(doc["debug"]?.value == .boolean(false))
        #expect(doc["names"]?.value == .array([.string("a"), .string("b"), .string("cé")]))
        #expect(doc["empty"]?.value == .array([]))
        #expect(doc["tls.cert"]?.line == 12)
        #expect(doc["tls.key"]?.value == .string("tab\there"))
    }

    @Test func acceptsCRLFAndEmptyInput() throws {
        #expect(try self.parse("").keys.isEmpty)
        #expect(try self.parse("a = 1\r\nb = 2\r\n")["b"]?.value == .integer(2))
    }

    @Test func integerBoundaries() throws {
        #expect(try self.parse("a = 9223372036854775807")["a"]?.value == .integer(.max))
        #expect(try self.parse("a = -9223372036854775808")["a"]?.value == .integer(.min))
        #expect(self.error("a = 9223372036854775808")?.message == "integer does not fit in 64 bits")
        #expect(self.error("a = 99999999999999999999999")?.message == "integer does not fit in 64 bits")
    }

    /// Every refusal names its line and column and says what is wrong.
    @Test(arguments: [
        ("listen 127.0.0.1", 1, 8, "expected '=' after key 'listen'"),
        ("a = ", 1, 5, "expected a value after '='"),
        ("a = hello", 1, 5, "expected a value: a \"string\", an integer, true/false or an [array]"),
        ("a = \"open", 1, 10, "unterminated string"),
        ("a = 'open", 1, 10, "unterminated string"),
        ("a = \"\\q\"", 1, 7, "unknown escape sequence '\\q'"),
        ("a = \"\\u12\"", 1, 8, "truncated unicode escape"),
        ("a = \"\\uD800\"", 1, 12, "unicode escape is not a valid scalar value"),
        ("a = 1\na = 2", 2, 1, "key 'a' is defined twice"),
        ("[t]\n[t]", 2, 4, "table [t] is defined twice"),
        ("[a.b]", 1, 3, "nested tables are not supported; use one level, like [tls]"),
        ("[[a]]", 1, 2, "arrays of tables ([[...]]) are not supported"),
        ("a.b = 1", 1, 2, "dotted keys are not supported; use a [table] header"),
        ("\"a\" = 1", 1, 1, "quoted keys are not supported"),
        ("a = 1.5", 1, 5, "only whole numbers are supported; strings must be quoted"),
        ("a = 007", 1, 5, "leading zeros are not allowed"),
        ("a = 1__0", 1, 7, "malformed integer"),
        ("a = [1, [2]]", 1, 9, "nested arrays are not supported"),
        ("a = [1, 2", 1, 10, "unterminated array; arrays must fit on one line"),
        ("a = [1 2]", 1, 8, "expected ',' or ']' in array"),
        ("a = 1 b", 1, 7, "unexpected text after the value; start a comment with '#'"),
        ("a = \"\"\"x\"\"\"", 1, 5, "multi-line strings are not supported"),
        ("a = \"x\u{01}\"", 1, 7, "control character in string; escape it"),
        ("a = truely", 1, 5, "expected a value: strings must be quoted"),
        ("= 1", 1, 1, "expected a key (letters, digits, '_' or '-')"),
        ("[t]\n[x]\n[t]\n", 3, 4, "table [t] is defined twice"),
    ])
    func refusesWithPosition(input: String, line: Int, column: Int, message: String) {
        let error = self.error(input)
        #expect(error?.message == message, "input: \(input)")
        #expect(error?.line == line, "input: \(input)")
        #expect(error?.column == column, "input: \(input)")
    }

    @Test func errorDescriptionNamesFileLineAndColumn() {
        #expect(self.error("\n\nlisten 1")?.description == "g.toml:3:8: expected '=' after key 'listen'")
    }

    @Test func tableNameCollidingWithKeyIsRefused() {
        #expect(self.error("[tls]\ncert = 1\n[other]\n") == nil)
        #expect(self.error("tls = 1\n[tls]\ncert = 2")?.description == "g.toml:2:6: table [tls] conflicts with the key 'tls'")
    }

    @Test func oversizedInputIsRefused() {
        var limits = ConfigParser.Limits()
        limits.maxBytes = 100
        let big = Array(repeating: UInt8(ascii: "#"), count: 101)
        #expect(throws: ConfigError.self) { try ConfigParser(fileName: "g", limits: limits).parse(big) }

        let longLine = "a = \"" + String(repeating: "x", count: 20_000) + "\""
        #expect(self.error(longLine)?.message == "line is longer than 16384 bytes")

        var few = ConfigParser.Limits()
        few.maxKeys = 3
        let many = (0..<4).map { "k\($0) = 1" }.joined(separator: "\n")
        #expect(throws: ConfigError.self) { try ConfigParser(fileName: "g", limits: few).parse(Array(many.utf8)) }

        let wide = "a = [" + Array(repeating: "1", count: 1025).joined(separator: ",") + "]"
        #expect(self.error(wide)?.message == "array has more than 1024 elements")
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: ConfigError.self) { try ConfigParser(fileName: "g").parse([0x61, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22]) }
    }

    /// Hostile input: random bytes and mutations of a valid file either parse or throw; never crash or hang.
    @Test func randomInputNeverCrashes() {
        let random = SeededRandomSource(seed: 42)
        let seed = Array("listen = \"127.0.0.1:80\"\n[tls]\ncert = 'x' # c\nn = [1, -2, \"\\u0041\"]\n".utf8)
        let alphabet = Array("[]=\"'#\\.,-_ \n\tu0aZ9".utf8)
        for round in 0..<3000 {
            var input: [UInt8]
            if round % 2 == 0 {
                input = random.bytes(Int(random.bytes(1)[0]))
            } else {
                input = seed
                for _ in 0..<(1 + Int(random.bytes(1)[0] % 6)) {
                    let position = Int(random.bytes(2).withUnsafeBytes { $0.load(as: UInt16.self) }) % (input.count + 1)
                    let byte = alphabet[Int(random.bytes(1)[0]) % alphabet.count]
                    if random.bytes(1)[0] % 2 == 0, position < input.count { input[position] = byte } else { input.insert(byte, at: position) }
                }
            }
            _ = try? ConfigParser(fileName: "fuzz").parse(input)
        }
    }
}
