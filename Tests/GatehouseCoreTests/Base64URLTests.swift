import Foundation
import GatehouseCore
import Testing

@Suite("base64url")
struct Base64URLTests {
    @Test("encodes like Foundation's base64 with the url-safe alphabet and no padding, and decodes back, for every length")
    func matchesFoundation() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let reference = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == reference)
            #expect(Base64URL.decode(reference) == bytes)
        }
    }

    @Test(
        "refuses padding, the standard alphabet, whitespace, impossible lengths and stray bits",
        arguments: [
            "A", "AAAAA", "AA==", "AA=", "+/8", "ab c", "ab\n", "AB", "AAB", "_-_-_", "é",
        ])
    func refuses(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }
}
