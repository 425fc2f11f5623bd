import Foundation
import GatehouseCore
import GatehouseHostNetwork
import GatehousePolicy
import GatehouseServices

/// The private network's compile step at the scale: a policy of 10,000 people (one device
/// each) in 100 groups and 1,000 services on 10 hosts, compiled into the gateway's configuration
/// and its nftables text. Writes the files `scripts/bench-network` loads with `nft -f` in a
/// network namespace: the full ruleset, a one-device update, and the same allow list as a flat
/// (source . destination . port) set for comparison.
enum NetworkBench {
    static func run(out: String) throws {
        let plan = MeshAddressing(trustDomain: "bench.example")
        var text = "host gw { org = \"acme\" gateway = true }\n"
        for h in 0..<10 { text += "host h\(h) { org = \"acme\" }\n" }
        for s in 0..<1000 { text += "service s\(s) { to = [h\(s % 10)] ports = [\(10000 + s)/tcp] }\n" }
        for g in 0..<100 {
            text += "group g\(g) { members = [" + (0..<100).map { "u\(g * 100 + $0)" }.joined(separator: ", ") + "] }\n"
            text += "allow reach g\(g)-services { who = [g\(g)] to = [" + (0..<10).map { "service:s\(g * 10 + $0)" }.joined(separator: ", ") + "] }\n"
        }
        let clock = ContinuousClock()
        var started = clock.now
        let policy = try PolicyCompiler(fileName: "bench", addressing: plan).compile(text)
        let compileTime = clock.now - started
        let t0 = Date()
        let registrations = Dictionary(
            uniqueKeysWithValues: try (["gw"] + (0..<10).map { "h\($0)" }).enumerated().map { i, h in
                (
                    h,
                    NetworkHostRecord(
                        host: h, publicKey: try Self.key(1_000_000 + i), endpoint: "192.0.2.\(i + 1):51820", enrolledAt: t0, updatedAt: t0)
                )
            })
        func devices(_ n: Int) throws -> [(address: IPPrefix, device: NetworkDeviceRecord, username: String)] {
            try (1...n).map { i in
                let d = NetworkDeviceRecord(
                    id: "d\(i)", userID: "u\(i - 1)", username: "u\(i - 1)", name: "laptop", publicKey: try Self.key(i),
                    addressIndex: Int64(i), createdAt: t0, expiresAt: t0.addingTimeInterval(3600), revokedAt: nil)
                return (plan.deviceAddress(index: UInt64(i)), d, d.username)
            }
        }
        let all = try devices(10_000)
        var best = Duration.seconds(1000)
        var config: HostNetworkConfig? = nil
        for _ in 0..<5 {
            started = clock.now
            config = try NetworkService.configuration(
                host: "gw", policy: policy, addressing: plan, registrations: registrations, devices: all, keepalive: 25, at: t0)
            best = min(best, clock.now - started)
        }
        guard let config else { return }
        started = clock.now
        let checked = try HostNetworkPlan(config)
        let checkTime = clock.now - started
        started = clock.now
        let (full, state) = NftablesRuleset.full(interface: "wg-bench", mesh: checked.meshPrefix, allow: checked.config.allow)
        let renderTime = clock.now - started
        // One person leaves, one joins another group's class: the update is a handful of elements.
        var changed = all
        changed.removeLast()
        changed.append((plan.deviceAddress(index: 10_001), all[0].device, "u5000"))
        let next = try NetworkService.configuration(
            host: "gw", policy: policy, addressing: plan, registrations: registrations, devices: changed, keepalive: 25, at: t0)
        let (update, _) = NftablesRuleset.update(from: state, to: next.allow)
        // The naive form: one (source . destination . proto . port) element per device and rule.
        var flat =
            "table inet gatehouse {}\ndelete table inet gatehouse\ntable inet gatehouse {\n  set allow {\n    type ipv6_addr . ipv6_addr . inet_proto . inet_service\n    flags interval\n  }\n}\n"
        var elements: [String] = []
        for c in config.allow {
            for s in c.sources { for r in c.rules { elements.append("\(s) . \(r.destination) . \(r.proto) . \(r.low)") } }
        }
        for i in stride(from: 0, to: elements.count, by: 4096) {
            flat += "add element inet gatehouse allow { " + elements[i..<min(i + 4096, elements.count)].joined(separator: ", ") + " }\n"
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try full.write(toFile: out + "/full.nft", atomically: true, encoding: .utf8)
        try (update ?? "").write(toFile: out + "/update.nft", atomically: true, encoding: .utf8)
        try flat.write(toFile: out + "/flat.nft", atomically: true, encoding: .utf8)
        let sources = config.allow.reduce(0) { $0 + $1.sources.count }
        let rules = config.allow.reduce(0) { $0 + $1.rules.count }
        print("")
        print("Private network compile: 10,000 devices in 100 groups, 1,000 services on 10 hosts (gateway's view)")
        print(String(format: "  policy compile                          %8.1f ms", Bench.seconds(compileTime) * 1000))
        print(
            String(
                format: "  configuration (peers, classes, orgs)    %8.1f ms   %d peers, %d classes, %d source + %d rule elements",
                Bench.seconds(best) * 1000, config.peers.count, config.allow.count, sources, rules))
        print(
            String(
                format: "  agent's checks / nftables text          %8.1f / %.1f ms   (%d KiB)", Bench.seconds(checkTime) * 1000,
                Bench.seconds(renderTime) * 1000, full.utf8.count / 1024))
        print(
            String(
                format: "  one-device change                       %d lines of update vs %d elements for a flat (source . destination . port) set",
                (update ?? "").split(separator: "\n").count, elements.count))
    }

    /// A distinct stand-in public key per number.
    static func key(_ n: Int) throws -> WireGuardKey {
        try WireGuardKey(
            base64: Data((0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + Array(repeating: 7, count: 28)).base64EncodedString())
    }
}
