import Foundation
import GatehouseCore
import GatehousePolicy
import Testing

@Suite("Policy values")
struct PolicyValueTests {
    static let prefixes: [(String, String?)] = [
        ("10.0.5.0/24", "10.0.5.0/24"),
        ("10.0.5.7", "10.0.5.7"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00:0:0::/48", "fd00::/48"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::", "::"),
        ("::1", "::1"),
        ("10.0.5.1/24", nil),
        ("10.0.5.0/33", nil),
        ("10.0.5.0/", nil),
        ("10.0.5.0/-1", nil),
        ("010.0.0.1", nil),
        ("1.2.3", nil),
        ("fd00::1::2", nil),
        ("example.org", nil),
    ]

    @Test("prefixes parse strictly and print canonically", arguments: prefixes)
    func prefix(text: String, canonical: String?) {
        #expect((try? IPPrefix(parsing: text))?.description == canonical)
    }

    @Test("a range is covered by the fewest prefixes")
    func covering() throws {
        let a = try IPPrefix(parsing: "10.0.0.1").first
        let b = try IPPrefix(parsing: "10.0.0.6").first
        #expect(IPPrefix.covering(a...b).map(\.description) == ["10.0.0.1", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6"])
        let all = try IPPrefix(parsing: "0.0.0.0/0")
        #expect(IPPrefix.covering(all.range).map(\.description) == ["0.0.0.0/0"])
        #expect(IPPrefix.covering(0...UInt128.max).map(\.description) == ["::/0"])
    }

    static let ports: [(String, String?)] = [
        ("22", "22/tcp"), ("53/udp", "53/udp"), ("8000-8099", "8000-8099/tcp"), ("icmp", "icmp"), ("*/udp", "*/udp"),
        ("0", nil), ("65536", nil), ("20-10", nil), ("22/icmp", nil), ("22/sctp", nil), ("-1", nil), ("", nil), ("1-", nil),
    ]

    @Test("ports and protocols", arguments: ports)
    func port(text: String, canonical: String?) {
        #expect((try? PortRange.parse(text))?.map(\.description).joined(separator: ",") == canonical)
    }

    static let durations: [(String, Int64?)] = [
        ("30s", 30), ("5m", 300), ("8h", 28800), ("7d", 604_800), ("1h30m", 5400),
        ("0s", nil), ("h", nil), ("5", nil), ("5x", nil), ("401d", nil), ("99999999999999h", nil), ("-5m", nil),
    ]

    @Test("durations", arguments: durations)
    func duration(text: String, seconds: Int64?) {
        #expect((try? PolicyDuration.parse(text))?.components.seconds == seconds)
    }

    @Test("durations print back exactly")
    func durationFormat() {
        #expect(PolicyDuration.format(.seconds(5400)) == "1h30m")
        #expect(PolicyDuration.format(.seconds(86400)) == "24h")
        #expect(PolicyDuration.format(.seconds(7 * 86400)) == "7d")
    }

    @Test("box subtraction leaves exactly the difference")
    func boxes() throws {
        let net = try IPPrefix(parsing: "10.0.0.0/24")
        let hole = try IPPrefix(parsing: "10.0.0.16/28")
        let allow = NetworkBox(first: net.first, last: net.last, ports: PortRange(proto: .tcp, low: 1, high: 1000))
        let deny = NetworkBox(first: hole.first, last: hole.last, ports: PortRange(proto: .tcp, low: 22, high: 22))
        let rest = NetworkBox.subtract([allow], [deny])
        // Every point outside the deny stays, every point inside is gone.
        for (address, port) in [("10.0.0.17", UInt16(22)), ("10.0.0.17", 23), ("10.0.0.15", 22), ("10.0.0.32", 22), ("10.0.0.20", 21)] {
            let a = try IPPrefix(parsing: address).first
            let kept = rest.contains { a >= $0.first && a <= $0.last && $0.ports.contains(proto: .tcp, port: port) }
            let denied = hole.contains(a) && port == 22
            #expect(kept == !denied, "\(address):\(port)")
        }
        #expect(
            NetworkBox.subtract([allow], [NetworkBox(first: net.first, last: net.last, ports: PortRange(proto: .udp, low: 1, high: 1000))]) == [allow]
        )
    }
}
