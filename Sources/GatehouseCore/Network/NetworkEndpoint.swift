/// Where a WireGuard peer listens: `HOST:PORT` or `[IPV6]:PORT`, HOST a DNS name or IPv4
/// address of `A-Z a-z 0-9 . -`, port 1–65535, at most 255 bytes. Endpoints end up in `wg`
/// configuration files, so nothing else gets through.
public enum NetworkEndpoint {
    public static func isValid(_ text: String) -> Bool {
        guard text.utf8.count <= 255, let colon = text.lastIndex(of: ":") else { return false }
        let port = text[text.index(after: colon)...]
        guard (1...5).contains(port.count), port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let p = UInt16(port), p > 0 else { return false }
        let host = text[..<colon]
        if host.hasPrefix("[") {
            return host.hasSuffix("]") && (try? IPPrefix(parsing: String(host.dropFirst().dropLast())))?.isSingleAddress == true
                && (try? IPPrefix(parsing: String(host.dropFirst().dropLast())))?.isIPv4 == false
        }
        return !host.isEmpty
            && host.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D
            }
    }
}
