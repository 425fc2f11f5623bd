public import Foundation

/// A WireGuard public key: 32 bytes, written as 44 characters of standard base64 (what `wg`
/// prints). The all-zero key, which every Curve25519 private key's peer could claim, is refused.
public struct WireGuardKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(base64 text: String) throws(GatehouseError) {
        guard text.utf8.count == 44, text.hasSuffix("="), let data = Data(base64Encoded: text), data.count == 32 else {
            throw GatehouseError(.invalidInput, "'\(text.prefix(60))' is not a WireGuard key (44 characters of base64, 32 bytes)")
        }
        let bytes = [UInt8](data)
        guard bytes.contains(where: { $0 != 0 }) else { throw GatehouseError(.invalidInput, "the all-zero WireGuard key is not a key") }
        // The last character carries 4 bits of the key and 2 of padding, which must be zero: a
        // key has exactly one spelling, so it can be compared as text.
        guard data.base64EncodedString() == text else { throw GatehouseError(.invalidInput, "'\(text)' is not the canonical base64 of its key") }
        self.bytes = bytes
    }

    public var description: String { Data(self.bytes).base64EncodedString() }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(base64: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(self.description)
    }
}
