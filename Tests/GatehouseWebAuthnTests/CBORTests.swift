import GatehouseCore
import GatehouseWebAuthn
import Testing

@Suite("CBOR")
struct CBORTests {
    /// RFC 8949 Appendix A examples within the subset WebAuthn uses.
    static let valid: [(String, CBORValue)] = [
        ("00", .unsigned(0)), ("17", .unsigned(23)), ("1818", .unsigned(24)), ("1903e8", .unsigned(1000)),
        ("1bffffffffffffffff", .unsigned(.max)), ("20", .negative(-1)), ("3863", .negative(-100)),
        ("40", .bytes([])), ("4401020304", .bytes([1, 2, 3, 4])), ("60", .text("")), ("6449455446", .text("IETF")),
        ("62c3bc", .text("ü")), ("80", .array([])), ("83010203", .array([.unsigned(1), .unsigned(2), .unsigned(3)])),
        ("a201020304", .map([(.unsigned(1), .unsigned(2)), (.unsigned(3), .unsigned(4))])),
        ("a26161016162820203", .map([(.text("a"), .unsigned(1)), (.text("b"), .array([.unsigned(2), .unsigned(3)]))])),
        ("f4", .bool(false)), ("f5", .bool(true)), ("f6", .null),
    ]

    @Test("RFC 8949 examples decode, and encode back to the same bytes", arguments: valid)
    func roundTrip(hex: String, value: CBORValue) throws {
        let bytes = try #require(Hex.decode(hex))
        #expect(try CBORDecoder().decode(bytes) == value)
        #expect(CBOREncoder.encode(value) == bytes)
    }

    static let malformed: [(String, String)] = [
        ("", "unexpected end"),
        ("18", "unexpected end"),
        ("1c", "reserved additional information"),
        ("5f4101ff", "indefinite lengths"),
        ("9f01ff", "indefinite lengths"),
        ("c11a514b67b0", "tags"),
        ("f7", "simple value or float 23"),
        ("f93c00", "simple value or float 25"),
        ("fb3ff199999999999a", "simple value or float 27"),
        ("62c328", "not valid UTF-8"),
        ("44010203", "runs past the end"),
        ("5b00000000ffffffff", "runs past the end"),
        ("9bffffffffffffffff", "runs past the end"),
        ("bbffffffffffffffff", "runs past the end"),
        ("a2010201 03".replacingOccurrences(of: " ", with: ""), "duplicate map key"),
        ("a1a0 01".replacingOccurrences(of: " ", with: ""), "map keys must be integers or text"),
        ("a1f501", "map keys must be integers or text"),
        ("3bffffffffffffffff", "negative integer out of range"),
        ("0000", "1 bytes after the data item"),
    ]

    @Test("malformed CBOR is refused with a clear reason", arguments: malformed)
    func refused(hex: String, reason: String) throws {
        let bytes = try #require(Hex.decode(hex))
        do {
            let value = try CBORDecoder().decode(bytes)
            Issue.record("decoded \(value)")
        } catch {
            #expect(error.message.contains(reason), "\(error)")
        }
    }

    @Test("nesting, item count and size are bounded")
    func bounds() {
        let deep = Array(repeating: UInt8(0x81), count: 10_000) + [0x00]
        #expect((try? CBORDecoder().decode(deep)) == nil)
        let many = [0x9A, 0x00, 0x00, 0x27, 0x11] + Array(repeating: UInt8(0), count: 10_001)  // array of 10001 zeros
        #expect((try? CBORDecoder().decode(many)) == nil)
        #expect((try? CBORDecoder().decode(Array(repeating: 0, count: 70_000))) == nil)
    }
}
