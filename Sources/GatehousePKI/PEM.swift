import Foundation
public import GatehouseCore
import SwiftASN1

/// PEM armor (RFC 7468), strict: one block of the expected label, standard base64 in lines, and
/// nothing but whitespace around it. Bounded: input past `limit` bytes is refused unread.
public enum PEM {
    public static func encode(_ der: [UInt8], label: String) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [Substring] = []
        var rest = Substring(b64)
        while !rest.isEmpty {
            lines.append(rest.prefix(64))
            rest = rest.dropFirst(64)
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    /// Every block of `label` in `text`, in order (a chain). Other labels are an error.
    public static func decodeAll(_ text: String, label: String, limit: Int = 64 * 1024) throws(GatehouseError) -> [[UInt8]] {
        guard text.utf8.count <= limit else { throw GatehouseError(.inputTooLarge, "the PEM text is over \(limit) bytes") }
        var blocks: [[UInt8]] = []
        var body: String? = nil
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("-----BEGIN ") {
                guard body == nil, line == "-----BEGIN \(label)-----" else {
                    throw GatehouseError(.invalidInput, "expected PEM blocks of \(label), found '\(line.prefix(60))'")
                }
                body = ""
            } else if line.hasPrefix("-----END ") {
                guard let b = body, line == "-----END \(label)-----" else {
                    throw GatehouseError(.invalidInput, "unbalanced PEM block '\(line.prefix(60))'")
                }
                guard let data = Data(base64Encoded: b), !data.isEmpty else {
                    throw GatehouseError(.invalidInput, "the \(label) PEM block is not valid base64")
                }
                blocks.append([UInt8](data))
                body = nil
            } else {
                guard body != nil else { throw GatehouseError(.invalidInput, "text outside a PEM block") }
                guard
                    line.utf8.allSatisfy({
                        ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2F
                            || $0 == 0x3D
                    })
                else {
                    throw GatehouseError(.invalidInput, "the \(label) PEM block holds a character that is not base64")
                }
                body! += line
            }
        }
        guard body == nil else { throw GatehouseError(.invalidInput, "the \(label) PEM block has no END line") }
        guard !blocks.isEmpty else { throw GatehouseError(.invalidInput, "no \(label) PEM block found") }
        return blocks
    }

    public static func decode(_ text: String, label: String, limit: Int = 64 * 1024) throws(GatehouseError) -> [UInt8] {
        let blocks = try Self.decodeAll(text, label: label, limit: limit)
        guard blocks.count == 1 else { throw GatehouseError(.invalidInput, "expected one \(label) PEM block, found \(blocks.count)") }
        return blocks[0]
    }
}

/// DER bytes of a value swift-asn1 can serialize.
enum DERBytes {
    static func of(_ value: some DERSerializable) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }
}
