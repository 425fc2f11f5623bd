/// An IPv4 or IPv6 prefix (`10.0.5.0/24`, `fd00::/8`; a bare address is a full-length prefix).
/// Both families live in one 128-bit space, IPv4 as `::ffff:a.b.c.d`, so ranges compare and
/// subtract uniformly.
public struct IPPrefix: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let isIPv4: Bool
    /// The first address, in the shared 128-bit space.
    public let base: UInt128
    /// Prefix length in the family's own bits (0–32 or 0–128).
    public let length: Int

    static let v4Mapped: UInt128 = 0xFFFF << 32

    public static let anyIPv4 = IPPrefix(isIPv4: true, base: v4Mapped, length: 0)
    public static let anyIPv6 = IPPrefix(isIPv4: false, base: 0, length: 0)

    init(isIPv4: Bool, base: UInt128, length: Int) {
        self.isIPv4 = isIPv4
        self.base = base
        self.length = length
    }

    /// Parses `ADDRESS` or `ADDRESS/LENGTH`. Host bits below the length must be zero, so a typo
    /// like `10.0.5.1/24` is an error and not a silent widening.
    public init(parsing text: String) throws(GatehouseError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        var value: UInt128 = 0
        let isIPv4: Bool
        if let octets = IPAddress.ipv4Octets(addressText) {
            isIPv4 = true
            value = Self.v4Mapped
            for (i, o) in octets.enumerated() { value |= UInt128(o) << (8 * (3 - i)) }
        } else if let groups = IPAddress.ipv6Groups(addressText) {
            isIPv4 = false
            for g in groups { value = value << 16 | UInt128(g) }
        } else {
            throw GatehouseError(.invalidInput, "'\(text)' is not an IP address or CIDR prefix")
        }
        let bits = isIPv4 ? 32 : 128
        var length = bits
        if parts.count == 2 {
            guard let n = Int(parts[1]), parts[1].allSatisfy(\.isNumber), parts[1].count <= 3, (0...bits).contains(n) else {
                throw GatehouseError(.invalidInput, "'\(text)' has a prefix length outside 0–\(bits)")
            }
            length = n
        }
        let candidate = IPPrefix(isIPv4: isIPv4, base: value, length: length)
        if !isIPv4 && length >= 96 && value >> 32 == 0xFFFF {
            throw GatehouseError(.invalidInput, "'\(text)' is an IPv4-mapped IPv6 address; write it in IPv4 form")
        }
        guard candidate.base & candidate.hostMask == 0 else {
            let fixed = IPPrefix(isIPv4: isIPv4, base: value & ~candidate.hostMask, length: length)
            throw GatehouseError(.invalidInput, "'\(text)' has host bits set; did you mean \(fixed)?")
        }
        self = candidate
    }

    /// The single-address prefix for `value` in the shared space.
    public init(address value: UInt128) {
        let v4 = value >> 32 == 0xFFFF
        self.init(isIPv4: v4, base: value, length: v4 ? 32 : 128)
    }

    var hostMask: UInt128 {
        let bits = self.isIPv4 ? 32 : 128
        let hostBits = bits - self.length
        return hostBits >= 128 ? ~0 : (UInt128(1) << hostBits) - 1
    }

    public var first: UInt128 { self.base }
    public var last: UInt128 { self.base | self.hostMask }
    public var range: ClosedRange<UInt128> { self.first...self.last }
    public var isSingleAddress: Bool { self.length == (self.isIPv4 ? 32 : 128) }

    /// The IPv4 part of the shared space, `::ffff:0:0/96`. IPv6 prefixes never cover it, so an
    /// IPv6 rule such as `::/0` cannot open IPv4 by accident.
    static let mappedRange: ClosedRange<UInt128> = v4Mapped...(v4Mapped | 0xFFFF_FFFF)

    /// The address ranges this prefix covers in the shared space: its own range, minus the
    /// IPv4 part for an IPv6 prefix that spans it.
    public var ranges: [ClosedRange<UInt128>] {
        let own = self.first...self.last
        guard !self.isIPv4, own.overlaps(Self.mappedRange) else { return [own] }
        var out: [ClosedRange<UInt128>] = []
        if own.lowerBound < Self.mappedRange.lowerBound { out.append(own.lowerBound...(Self.mappedRange.lowerBound - 1)) }
        if own.upperBound > Self.mappedRange.upperBound { out.append((Self.mappedRange.upperBound + 1)...own.upperBound) }
        return out
    }

    public func contains(_ address: UInt128) -> Bool {
        address >= self.first && address <= self.last && (self.isIPv4 || !Self.mappedRange.contains(address))
    }

    public func contains(_ other: IPPrefix) -> Bool {
        other.isIPv4 == self.isIPv4 && other.first >= self.first && other.last <= self.last
    }

    public var description: String {
        let text = Self.format(self.base, ipv4: self.isIPv4)
        return self.isSingleAddress ? text : "\(text)/\(self.length)"
    }

    /// Prints an address of the shared space in its family's usual form (RFC 5952 for IPv6).
    public static func format(_ value: UInt128, ipv4: Bool) -> String {
        if ipv4 {
            return (0..<4).map { String(UInt8(truncatingIfNeeded: value >> (8 * (3 - $0)))) }.joined(separator: ".")
        }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: value >> (16 * (7 - $0))) }
        // The longest run of two or more zero groups becomes "::".
        var bestStart = -1
        var bestLength = 1
        var runStart = -1
        for i in 0...8 {
            if i < 8 && groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength {
                    bestStart = runStart
                    bestLength = i - runStart
                }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return "\(head)::\(tail)"
    }

    /// The fewest prefixes that exactly cover `range` (for packet-filter sets that take prefixes).
    public static func covering(_ range: ClosedRange<UInt128>) -> [IPPrefix] {
        var out: [IPPrefix] = []
        var low = range.lowerBound
        let high = range.upperBound
        while true {
            // Largest aligned block starting at `low` that stays within `high`.
            var size = low == 0 ? 128 : low.trailingZeroBitCount
            while size > 0 {
                let span: UInt128 = size >= 128 ? ~0 : (UInt128(1) << size) - 1
                if high - low >= span { break }
                size -= 1
            }
            let v4 = low >> 32 == 0xFFFF && size <= 32
            out.append(IPPrefix(isIPv4: v4, base: low, length: (v4 ? 32 : 128) - size))
            let span: UInt128 = size >= 128 ? ~0 : (UInt128(1) << size) - 1
            if high - low == span { return out }
            low = low + span + 1
        }
    }

    public static func < (a: IPPrefix, b: IPPrefix) -> Bool {
        (a.base, a.length) < (b.base, b.length)
    }
}

extension IPPrefix {
    /// A single address from its network-order bytes (4 or 16), as X.509 IP SANs carry it.
    public init?(addressBytes bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var value: UInt128 = 0
        for b in bytes { value = value << 8 | UInt128(b) }
        self.init(isIPv4: bytes.count == 4, base: bytes.count == 4 ? Self.v4Mapped | value : value, length: bytes.count == 4 ? 32 : 128)
    }

    /// The network-order bytes of the first address (4 for IPv4, 16 for IPv6).
    public var addressBytes: [UInt8] {
        let count = self.isIPv4 ? 4 : 16
        return (0..<count).map { UInt8(truncatingIfNeeded: self.base >> (8 * (count - 1 - $0))) }
    }
}
