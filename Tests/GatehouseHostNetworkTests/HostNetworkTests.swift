import Foundation
import GatehouseCore
import GatehouseHostNetwork
import Testing

/// The agent's side, without touching the system: the checks a configuration from the server
/// must pass before anything reaches `wg`, `nft` or the BPF map, and the nftables text for full
/// loads and incremental updates. (The live behaviour is tests/integration/test_network.py.)
@Suite("Host network")
struct HostNetworkTests {
    static let plan = MeshAddressing(trustDomain: "corp.example")
    static let key = try! WireGuardKey(base64: Data(Array(repeating: 9, count: 32)).base64EncodedString())

    static func config(
        peers: [WireGuardPeer]? = nil, allow: [NetworkAllowClass]? = nil, address: String? = nil, mesh: String? = nil,
        organizations: [MeshOrganizationPrefix]? = nil, version: String = "00ff"
    ) -> HostNetworkConfig {
        let a1 = Self.plan.hostAddress(organization: "acme", host: "a1").description
        let device = Self.plan.deviceAddress(index: 1).description
        return HostNetworkConfig(
            version: version, host: "a1", organization: "acme", address: address ?? a1, meshPrefix: mesh ?? Self.plan.prefix.description,
            forwarding: false,
            peers: peers ?? [
                WireGuardPeer(
                    publicKey: Self.key, endpoint: "192.0.2.1:51820",
                    allowedIPs: [Self.plan.hostAddress(organization: "acme", host: "gw").description, Self.plan.devicePrefix.description],
                    persistentKeepalive: 25, label: "host:gw")
            ],
            allow: allow ?? [NetworkAllowClass(sources: [device], rules: [NetworkAllowRule(destination: a1, proto: "tcp", low: 443, high: 443)])],
            organizations: organizations ?? [MeshOrganizationPrefix(prefix: Self.plan.organizationPrefix("acme").description, organization: 1)])
    }

    @Test
    func aGoodConfigurationPasses() throws {
        let plan = try HostNetworkPlan(Self.config())
        #expect(plan.address == Self.plan.hostAddress(organization: "acme", host: "a1") && plan.meshPrefix == Self.plan.prefix)
    }

