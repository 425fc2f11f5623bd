public import GatehouseCore

/// The code a person types on a second screen in the device authorization grant (RFC 8628
/// §6.1): eight characters from twenty consonants (no vowels, so no words; no look-alike
/// digits), shown as `BCDF-GHJK`. 20^8 ≈ 2^34.6 guesses, with rate limits and a fifteen-minute
/// life in front of them.
public enum UserCode {
    static let alphabet = Array("BCDFGHJKLMNPQRSTVWXZ".utf8)

    public static func generate(using random: some RandomSource) -> String {
        var out: [UInt8] = []
        while out.count < 8 {
            for b in random.bytes(16) where b < 240 && out.count < 8 {  // 240 = 12 * 20: no modulo bias
                out.append(Self.alphabet[Int(b % 20)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func display(_ code: String) -> String { "\(code.prefix(4))-\(code.dropFirst(4))" }

    /// Normalizes what a person typed: case, spaces and dashes do not matter. Nil if it cannot be a code.
    public static func normalize(_ typed: String) -> String? {
        guard typed.utf8.count <= 32 else { return nil }
        let kept = typed.uppercased().utf8.filter { $0 != UInt8(ascii: "-") && $0 != UInt8(ascii: " ") }
        guard kept.count == 8, kept.allSatisfy({ Self.alphabet.contains($0) }) else { return nil }
        return String(decoding: kept, as: UTF8.self)
    }
}
