public import GatehouseCore

/// A transport protocol a reach rule can name.
public enum IPProtocolName: String, Sendable, Hashable, Comparable, CaseIterable {
    case tcp, udp, icmp

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Ports and protocol of a reach rule: `443`, `443/tcp`, `8000-8099/udp`, `icmp`, `*` (any).
/// A bare port means TCP.
public struct PortRange: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var proto: IPProtocolName
    public var low: UInt16
    public var high: UInt16

    public init(proto: IPProtocolName, low: UInt16, high: UInt16) {
        self.proto = proto
        self.low = low
        self.high = high
    }

    /// Every port of every protocol, for `*`.
    public static let any: [PortRange] = [
        PortRange(proto: .icmp, low: 0, high: 0),
        PortRange(proto: .tcp, low: 0, high: .max),
        PortRange(proto: .udp, low: 0, high: .max),
    ]

    public static func parse(_ text: String) throws(GatehouseError) -> [PortRange] {
        if text == "*" { return Self.any }
        if text == "icmp" { return [PortRange(proto: .icmp, low: 0, high: 0)] }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var proto = IPProtocolName.tcp
        if parts.count == 2 {
            guard let p = IPProtocolName(rawValue: String(parts[1])), p != .icmp else {
                throw GatehouseError(.invalidInput, "'\(text)': protocol must be tcp or udp")
            }
            proto = p
        }
        if parts[0] == "*" { return [PortRange(proto: proto, low: 0, high: .max)] }
        let bounds = parts[0].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        func port(_ s: Substring) throws(GatehouseError) -> UInt16 {
            guard (1...5).contains(s.count), s.allSatisfy(\.isNumber), let v = UInt16(s), v > 0 else {
                throw GatehouseError(.invalidInput, "'\(text)' is not a port (1–65535), range (LOW-HIGH), '*' or 'icmp'")
            }
            return v
        }
        let low = try port(bounds[0])
        let high = bounds.count == 2 ? try port(bounds[1]) : low
        guard low <= high else { throw GatehouseError(.invalidInput, "'\(text)': range runs backwards") }
        return [PortRange(proto: proto, low: low, high: high)]
    }

    /// A list of ranges as written: `*` for everything, else comma-separated.
    public static func describe(_ ranges: [PortRange]) -> String {
        Set(ranges) == Set(Self.any) ? "*" : ranges.map(\.description).joined(separator: ",")
    }

    public func contains(proto: IPProtocolName, port: UInt16) -> Bool {
        proto == self.proto && (proto == .icmp || (port >= self.low && port <= self.high))
    }

    public var description: String {
        switch self.proto {
        case .icmp: return "icmp"
        default:
            let ports = self.low == 0 && self.high == .max ? "*" : self.low == self.high ? "\(self.low)" : "\(self.low)-\(self.high)"
            return "\(ports)/\(self.proto.rawValue)"
        }
    }

    public static func < (a: Self, b: Self) -> Bool { (a.proto, a.low, a.high) < (b.proto, b.low, b.high) }
}