    @Test
    func hostileConfigurationsAreRefusedWhole() {
        let a1 = Self.plan.hostAddress(organization: "acme", host: "a1").description
        let peer = { (endpoint: String?, allowed: [String], label: String) in
            WireGuardPeer(publicKey: Self.key, endpoint: endpoint, allowedIPs: allowed, persistentKeepalive: nil, label: label)
        }
        let rule = NetworkAllowRule(destination: a1, proto: "tcp", low: 1, high: 2)
        let cases: [(String, HostNetworkConfig)] = [
            ("version", Self.config(version: "XYZ; rm")),
            ("mesh not ULA", Self.config(mesh: "2001:db8::/48")),
            ("mesh not /48", Self.config(mesh: "fd00::/32")),
            ("address outside", Self.config(address: "fd99::1")),
            ("address a prefix", Self.config(address: Self.plan.organizationPrefix("acme").description)),
            ("address v4", Self.config(address: "10.0.0.1")),
            ("endpoint", Self.config(peers: [peer("1.2.3.4:51820\nPostUp = rm -rf /", [a1], "host:x")])),
            ("label", Self.config(peers: [peer(nil, [a1], "host:x\n[Peer]")])),
            ("allowed outside", Self.config(peers: [peer(nil, ["::/0"], "host:x")])),
            ("allowed none", Self.config(peers: [peer(nil, [], "host:x")])),
            ("allowed junk", Self.config(peers: [peer(nil, ["fd00::1 ; flush ruleset"], "host:x")])),
            ("duplicate peer", Self.config(peers: [peer(nil, [a1], "a"), peer(nil, [a1], "b")])),
            ("source a prefix", Self.config(allow: [NetworkAllowClass(sources: ["fd00::/64"], rules: [rule])])),
            ("source not canonical", Self.config(allow: [NetworkAllowClass(sources: ["fd00:0::1"], rules: [rule])])),
            (
                "source twice",
                Self.config(allow: [NetworkAllowClass(sources: ["fd00::1"], rules: [rule]), NetworkAllowClass(sources: ["fd00::1"], rules: [rule])])
            ),
            ("no rules", Self.config(allow: [NetworkAllowClass(sources: ["fd00::1"], rules: [])])),
            (
                "protocol",
                Self.config(allow: [
                    NetworkAllowClass(
                        sources: ["fd00::1"], rules: [NetworkAllowRule(destination: a1, proto: "tcp . 1 } ; flush ruleset", low: 1, high: 1)])
                ])
            ),
            (
                "ports backwards",
                Self.config(allow: [
                    NetworkAllowClass(sources: ["fd00::1"], rules: [NetworkAllowRule(destination: a1, proto: "udp", low: 9, high: 1)])
                ])
            ),
            (
                "icmp ports",
                Self.config(allow: [
                    NetworkAllowClass(sources: ["fd00::1"], rules: [NetworkAllowRule(destination: a1, proto: "icmp", low: 1, high: 1)])
                ])
            ),
            (
                "destination junk",
                Self.config(allow: [
                    NetworkAllowClass(sources: ["fd00::1"], rules: [NetworkAllowRule(destination: "}", proto: "tcp", low: 1, high: 1)])
                ])
            ),
            ("organization v4", Self.config(organizations: [MeshOrganizationPrefix(prefix: "10.0.0.0/8", organization: 1)])),
        ]
        for (what, config) in cases {
            #expect(throws: GatehouseError.self, "\(what)") { try HostNetworkPlan(config) }
        }
        let huge = NetworkAllowClass(sources: (0..<2_000_001).map { "fd00::\(String($0, radix: 16))" }.prefix(2_000_001).map { $0 }, rules: [rule])
        #expect(throws: GatehouseError.self) { try HostNetworkPlan(Self.config(allow: [huge])) }
    }

