import Foundation
import GatehouseCore
import GatehousePolicy
import GatehouseServices
import GatehouseTesting
import Testing

/// The private network against every store: device registration (addresses handed out in order
/// and never again, limits, refusals with nothing written), host registration bound to the
/// enrollment, the configuration each host gets from the policy, offboarding and locking, and
/// the long poll answering when something changes.
@Suite("Private network service")
struct NetworkServiceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let policy = """
        group staff { members = [alice] }
        group ops { members = [bob] }
        host gw { org = "acme" gateway = true }
        host a1 { org = "acme" }
        host b1 { org = "beta" }
        host legacy { addresses = [10.0.0.9] }
        allow reach staff-a1 { who = [staff] to = [host:a1] ports = [443, icmp] }
        allow reach ops-a1 { who = [ops] to = [host:a1] ports = [443, icmp] }
        allow reach a1-b1 { who = [host:a1] to = [host:b1] ports = [5432] }
        """
    static let addressing = MeshAddressing(trustDomain: "corp.example")

    static func key(_ n: UInt8) throws -> WireGuardKey { try WireGuardKey(base64: Data(Array(repeating: n, count: 32)).base64EncodedString()) }

    struct Fixture {
        let test: TestStore
        let time: ManualTimeSource
        let network: NetworkService
        let policy: PolicyService
        let alice: User
        let bob: User
    }

    static func fixture(_ kind: TestStoreKind) async throws -> Fixture {
        let test = try await TestStore.make(kind)
        let time = ManualTimeSource(Self.t0)
        let env = ServiceEnvironment(store: test.store, time: time, random: SeededRandomSource(seed: 41))
        let alice = User(id: "u-a", username: Username(uncheckedStored: "alice"), email: nil, role: .member, status: .active, createdAt: Self.t0)
        let bob = User(id: "u-b", username: Username(uncheckedStored: "bob"), email: nil, role: .admin, status: .active, createdAt: Self.t0)
        let admin = User(id: "u-c", username: Username(uncheckedStored: "carol"), email: nil, role: .admin, status: .active, createdAt: Self.t0)
        try await test.store.commit { tx in
            for u in [alice, bob, admin] { try await tx.insertUser(u) }
            for h in ["gw", "a1", "b1"] {
                try await tx.saveHost(HostRecord(name: h, joinTokenHash: nil, joinExpiresAt: nil, joinedAt: Self.t0, createdAt: Self.t0))
            }
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "seed"))
        }
        let policy = PolicyService(environment: env, addressing: Self.addressing)
        _ = try await policy.apply(source: Self.policy, fileName: "t.policy", actor: "test")
        return Fixture(
            test: test, time: time, network: NetworkService(environment: env, policy: policy, settings: .init(maxDevicesPerUser: 2)),
            policy: policy, alice: alice, bob: bob)
    }

    @Test(arguments: TestStoreKind.available)
    func devicesHostsAndConfigurations(_ kind: TestStoreKind) async throws {
        let f = try await Self.fixture(kind)
        defer { Task { await f.test.close() } }
        let net = f.network
        // Nothing to connect to before the gateway's agent registers: refused, nothing written.
        await #expect(throws: GatehouseError.self) { try await net.registerDevice(user: f.alice, publicKey: try Self.key(1), name: "laptop") }
        #expect(try await net.devices(userID: nil, liveOnly: false).isEmpty)

        for (i, h) in ["gw", "a1", "b1"].enumerated() {
            try await net.registerHost(host: h, enrolledAt: Self.t0, publicKey: try Self.key(UInt8(100 + i)), endpoint: "192.0.2.\(i + 1):51820")
        }
        // Registering again with the same key changes nothing (and writes no audit event).
        let events = try await f.test.store.read { tx in try await tx.latestAuditSequence() }
        try await net.registerHost(host: "a1", enrolledAt: Self.t0, publicKey: try Self.key(101), endpoint: "192.0.2.2:51820")
        #expect(try await f.test.store.read { tx in try await tx.latestAuditSequence() } == events)
        // A host off the network, another host's key, a stale enrollment, a bad endpoint.
        await #expect(throws: GatehouseError.self) {
            try await net.registerHost(host: "legacy", enrolledAt: Self.t0, publicKey: try Self.key(99), endpoint: "192.0.2.9:51820")
        }
        await #expect(throws: GatehouseError.self) {
            try await net.registerHost(host: "b1", enrolledAt: Self.t0, publicKey: try Self.key(100), endpoint: "192.0.2.3:51820")
        }
        await #expect(throws: GatehouseError.self) {
            try await net.registerHost(
                host: "b1", enrolledAt: Self.t0.addingTimeInterval(-5), publicKey: try Self.key(98), endpoint: "192.0.2.3:51820")
        }
        for bad in ["192.0.2.3", "192.0.2.3:0", "192.0.2.3:70000", "a b:1", "[10.0.0.1]:1", "host:1x", String(repeating: "a", count: 300) + ":1"] {
            await #expect(throws: GatehouseError.self) {
                try await net.registerHost(host: "b1", enrolledAt: Self.t0, publicKey: try Self.key(98), endpoint: bad)
            }
        }

        // Devices: numbered in order; the gateway is the only peer and routes the mesh.
        let first = try await net.registerDevice(user: f.alice, publicKey: try Self.key(1), name: "laptop")
        #expect(first.device.address == Self.addressing.deviceAddress(index: 1).description)
        #expect(first.device.expiresAt == Self.t0.addingTimeInterval(12 * 3600))
        // A device lives as long as the sign-in behind it; a sign-in near its end cannot add one.
        let signedIn = Self.t0.addingTimeInterval(-11 * 3600)
        await #expect(throws: GatehouseError.self) {
            try await net.registerDevice(
                user: f.bob, publicKey: try Self.key(60), name: "stale", signedInAt: Self.t0.addingTimeInterval(-12 * 3600 + 30))
        }
        let short = try await net.registerDevice(user: f.bob, publicKey: try Self.key(61), name: "short", signedInAt: signedIn)
        #expect(short.device.expiresAt == signedIn.addingTimeInterval(12 * 3600))
        try await net.removeDevice(id: short.device.id, owner: f.bob, actor: "user:bob")
        #expect(first.peers.count == 1 && first.peers[0].label == "host:gw" && first.peers[0].endpoint == "192.0.2.1:51820")
        #expect(first.peers[0].allowedIPs.contains(Self.addressing.organizationPrefix("acme").description))
        #expect(first.peers[0].allowedIPs.contains(Self.addressing.organizationPrefix("beta").description))
        let second = try await net.registerDevice(user: f.bob, publicKey: try Self.key(2), name: "desk")
        #expect(second.device.address == Self.addressing.deviceAddress(index: 3).description)  // 2 was "short"
        for (name, key) in [("bad name", 3), ("", 3), (String(repeating: "x", count: 65), 3)] {
            await #expect(throws: GatehouseError.self) {
                try await net.registerDevice(user: f.alice, publicKey: try Self.key(UInt8(key)), name: name)
            }
        }
        await #expect(throws: GatehouseError.self) { try await net.registerDevice(user: f.bob, publicKey: try Self.key(1), name: "stolen-key") }
        // One key, one peer, across devices and hosts: a device may not claim the gateway's key,
        // nor a host a device's (either would make every configuration carry it twice).
        await #expect(throws: GatehouseError.self) { try await net.registerDevice(user: f.bob, publicKey: try Self.key(100), name: "gw-key") }
        await #expect(throws: GatehouseError.self) {
            try await net.registerHost(host: "b1", enrolledAt: Self.t0, publicKey: try Self.key(1), endpoint: "192.0.2.3:51820")
        }
        _ = try await net.registerDevice(user: f.alice, publicKey: try Self.key(3), name: "phone")
        // The limit.
        await #expect(throws: GatehouseError.self) { try await net.registerDevice(user: f.alice, publicKey: try Self.key(4), name: "third") }
        // A removed device's number is never handed out again.
        try await net.removeDevice(id: first.device.id, owner: f.alice, actor: "user:alice")
        await #expect(throws: GatehouseError.self) { try await net.removeDevice(id: second.device.id, owner: f.alice, actor: "user:alice") }  // bob's
        let fourth = try await net.registerDevice(user: f.alice, publicKey: try Self.key(5), name: "tablet")
        #expect(fourth.device.address == Self.addressing.deviceAddress(index: 5).description)

        // The gateway: every host and every live device as peers; the devices' allow classes.
        let gw = try await net.configuration(host: "gw")
        #expect(gw.forwarding && gw.address == Self.addressing.hostAddress(organization: "acme", host: "gw").description)
        let live = try await net.devices(userID: nil, liveOnly: true)
        #expect(live.count == 3 && live.contains { $0.id == second.device.id } && live.contains { $0.id == fourth.device.id })
        #expect(Set(gw.peers.map(\.label)) == Set(["host:a1", "host:b1"] + live.map { "device:\($0.id)" }))
        let a1 = Self.addressing.hostAddress(organization: "acme", host: "a1").description
        // alice and bob are in different groups with the same reach: one class for all devices.
        let deviceClass = try #require(gw.allow.first { $0.sources.contains(fourth.device.address) })
        #expect(deviceClass.sources.contains(second.device.address))
        #expect(
            Set(deviceClass.rules) == [
                NetworkAllowRule(destination: a1, proto: "icmp", low: 0, high: 0),
                NetworkAllowRule(destination: a1, proto: "tcp", low: 443, high: 443),
            ])
        // The isolation map: each organization (numbered by its subnet), the devices (0), nothing else.
        #expect(
            Set(gw.organizations) == [
                MeshOrganizationPrefix(
                    prefix: Self.addressing.organizationPrefix("acme").description, organization: UInt32(MeshAddressing.subnet(organization: "acme"))),
                MeshOrganizationPrefix(
                    prefix: Self.addressing.organizationPrefix("beta").description, organization: UInt32(MeshAddressing.subnet(organization: "beta"))),
                MeshOrganizationPrefix(prefix: Self.addressing.devicePrefix.description, organization: 0),
            ])
        // A plain host: the other hosts as peers, the gateway carrying the devices' subnet.
        let b1 = try await net.configuration(host: "b1")
        #expect(!b1.forwarding && b1.peers.count == 2)
        #expect(b1.peers.first { $0.label == "host:gw" }?.allowedIPs.contains(Self.addressing.devicePrefix.description) == true)
        #expect(
            b1.allow.count == 1 && b1.allow[0].sources == [a1]
                && b1.allow[0].rules == [NetworkAllowRule(destination: b1.address, proto: "tcp", low: 5432, high: 5432)])
        await #expect(throws: GatehouseError.self) { try await net.configuration(host: "legacy") }

        // Same inputs, same version; a change, a new one, and the long poll answers at once.
        #expect(try await net.configuration(host: "gw").version == gw.version)
        let waiting = Task { try await net.nextConfiguration(host: "gw", after: gw.version, timeout: .seconds(10), interval: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(100))
        let clock = ContinuousClock()
        let started = clock.now
        try await net.removeDevice(id: second.device.id, owner: nil, actor: "admin")
        let changed = try await waiting.value
        #expect(changed.version != gw.version && !changed.peers.contains { $0.label == "device:\(second.device.id)" })
        #expect(clock.now - started < .seconds(2))

        // Locking takes a person's devices off at once; offboarding revokes them.
        try await f.test.store.commit { tx in
            try await tx.updateUserStatus(id: f.alice.id, status: .locked)
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "lock"))
        }
        #expect(try await net.configuration(host: "gw").peers.allSatisfy { !$0.label.hasPrefix("device:") })
        try await f.test.store.commit { tx in
            try await tx.updateUserStatus(id: f.alice.id, status: .active)
            return Change((), event: AuditEvent(code: .userCreated, time: Self.t0, actor: "test", subject: "unlock"))
        }
        let result = try await OffboardingService(
            environment: ServiceEnvironment(store: f.test.store, time: f.time, random: SeededRandomSource(seed: 2))
        )
        .offboard(username: f.alice.username, actor: "test", reason: nil)
        #expect(result.revoked["wireguard_devices"] == 2)
        #expect(try await net.devices(userID: f.alice.id, liveOnly: true).isEmpty)
        // Expiry ends a device without anyone acting.
        let late = try await net.registerDevice(user: f.bob, publicKey: try Self.key(7), name: "late")
        f.time.advance(by: 12 * 3600 + 1)
        #expect(!(try await net.configuration(host: "gw").peers.contains { $0.label == "device:\(late.device.id)" }))
        // Re-enrolling a host forgets its registration: the others drop it.
        let env = ServiceEnvironment(store: f.test.store, time: f.time, random: SeededRandomSource(seed: 5))
        let ssh = SSHCertificateService(
            environment: env, policy: f.policy, userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 4)),
            hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 6)))
        _ = try await HostEnrollmentService(environment: env, policy: f.policy, ssh: ssh).addHost(name: "b1", actor: "test")
        #expect(!(try await net.configuration(host: "gw").peers.contains { $0.label == "host:b1" }))
    }

    @Test
    func theConfigurationIsAPureFunctionOfPolicyAndRegistrations() throws {
        let compiled = try PolicyCompiler(fileName: "t", addressing: Self.addressing).compile(Self.policy)
        let registrations = Dictionary(
            uniqueKeysWithValues: try ["gw", "a1", "b1"].enumerated().map { i, h in
                (
                    h,
                    NetworkHostRecord(
                        host: h, publicKey: try Self.key(UInt8(10 + i)), endpoint: "h\(i):51820", enrolledAt: Self.t0, updatedAt: Self.t0)
                )
            })
        // 10,000 devices in two groups collapse to one class on a1 (same reach), not 10,000 rule lists.
        var devices: [(address: IPPrefix, device: NetworkDeviceRecord, username: String)] = []
        for i in 1...10_000 {
            let d = NetworkDeviceRecord(
                id: "d\(i)", userID: "u", username: i % 2 == 0 ? "alice" : "bob", name: "n", publicKey: try Self.key(1),
                addressIndex: Int64(i), createdAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(3600), revokedAt: nil)
            devices.append((Self.addressing.deviceAddress(index: UInt64(i)), d, d.username))
        }
        let a1 = try NetworkService.configuration(
            host: "a1", policy: compiled, addressing: Self.addressing, registrations: registrations, devices: devices, keepalive: 25, at: Self.t0)
        #expect(a1.allow.count == 1 && a1.allow[0].sources.count == 10_000)
        let again = try NetworkService.configuration(
            host: "a1", policy: compiled, addressing: Self.addressing, registrations: registrations, devices: devices.reversed(), keepalive: 25,
            at: Self.t0)
        #expect(again == a1)
    }
}
