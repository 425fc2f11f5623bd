import Foundation
import GatehouseCore
import GatehouseServices
import Testing

@Suite("Rate limiter")
struct RateLimiterTests {
    @Test("a bucket allows its capacity at once, then refills at capacity per period and says how long to wait")
    func buckets() {
        let time = ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000))
        let limiter = RateLimiter(capacity: 10, per: 300, time: time)
        for _ in 0..<10 { #expect(limiter.take("user:alice") == nil) }
        #expect(limiter.take("user:alice") == 30)
        #expect(limiter.take("user:bob") == nil, "keys are independent")
        time.advance(by: 29)
        #expect(limiter.take("user:alice") == 1)
        time.advance(by: 1)
        #expect(limiter.take("user:alice") == nil)
        time.advance(by: 10_000)
        for _ in 0..<10 { #expect(limiter.take("user:alice") == nil) }
        #expect(limiter.take("user:alice") != nil, "idle time refills only up to capacity")
    }

    @Test("memory stays bounded under a flood of distinct keys")
    func bounded() {
        let time = ManualTimeSource(Date(timeIntervalSince1970: 1_800_000_000))
        let limiter = RateLimiter(capacity: 5, per: 60, time: time, maxKeys: 1000)
        for i in 0..<5000 { _ = limiter.take("ip:10.0.\(i / 256).\(i % 256)") }
        #expect(limiter.trackedKeys <= 1100, "swept in batches: never more than 110% of the bound")
    }

    @Test("IPv6 sources share a bucket per /64; IPv4 per address")
    func keys() {
        #expect(RateLimiter.sourceKey("2001:db8:1:2:aaaa::1") == RateLimiter.sourceKey("2001:db8:1:2:bbbb::9"))
        #expect(RateLimiter.sourceKey("2001:db8:1:2::1") != RateLimiter.sourceKey("2001:db8:1:3::1"))
        #expect(RateLimiter.sourceKey("192.0.2.1") == "ip:192.0.2.1")
    }
}
