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
        let p = try PolicyFixtures.compile(
            """
            group eng { members = [u] }
            group temp { members = [u] }
            host gw { addresses = [10.0.0.1] routes = [10.1.0.0/16] }
            allow reach wide { who = [eng] to = [10.1.0.0/16] ports = [1-1024] }
            deny reach hole { who = [temp] to = [10.1.2.0/24] ports = [22] }
            """)
        let set = p.networkAllowSet(
            node: "gw", members: [(p.subject(user: "u", now: PolicyFixtures.now), [try IPPrefix(parsing: "10.100.0.1")])], at: PolicyFixtures.now)
        let lines = set.flatMap(\.nftables)
        #expect(lines.contains("10.100.0.1 . 10.1.2.0/24 . tcp . 1-21"))
        #expect(lines.contains("10.100.0.1 . 10.1.2.0/24 . tcp . 23-1024"))
        #expect(lines.contains("10.100.0.1 . 10.1.0.0/23 . tcp . 1-1024"))
        #expect(!lines.contains { $0.contains("10.1.2.0/24 . tcp . 1-1024") })
    }

    static let plan = MeshAddressing(trustDomain: "corp.example")

    @Test("hosts with an organization get their mesh address; gateways guard every organization")
    func meshHosts() throws {
        let p = try PolicyCompiler(fileName: "t", addressing: Self.plan).compile(
            """
            group eng { members = [u] }
            host gw { org = "acme" gateway = true routes = [10.9.0.0/16] }
            host a1 { org = "acme" addresses = [10.0.0.1] }
            host b1 { org = "beta" }
            host plain { addresses = [10.0.0.2] }
            allow reach eng-a1 { who = [eng] to = [host:a1] ports = [443] }
            allow reach a1-b1 { who = [host:a1] to = [host:b1] ports = [5432] }
            """)
        let hosts = Dictionary(uniqueKeysWithValues: p.definitions.hosts.map { ($0.name, $0) })
        let a1 = Self.plan.hostAddress(organization: "acme", host: "a1")
        let declared = try IPPrefix(parsing: "10.0.0.1")
        #expect(hosts["a1"]?.meshAddress == a1 && hosts["a1"]?.addresses == [declared, a1])
        #expect(hosts["b1"]?.addresses == [Self.plan.hostAddress(organization: "beta", host: "b1")])
        #expect(hosts["plain"]?.meshAddress == nil && hosts["plain"]?.organization == nil)
        #expect(hosts["gw"]?.gateway == true)
        let lan = try IPPrefix(parsing: "10.9.0.0/16")
        #expect(Set(hosts["gw"]?.routes ?? []) == [lan, Self.plan.organizationPrefix("acme"), Self.plan.organizationPrefix("beta")])
        // A device reaches a1's mesh address through the gateway; a1 (a host) reaches b1.
        let device = Self.plan.deviceAddress(index: 7)
        let through = p.networkAllowSet(node: "gw", members: [(p.subject(user: "u", now: PolicyFixtures.now), [device])], at: PolicyFixtures.now)
            .flatMap(\.nftables)
        #expect(through == ["\(device) . \(a1) . tcp . 443"])
        let onB1 = p.networkAllowSet(node: "b1", members: [(p.subject(host: "a1"), [a1])], at: PolicyFixtures.now).flatMap(\.nftables)
        #expect(onB1 == ["\(a1) . \(Self.plan.hostAddress(organization: "beta", host: "b1")) . tcp . 5432"])
    }

    @Test("organization and gateway mistakes are compile errors")
    func meshMistakes() {
        for (text, message) in [
            ("host gw { gateway = true addresses = [10.0.0.1] }", "needs org"),
            ("host a { org = \"Bad Org\" }", "org 'Bad Org'"),
            ("host a { }", "needs addresses"),
            ("host a { org = \"x\" gateway = \"yes\" }", "gateway"),
            ("host a { org = \"x\" mesh = true }", "mesh"),
            ("host g { org = \"x\" gateway = true routes = [fd00:0:0:5::/64] }", "overlaps the private network"),
        ] {
            #expect(throws: PolicyError.self, "\(text)") { try PolicyCompiler(fileName: "t").compile(text) }
            do { _ = try PolicyCompiler(fileName: "t").compile(text) } catch {
                #expect(error.description.contains(message), "\(text): \(error.description)")
            }
        }
    }

    @Test("disjoint boxes cover exactly the same packets as the overlapping ones", arguments: 0..<20)
    func disjoint(seed: Int) {
        var rng = PolicyGenerator(state: UInt64(seed) + 1)
        var boxes: [NetworkBox] = []
        for _ in 0..<Int(rng.next() % 12 + 1) {
            let first = UInt128(rng.next() % 64)
            let last = first + UInt128(rng.next() % 16)
            let low = UInt16(rng.next() % 40)
            let high = low + UInt16(rng.next() % 20)
            let proto: IPProtocolName = [.tcp, .udp, .icmp][Int(rng.next() % 3)]
            boxes.append(
                NetworkBox(first: first, last: last, ports: PortRange(proto: proto, low: proto == .icmp ? 0 : low, high: proto == .icmp ? 0 : high)))
        }
        let result = NetworkBox.disjoint(boxes)
        for (i, a) in result.enumerated() {
            for b in result[(i + 1)...] { #expect(!a.intersects(b), "\(a) overlaps \(b)") }
        }
        for address in UInt128(0)..<UInt128(82) {
            for port in UInt16(0)..<UInt16(62) {
                for proto in IPProtocolName.allCases {
                    let before = boxes.contains {
                        $0.first <= address && address <= $0.last && $0.ports.proto == proto && $0.ports.low <= port && port <= $0.ports.high
                    }
                    let after = result.contains {
                        $0.first <= address && address <= $0.last && $0.ports.proto == proto && $0.ports.low <= port && port <= $0.ports.high
                    }
                    #expect(before == after)
                }
            }
        }
    }

    @Test("sources with the same reach share one class")
    func classes() throws {
        let p = try PolicyCompiler(fileName: "t", addressing: Self.plan).compile(
            """
            group eng { members = [u, v] }
            group ops { members = [w] }
            host a1 { org = "acme" }
            allow reach eng-a1 { who = [eng] to = [host:a1] ports = [443, 400-500, icmp] }
            allow reach ops-a1 { who = [ops] to = [host:a1] ports = [22] }
            """)
        let now = PolicyFixtures.now
        let d = (1...4).map { Self.plan.deviceAddress(index: UInt64($0)) }
        let classes = p.networkAllowClasses(
            node: "a1",
            members: [
                (p.subject(user: "u", now: now), [d[0], d[1]]), (p.subject(user: "v", now: now), [d[2]]),
                (p.subject(user: "w", now: now), [d[3]]), (p.subject(user: "nobody", now: now), [Self.plan.deviceAddress(index: 9)]),
            ], at: now)
        #expect(classes.count == 2)
        let eng = try #require(classes.first { $0.sources.count == 3 })
        #expect(eng.sources == [d[0], d[1], d[2]])
        // 443 lies inside 400-500: merged, never two overlapping elements.
        #expect(eng.boxes.map(\.ports.description).sorted() == ["400-500/tcp", "icmp"])
        #expect(classes.first { $0.sources == [d[3]] }?.boxes.map(\.ports.description) == ["22/tcp"])
    }
}
