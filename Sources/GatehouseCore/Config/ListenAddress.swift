/// A socket address to listen on: an IP literal (or `localhost`) and a port.
/// Host names other than `localhost` are refused: what a listener binds to must not depend on DNS.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(parsing text: String) throws(GatehouseError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw GatehouseError(.configInvalid, "'\(text)' is not HOST:PORT (IPv6 hosts go in brackets, like [::1]:8080)")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw GatehouseError(.configInvalid, "'\(text)' is not HOST:PORT (IPv6 hosts go in brackets, like [::1]:8080)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            throw GatehouseError(.configInvalid, "'\(text)': port must be a number from 1 to 65535")
        }
        let hostString = String(host)
        guard hostString == "localhost" || IPAddress.isIPv4(hostString) || IPAddress.isIPv6(hostString) else {
            throw GatehouseError(.configInvalid, "'\(text)': host must be an IP address or localhost")
        }
        self.host = hostString
        self.port = port
    }

    /// True for 127.0.0.0/8, ::1 and `localhost`.
    public var isLoopback: Bool { IPAddress.isLoopback(self.host) }

    /// True for 0.0.0.0 and ::.
    public var isWildcard: Bool {
        self.host == "0.0.0.0" || IPAddress.isIPv6(self.host) && IPAddress.ipv6Groups(self.host) == [0, 0, 0, 0, 0, 0, 0, 0]
    }

    /// The host to hand to the socket layer.
    public var bindHost: String { self.host == "localhost" ? "127.0.0.1" : self.host }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}

/// Small, strict IP literal checks (no leading zeros, no zone IDs).
public enum IPAddress {
    public static func isIPv4(_ text: String) -> Bool { ipv4Octets(text) != nil }

    public static func ipv4Octets(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0.isASCII && $0.isNumber }),
                p.count == 1 || p.first != "0", let v = UInt8(p)
            else { return nil }
            out.append(v)
        }
        return out
    }

    public static func isIPv6(_ text: String) -> Bool { ipv6Groups(text) != nil }

    public static func ipv6Groups(_ text: String) -> [UInt16]? {
        guard text.utf8.count <= 45, text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(g.count), let v = UInt16(g, radix: 16), g.allSatisfy(\.isHexDigit) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        if let octets = ipv4Octets(host) { return octets[0] == 127 }
        if let groups = ipv6Groups(host) { return groups == [0, 0, 0, 0, 0, 0, 0, 1] }
        return false
    }
}
