/// Random identifiers for stored records: a 128-bit random value, rendered as a UUID (version 4
/// layout) so it reads familiarly in logs and SQL.
public enum Identifier {
    public static func make(using random: some RandomSource) -> String {
        var b = random.bytes(16)
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = Hex.encode(b)
        let chars = Array(hex)
        return String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16]) + "-"
            + String(chars[16..<20]) + "-" + String(chars[20..<32])
    }
}
