public import GatehouseCore
/// A block of packets a filter allows: an address range × one protocol × a port range. Allow
/// sets are unions of boxes; a deny is subtracted box by box, so a compiled set never needs
/// rule order at run time (nftables sets have none).
public struct NetworkBox: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var first: UInt128
    public var last: UInt128
    public var ports: PortRange

    public init(first: UInt128, last: UInt128, ports: PortRange) {
        self.first = first
        self.last = last
        self.ports = ports
    }

    public func intersects(_ o: NetworkBox) -> Bool {
        self.ports.proto == o.ports.proto && self.first <= o.last && o.first <= self.last
            && self.ports.low <= o.ports.high && o.ports.low <= self.ports.high
    }

    func intersection(first: UInt128, last: UInt128) -> NetworkBox? {
        let f = max(self.first, first), l = min(self.last, last)
        return f <= l ? NetworkBox(first: f, last: l, ports: self.ports) : nil
    }

    /// `self` minus `o`: at most four boxes.
    func subtracting(_ o: NetworkBox) -> [NetworkBox] {
        guard self.intersects(o) else { return [self] }
        var out: [NetworkBox] = []
        if self.first < o.first { out.append(NetworkBox(first: self.first, last: o.first - 1, ports: self.ports)) }
        if self.last > o.last { out.append(NetworkBox(first: o.last + 1, last: self.last, ports: self.ports)) }
        let f = max(self.first, o.first), l = min(self.last, o.last)
        if self.ports.low < o.ports.low {
            out.append(NetworkBox(first: f, last: l, ports: PortRange(proto: self.ports.proto, low: self.ports.low, high: o.ports.low - 1)))
        }
        if self.ports.high > o.ports.high {
            out.append(NetworkBox(first: f, last: l, ports: PortRange(proto: self.ports.proto, low: o.ports.high + 1, high: self.ports.high)))
        }
        return out
    }

    /// Every box of `boxes` with every box of `cut` removed.
    public static func subtract(_ boxes: [NetworkBox], _ cut: [NetworkBox]) -> [NetworkBox] {
        var result = boxes
        for c in cut { result = result.flatMap { $0.subtracting(c) } }
        return result
    }

    /// The destination as prefixes, for filters that take prefixes.
    public var prefixes: [IPPrefix] { IPPrefix.covering(self.first...self.last) }

    public var description: String { "\(self.prefixes.map(\.description).joined(separator: ",")) \(self.ports)" }

    public static func < (a: Self, b: Self) -> Bool { (a.ports, a.first, a.last) < (b.ports, b.first, b.last) }
}