    @Test
    func interfaceNames() {
        for good in ["gatehouse0", "wg-a1", "x"] { #expect(throws: Never.self) { try HostNetworkPlan.checkInterfaceName(good) } }
        for bad in ["", "a-very-long-interface", "wg 0", "wg/0", "..", "wg0;", "lo"] {
            #expect(throws: GatehouseError.self, "\(bad)") { try HostNetworkPlan.checkInterfaceName(bad) }
        }
    }

    @Test
    func rulesetsLoadWholeThenChangeOnlyWhatDiffers() throws {
        let r443 = NetworkAllowRule(destination: "fd00:1::1", proto: "tcp", low: 443, high: 443)
        let ping = NetworkAllowRule(destination: "fd00:1::1", proto: "icmp", low: 0, high: 0)
        let r22 = NetworkAllowRule(destination: "fd00:1::/64", proto: "udp", low: 1000, high: 2000)
        let (text, state) = NftablesRuleset.full(
            interface: "wg-a1", mesh: try IPPrefix(parsing: "fd00::/48"),
            allow: [
                NetworkAllowClass(sources: ["fd00::1", "fd00::2"], rules: [r443, ping]),
                NetworkAllowClass(sources: ["fd00::3"], rules: [r22]),
            ])
        // Replaces the table atomically, and guards only its interface.
        #expect(text.hasPrefix("table inet gatehouse {}\ndelete table inet gatehouse\n"))
        #expect(
            text.contains("iifname vmap { \"wg-a1\" : goto input_mesh, \"lo\" : accept }")
                && text.contains("iifname vmap { \"wg-a1\" : goto forward_mesh, \"lo\" : accept }"))
        #expect(text.contains("counter name dropped_input drop") && text.contains("counter name dropped_forward drop"))
        // Established flows of the current generation pass on one comparison.
        #expect(text.contains("  chain input_mesh {\n    ct mark 0x80000001 accept\n"))
        #expect(text.contains("add element inet gatehouse allow { 1 . fd00:1::1/128 . tcp . 443-443 }"))
        #expect(text.contains("add element inet gatehouse allow_icmp { 1 . fd00:1::1/128 }"))
        #expect(text.contains("add element inet gatehouse allow { 2 . fd00:1::/64 . udp . 1000-2000 }"))
        #expect(text.contains("add element inet gatehouse source_class { fd00::1 : 1, fd00::2 : 1, fd00::3 : 2 }"))
        #expect(state.elementCount == 6)
        // Nothing changed: nothing to load.
        #expect(
            NftablesRuleset.update(
                from: state,
                to: [
                    NetworkAllowClass(sources: ["fd00::1", "fd00::2"], rules: [r443, ping]), NetworkAllowClass(sources: ["fd00::3"], rules: [r22]),
                ]
            ).text == nil)
        // fd00::2 leaves, fd00::4 joins class 2, class 1 loses ping: only those elements move.
        // The changed rule list gets a new number (3); 1 is handed out again only later, so no
        // transaction deletes and re-adds one element.
        let (update, next) = NftablesRuleset.update(
            from: state,
            to: [NetworkAllowClass(sources: ["fd00::1"], rules: [r443]), NetworkAllowClass(sources: ["fd00::3", "fd00::4"], rules: [r22])])
        let lines = (update ?? "").split(separator: "\n").map(String.init)
        var expected: [String] = [
            "delete element inet gatehouse source_class { fd00::1, fd00::2 }",
            "delete element inet gatehouse allow { 1 . fd00:1::1/128 . tcp . 443-443 }",
            "delete element inet gatehouse allow_icmp { 1 . fd00:1::1/128 }",
            "add element inet gatehouse allow { 3 . fd00:1::1/128 . tcp . 443-443 }",
            "add element inet gatehouse source_class { fd00::1 : 3, fd00::4 : 2 }",
        ]
        // Something was withdrawn: a new generation, so established flows are judged again.
        for chain in ["input", "forward"] {
            let rules: [String] = [
                "ct mark 0x80000002 accept",
                "ct direction reply accept",
                "ct state related accept",
                "ct state invalid counter name dropped_\(chain) drop",
                "meta mark set 0x0",
                "meta mark set ip6 saddr map @source_class",
                "meta l4proto { tcp, udp } meta mark . ip6 daddr . meta l4proto . th dport @allow counter name accepted ct mark set 0x80000002 accept",
                "meta l4proto ipv6-icmp meta mark . ip6 daddr @allow_icmp counter name accepted ct mark set 0x80000002 accept",
                "counter name dropped_\(chain) drop",
            ]
            expected.append("flush chain inet gatehouse \(chain)_mesh")
            expected += rules.map { "add rule inet gatehouse \(chain)_mesh \($0)" }
        }
        #expect(lines == expected)
        #expect(lines.contains("add rule inet gatehouse forward_mesh ct mark 0x80000002 accept"))
        #expect(next.generation == 0x8000_0002)
        #expect(next.sources == ["fd00::1": 3, "fd00::3": 2, "fd00::4": 2])
        // Only additions: the generation stays, established flows keep their fast path.
        let (reuse, afterAdd) = NftablesRuleset.update(
            from: next,
            to: [
                NetworkAllowClass(sources: ["fd00::1"], rules: [r443]), NetworkAllowClass(sources: ["fd00::3", "fd00::4"], rules: [r22]),
                NetworkAllowClass(sources: ["fd00::5"], rules: [ping]),
            ])
        #expect(reuse?.contains("add element inet gatehouse allow_icmp { 1 . fd00:1::1/128 }") == true)
        #expect(reuse?.contains("flush chain") == false && afterAdd.generation == next.generation)
        // Everything gone: every element deleted, the table stays (default deny).
        let (empty, _) = NftablesRuleset.update(from: next, to: [])
        #expect(empty?.contains("delete element inet gatehouse source_class { fd00::1, fd00::3, fd00::4 }") == true)
    }

    @Test
    func wireGuardFiles() {
        let peer = WireGuardPeer(
            publicKey: Self.key, endpoint: "192.0.2.1:51820", allowedIPs: ["fd00::1", "fd00::/64"], persistentKeepalive: 25, label: "host:gw")
        let agent = WireGuardConfigFile.agent(privateKey: "PRIVATE", listenPort: 51820, peers: [peer])
        #expect(
            agent
                == "[Interface]\nPrivateKey = PRIVATE\nListenPort = 51820\n\n[Peer]\n# host:gw\nPublicKey = \(Self.key)\nAllowedIPs = fd00::1, fd00::/64\nEndpoint = 192.0.2.1:51820\nPersistentKeepalive = 25\n"
        )
        let device = WireGuardConfigFile.device(privateKey: "PRIVATE", address: "fd00::7/128", peers: [peer])
        #expect(device.hasPrefix("[Interface]\nPrivateKey = PRIVATE\nAddress = fd00::7/128\n\n[Peer]\n"))
    }

    static var canRunNft: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    }

    @Test(.enabled(if: canRunNft, "needs root and nft"))
    func theTextsLoadIntoRealNftables() throws {
        // Every kind of change, applied in sequence to one table in a throwaway network namespace:
        // nftables itself must accept each full load and each update (adds and deletes).
        let a = NetworkAllowRule(destination: "fd00:1::1", proto: "tcp", low: 443, high: 443)
        let b = NetworkAllowRule(destination: "fd00:1::/64", proto: "udp", low: 1000, high: 2000)
        let c = NetworkAllowRule(destination: "fd00:1::2", proto: "icmp", low: 0, high: 0)
        let steps: [[NetworkAllowClass]] = [
            [NetworkAllowClass(sources: ["fd00::1"], rules: [a, c])],
            [NetworkAllowClass(sources: ["fd00::1", "fd00::2"], rules: [a, b, c])],
            [NetworkAllowClass(sources: ["fd00::1"], rules: [a]), NetworkAllowClass(sources: ["fd00::2"], rules: [b, c])],
            [NetworkAllowClass(sources: ["fd00::2"], rules: [b, c])],
            [],
            [NetworkAllowClass(sources: ["fd00::3"], rules: [a])],
        ]
        var (script, state) = NftablesRuleset.full(interface: "wg-test", mesh: try IPPrefix(parsing: "fd00::/48"), allow: steps[0])
        var scripts = [script]
        for step in steps.dropFirst() {
            let (update, next) = NftablesRuleset.update(from: state, to: step)
            scripts.append(update ?? "")
            state = next
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var shell = "set -e\n"
        for (i, text) in scripts.enumerated() where !text.isEmpty {
            try text.write(to: directory.appendingPathComponent("\(i).nft"), atomically: true, encoding: .utf8)
            shell += "nft -f \(directory.path)/\(i).nft\n"
        }
        shell += "nft -s list table inet gatehouse\n"
        let listed = try Command.run("unshare", ["--net", "sh", "-c", shell])
        // Only fd00::3 is left, and its class (whatever its number) allows exactly 443 to fd00:1::1.
        let mark = try #require(listed.range(of: "fd00::3 : ").map { String(listed[$0.upperBound...].prefix(10)) })
        #expect(!listed.contains("fd00::1 :") && !listed.contains("fd00::2 :"), "\(listed)")
        #expect(
            listed.contains("elements = { \(mark) . fd00:1::1 . tcp . 443 }") && !listed.contains("fd00:1::/64") && !listed.contains("fd00:1::2"),
            "\(listed)")
        // The mesh chains were rewritten at each withdrawal: each holds the last generation, once.
        let gen = String(format: "0x%08x", state.generation)
        #expect(state.generation != 0x8000_0001 && listed.components(separatedBy: "ct mark \(gen) accept").count == 3, "\(listed)")
        #expect(
            listed.components(separatedBy: "ct mark set \(gen) accept").count == 5 && listed.components(separatedBy: "ct mark 0x8").count == 3,
            "\(listed)")
    }
}
