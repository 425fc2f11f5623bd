import Foundation
import GatehouseCore
import GatehousePolicy
import Testing

@Suite("Network output")
struct PolicyNetworkTests {
    @Test("a node's allow set: per member source, allows minus denies, limited to what the node guards")
    func gatewayAllowSet() throws {
        let p = PolicyFixtures.example
        let now = PolicyFixtures.now
        let members: [(subject: PolicySubject, sources: [IPPrefix])] = [
            (p.subject(user: "carol", now: now), [try IPPrefix(parsing: "10.100.0.7")]),
            (p.subject(user: "erin", now: now), [try IPPrefix(parsing: "10.100.0.9")]),
            (p.subject(user: "alice", now: now), [try IPPrefix(parsing: "10.200.0.1")]),
        ]
        let gateway = p.networkAllowSet(node: "gw-office", members: members, at: PolicyFixtures.now).flatMap(\.nftables)
        let web = p.networkAllowSet(node: "web-1", members: members, at: PolicyFixtures.now).flatMap(\.nftables)
        let text = "gw-office\n" + gateway.joined(separator: "\n") + "\nweb-1\n" + web.joined(separator: "\n") + "\n"
        let (expected, actual) = PolicyFixtures.golden("company.network.txt", text)
        #expect(actual == expected)
        // carol reaches the database network from her device (10.100/16 is allowed); erin is
        // denied it; alice's device is outside the rule's `from` networks.
        #expect(gateway == ["10.100.0.7 . 10.0.5.0/24 . tcp . 5432"])
        #expect(web.contains("10.100.0.9 . 10.0.1.10 . tcp . 443"))
    }

    @Test("a deny punches a hole in a broader allow")
    func denyHole() throws {
        let p = try PolicyFixtures.compile("""
            group eng { members = [u] }
            group temp { members = [u] }
            host gw { addresses = [10.0.0.1] routes = [10.1.0.0/16] }
            allow reach wide { who = [eng] to = [10.1.0.0/16] ports = [1-1024] }
            deny reach hole { who = [temp] to = [10.1.2.0/24] ports = [22] }
            """)
        let set = p.networkAllowSet(node: "gw", members: [(p.subject(user: "u", now: PolicyFixtures.now), [try IPPrefix(parsing: "10.100.0.1")])], at: PolicyFixtures.now)
        let lines = set.flatMap(\.nftables)
        #expect(lines.contains("10.100.0.1 . 10.1.2.0/24 . tcp . 1-21"))
        #expect(lines.contains("10.100.0.1 . 10.1.2.0/24 . tcp . 23-1024"))
        #expect(lines.contains("10.100.0.1 . 10.1.0.0/23 . tcp . 1-1024"))
        #expect(!lines.contains { $0.contains("10.1.2.0/24 . tcp . 1-1024") })
    }
}
