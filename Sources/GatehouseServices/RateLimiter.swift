public import Foundation
public import GatehouseCore

/// Token buckets per key (a source network, an account): `capacity` attempts at once, refilled
/// at `capacity` per `period`. Memory is bounded: past `maxKeys`, buckets that have refilled
/// completely are forgotten (they carry no information), then the oldest.
public final class RateLimiter: Sendable {
    public let capacity: Double
    public let period: TimeInterval
    public let maxKeys: Int
    let time: any TimeSource
    let buckets = LockedBox([String: Bucket]())

    struct Bucket: Sendable {
        var tokens: Double
        var updated: Date
    }

    public init(capacity: Int, per period: TimeInterval, time: any TimeSource, maxKeys: Int = 100_000) {
        self.capacity = Double(capacity)
        self.period = period
        self.time = time
        self.maxKeys = maxKeys
    }

    /// Takes one attempt for `key`. Nil when allowed; otherwise the seconds until one is.
    public func take(_ key: String) -> Int? {
        let now = self.time.now()
        let rate = self.capacity / self.period
        return self.buckets.mutate { table -> Int? in
            var bucket = table[key] ?? Bucket(tokens: self.capacity, updated: now)
            bucket.tokens = min(self.capacity, bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                table[key] = bucket
                return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
            }
            bucket.tokens -= 1
            table[key] = bucket
            // Sweep in batches (past 110% of the bound, down to 90%), so a flood of new keys
            // costs one sweep per tenth of the table, not one per request.
            if table.count > self.maxKeys + self.maxKeys / 10 {
                table = table.filter { $0.value.tokens + now.timeIntervalSince($0.value.updated) * rate < self.capacity }
                let target = self.maxKeys - self.maxKeys / 10
                if table.count > target {
                    for (k, _) in table.sorted(by: { $0.value.updated < $1.value.updated }).prefix(table.count - target) { table[k] = nil }
                }
            }
            return nil
        }
    }

    public var trackedKeys: Int { self.buckets.value.count }

    /// The key for a source address: the address for IPv4, its /64 for IPv6 (one host usually
    /// holds a whole /64).
    public static func sourceKey(_ address: String) -> String {
        guard address.contains(":"), let groups = IPAddress.ipv6Groups(address) else { return "ip:" + address }
        return "ip6:" + groups.prefix(4).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }
}
