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
        let f = max(self.first, first)
        let l = min(self.last, last)
        return f <= l ? NetworkBox(first: f, last: l, ports: self.ports) : nil
    }

    /// `self` minus `o`: at most four boxes.
    func subtracting(_ o: NetworkBox) -> [NetworkBox] {
        guard self.intersects(o) else { return [self] }
        var out: [NetworkBox] = []
        if self.first < o.first { out.append(NetworkBox(first: self.first, last: o.first - 1, ports: self.ports)) }
        if self.last > o.last { out.append(NetworkBox(first: o.last + 1, last: self.last, ports: self.ports)) }
        let f = max(self.first, o.first)
        let l = min(self.last, o.last)
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

    /// The same packets as `boxes`, as boxes that do not overlap: per protocol, a sweep over the
    /// address boundaries that unions the port ranges of each stretch, then joins neighbouring
    /// stretches with equal ports. Sorted.
    public static func disjoint(_ boxes: [NetworkBox]) -> [NetworkBox] {
        var out: [NetworkBox] = []
        for proto in IPProtocolName.allCases {
            let mine = boxes.filter { $0.ports.proto == proto }
            guard !mine.isEmpty else { continue }
            // Boundaries: every box's start, and the address after its end (none past the top).
            var cuts = Set<UInt128>()
            for b in mine {
                cuts.insert(b.first)
                if b.last < .max { cuts.insert(b.last + 1) }
            }
            let points = cuts.sorted()
            var previous: (first: UInt128, last: UInt128, ports: [ClosedRange<UInt16>])? = nil
            for (i, start) in points.enumerated() {
                let end = i + 1 < points.count ? points[i + 1] - 1 : UInt128.max
                let covering = mine.filter { $0.first <= start && start <= $0.last }.map { $0.ports.low...$0.ports.high }.sorted {
                    $0.lowerBound < $1.lowerBound
                }
                var ports: [ClosedRange<UInt16>] = []
                for r in covering {
                    if let last = ports.last, Int(r.lowerBound) <= Int(last.upperBound) + 1 {
                        ports[ports.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
                    } else {
                        ports.append(r)
                    }
                }
                if let p = previous, p.ports == ports, p.last &+ 1 == start, !ports.isEmpty {
                    previous = (p.first, end, ports)
                    continue
                }
                if let p = previous {
                    out += p.ports.map {
                        NetworkBox(first: p.first, last: p.last, ports: PortRange(proto: proto, low: $0.lowerBound, high: $0.upperBound))
                    }
                }
                previous = ports.isEmpty ? nil : (start, end, ports)
            }
            if let p = previous {
                out += p.ports.map {
                    NetworkBox(first: p.first, last: p.last, ports: PortRange(proto: proto, low: $0.lowerBound, high: $0.upperBound))
                }
            }
        }
        return out.sorted()
    }
}
