public import Foundation
public import GatehouseCore
public import GatehousePolicy

/// The private network (docs/network.md): people's WireGuard devices, hosts' WireGuard
/// registrations, and the configuration each host's agent enforces, computed from the policy.
///
/// Nothing here touches an interface or a packet filter: the server computes, the agent applies.
/// A configuration carries a digest (`version`) of everything in it, so an agent can long-poll
/// for "anything different from what I have" and the server can answer as soon as it differs.
public final class NetworkService: Sendable {
    public struct Settings: Sendable {
        /// How long a device stays on the network after `gatehouse wg up` (the sign-in's length).
        public var deviceLifetime: TimeInterval
        /// Live devices one person may hold at once.
        public var maxDevicesPerUser: Int
        public var persistentKeepalive: Int

        public init(deviceLifetime: TimeInterval = 12 * 3600, maxDevicesPerUser: Int = 16, persistentKeepalive: Int = 25) {
            self.deviceLifetime = deviceLifetime
            self.maxDevicesPerUser = maxDevicesPerUser
            self.persistentKeepalive = persistentKeepalive
        }
    }

    public let settings: Settings
    let environment: ServiceEnvironment
    let policy: PolicyService

    public init(environment: ServiceEnvironment, policy: PolicyService, settings: Settings = Settings()) {
        self.environment = environment
        self.policy = policy
        self.settings = settings
    }

    public var addressing: MeshAddressing { self.policy.addressing }

    /// Longest a device name may be; names are for people reading `wg devices`.
    public static let maxNameLength = 64

    static func validName(_ name: String) -> Bool {
        (1...Self.maxNameLength).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
            }
    }

    // MARK: people's devices

    /// Registers `publicKey` (made on the device; its private half never leaves it) under
    /// `user`, with the next device address, and returns the device's configuration. The device
    /// lives as long as the sign-in it was registered with: `deviceLifetime` from `signedInAt`
    /// (the person's authentication time), so an old sign-in cannot mint a fresh 12 hours.
    public func registerDevice(user: User, publicKey: WireGuardKey, name: String, signedInAt: Date? = nil, grantID: String? = nil) async throws
        -> DeviceNetworkConfig
    {
        guard Self.validName(name) else {
            throw GatehouseError(.invalidInput, "a device name is 1–\(Self.maxNameLength) of A-Z a-z 0-9 . _ -")
        }
        let env = self.environment
        let signIn = min(signedInAt ?? env.time.now(), env.time.now())
        guard signIn.addingTimeInterval(self.settings.deviceLifetime - 60) > env.time.now() else {
            throw GatehouseError(.unauthenticated, "this sign-in is too old to put a device on the network; sign in again (gatehouse login)")
        }
        let compiled = self.policy.active.policy
        guard let gateway = compiled.definitions.hosts.filter(\.gateway).min(by: { $0.name < $1.name }) else {
            throw GatehouseError(.notFound, "the policy has no gateway (a host with gateway = true); there is nothing for a device to connect to")
        }
        // The gateway must be there before anything is written: a device with nothing to
        // connect to would only hold an address.
        let peers = try await self.devicePeers(gateway: gateway, compiled: compiled)
        let lifetime = self.settings.deviceLifetime
        let limit = self.settings.maxDevicesPerUser
        for attempt in 0..<5 {
            let now = env.time.now()
            let id = Identifier.make(using: env.random)
            do {
                let record = try await env.store.commit { tx -> Change<NetworkDeviceRecord> in
                    // Under the account lock: an offboarding that commits first leaves nothing to
                    // register under, one that commits later revokes this device with the rest.
                    try await tx.lockAccountChanges()
                    guard let current = try await tx.user(id: user.id), current.status == .active else {
                        throw GatehouseError(.forbidden, "the account is not active")
                    }
                    try await SessionCut.requireLiveGrant(grantID, in: tx, at: now)
                    let live = try await tx.networkDevices(userID: user.id, liveAt: now)
                    guard live.count < limit else {
                        throw GatehouseError(
                            .conflict,
                            "\(user.username) already has \(live.count) devices on the network (the limit); remove one with gatehouse wg remove")
                    }
                    // A key is one peer's, anywhere on the network, and is registered once.
                    guard try await tx.networkDevice(publicKey: publicKey) == nil,
                        try await !tx.networkHosts().contains(where: { $0.publicKey == publicKey })
                    else {
                        throw GatehouseError(.conflict, "that WireGuard key is already registered; make a new key for a new device")
                    }
                    let index = try await tx.maxNetworkDeviceIndex() + 1
                    let record = NetworkDeviceRecord(
                        id: id, userID: user.id, username: user.username.rawValue, name: name, publicKey: publicKey,
                        addressIndex: index, createdAt: now, expiresAt: signIn.addingTimeInterval(lifetime), revokedAt: nil,
                        grantID: grantID)
                    do {
                        try await tx.insertNetworkDevice(record)
                    } catch let error as GatehouseError where error.code == .conflict {
                        throw NumberTaken()  // the key was checked above: only the number can clash
                    }
                    return Change(
                        record,
                        event: AuditEvent(
                            code: .networkDeviceRegistered, time: now, actor: .user(user.username), subject: .device(id),
                            details: [
                                "name": name, "public_key": publicKey.description, "address": self.address(of: record).description,
                                "expires_at": ISO8601DateFormatter().string(from: record.expiresAt),
                            ]))
                }
                return DeviceNetworkConfig(device: self.view(record), peers: peers)
            } catch is NumberTaken where attempt < 4 {
                continue  // another registration took the same number at the same moment
            }
        }
        throw GatehouseError(.conflict, "could not allocate a device address; try again")
    }

    /// A concurrent registration took the device number (the only retried conflict).
    struct NumberTaken: Error {}

    func address(of device: NetworkDeviceRecord) -> IPPrefix { self.addressing.deviceAddress(index: UInt64(device.addressIndex)) }

    func view(_ d: NetworkDeviceRecord) -> NetworkDevice {
        NetworkDevice(
            id: d.id, username: d.username, name: d.name, publicKey: d.publicKey, address: self.address(of: d).description,
            createdAt: d.createdAt, expiresAt: d.expiresAt, revokedAt: d.revokedAt)
    }

    /// A device's peer: the gateway, routing the mesh and the gateway's own routes.
    func devicePeers(gateway: PolicyDefinitions.Host, compiled: CompiledPolicy) async throws -> [WireGuardPeer] {
        let registration = try await self.environment.store.read { tx in try await self.registeredHosts(tx, compiled: compiled)[gateway.name] }
        guard let registration else {
            throw GatehouseError(.notFound, "gateway \(gateway.name) has not joined the network yet (its agent registers it)")
        }
        return [
            WireGuardPeer(
                publicKey: registration.publicKey, endpoint: registration.endpoint,
                allowedIPs: Self.gatewayRoutes(gateway, addressing: self.addressing),
                persistentKeepalive: self.settings.persistentKeepalive, label: "host:\(gateway.name)")
        ]
    }

    /// What a device routes through its gateway: the gateway, every organization's /64 and the
    /// gateway's own routes (without repeats).
    static func gatewayRoutes(_ gateway: PolicyDefinitions.Host, addressing: MeshAddressing) -> [String] {
        var routes: [IPPrefix] = gateway.meshAddress.map { [$0] } ?? []
        for r in gateway.routes where !routes.contains(where: { $0.contains(r) }) { routes.append(r) }
        return routes.map(\.description)
    }

    public func devices(userID: String?, liveOnly: Bool) async throws -> [NetworkDevice] {
        let now = self.environment.time.now()
        return try await self.environment.store.read { tx in try await tx.networkDevices(userID: userID, liveAt: liveOnly ? now : nil) }.map(
            self.view)
    }

    /// Removes a device: its owner's (`owner` set) or, for an administrator, anyone's.
    public func removeDevice(id: String, owner: User?, actor: String) async throws {
        let now = self.environment.time.now()
        try await self.environment.store.commit { tx -> Change<Void> in
            guard let d = try await tx.networkDevice(id: id), owner.map({ d.userID == $0.id }) ?? true else {
                throw GatehouseError(.notFound, "there is no device \(id.prefix(64))")
            }
            guard try await tx.revokeNetworkDevice(id: id, at: now) else { throw GatehouseError(.conflict, "device \(id) is already removed") }
            return Change(
                (),
                event: AuditEvent(
                    code: .networkDeviceRemoved, time: now, actor: .stored(actor), subject: .device(id),
                    details: ["user": d.username, "name": d.name]))
        }
    }

    // MARK: hosts

    /// Records the WireGuard key and endpoint of a host's agent (identified over mutual TLS, of
    /// the host's current enrollment). The host must be on the network in the policy.
    public func registerHost(host: String, enrolledAt: Date, publicKey: WireGuardKey, endpoint: String) async throws {
        try Self.checkEndpoint(endpoint)
        guard let definition = self.policy.active.policy.definitions.hosts.first(where: { $0.name == host }), definition.organization != nil else {
            throw GatehouseError(.forbidden, "host \(host) is not on the private network: give it org = \"...\" in the policy")
        }
        let now = self.environment.time.now()
        // An agent registers at every start: the same key and endpoint again change nothing.
        let previous = try await self.environment.store.read { tx in try await tx.networkHosts().first { $0.host == host } }
        if let previous, previous.publicKey == publicKey, previous.endpoint == endpoint, PKIService.sameInstant(previous.enrolledAt, enrolledAt) {
            return
        }
        try await self.environment.store.commit { tx -> Change<Void> in
            guard let record = try await tx.host(named: host), let joined = record.joinedAt, PKIService.sameInstant(joined, enrolledAt) else {
                throw GatehouseError(.forbidden, "host \(host) has been enrolled again since this agent joined")
            }
            guard try await tx.networkDevice(publicKey: publicKey) == nil else {
                throw GatehouseError(.conflict, "that WireGuard key belongs to a device")
            }
            try await tx.saveNetworkHost(NetworkHostRecord(host: host, publicKey: publicKey, endpoint: endpoint, enrolledAt: joined, updatedAt: now))
            return Change(
                (),
                event: AuditEvent(
                    code: .networkHostRegistered, time: now, actor: .host(host), subject: .host(host),
                    details: ["public_key": publicKey.description, "endpoint": endpoint]))
        }
    }

    /// `agent leave`: forgets the host's registration, so no peer keeps it.
    public func deregisterHost(host: String, enrolledAt: Date) async throws {
        let now = self.environment.time.now()
        try await self.environment.store.commit { tx -> Change<Void> in
            guard let record = try await tx.host(named: host), let joined = record.joinedAt, PKIService.sameInstant(joined, enrolledAt) else {
                throw GatehouseError(.forbidden, "host \(host) has been enrolled again since this agent joined")
            }
            guard try await tx.deleteNetworkHost(name: host) else { throw GatehouseError(.notFound, "host \(host) is not registered on the network") }
            return Change((), event: AuditEvent(code: .networkHostLeft, time: now, actor: .host(host), subject: .host(host), details: [:]))
        }
    }

    static func checkEndpoint(_ endpoint: String) throws(GatehouseError) {
        guard NetworkEndpoint.isValid(endpoint) else {
            throw GatehouseError(.invalidInput, "'\(endpoint.prefix(80))' is not an endpoint (HOST:PORT or [IPV6]:PORT)")
        }
    }

    /// Registrations that count: hosts on the network in the policy, of their current enrollment.
    func registeredHosts(_ tx: any StoreReader, compiled: CompiledPolicy) async throws -> [String: NetworkHostRecord] {
        let onNetwork = Set(compiled.definitions.hosts.filter { $0.organization != nil }.map(\.name))
        var out: [String: NetworkHostRecord] = [:]
        for r in try await tx.networkHosts() where onNetwork.contains(r.host) {
            guard let h = try await tx.host(named: r.host), let joined = h.joinedAt, PKIService.sameInstant(joined, r.enrolledAt) else { continue }
            out[r.host] = r
        }
        return out
    }

    // MARK: host configuration

    /// The configuration of `host`'s agent now.
    /// The configuration of `host`'s agent now. `shared`: the long poll's many waiters may use
    /// one recent read of the store (see ``Snapshot``); everyone else reads afresh.
    public func configuration(host: String, shared: Bool = false) async throws -> HostNetworkConfig {
        let compiled = self.policy.active.policy
        let now = self.environment.time.now()
        let (registrations, devices) = try await self.snapshot(compiled: compiled, at: now, shared: shared)
        return try Self.configuration(
            host: host, policy: compiled, addressing: self.addressing, registrations: registrations,
            devices: devices, keepalive: self.settings.persistentKeepalive, at: now)
    }

    typealias LiveDevice = (address: IPPrefix, device: NetworkDeviceRecord, username: String)

    /// What every host's configuration is computed from: registrations, and live devices of
    /// active people. Read once and shared by all waiting agents until the store or the policy
    /// changes (or, where the store cannot say, for a fifth of a second); never older than 5 s,
    /// so devices that expire drop out on time.
    struct Snapshot {
        let generation: UInt64?
        let policyVersion: Int64?
        let taken: ContinuousClock.Instant
        /// The service's own time when it was read (devices are live or not by it).
        let at: Date
        let registrations: [String: NetworkHostRecord]
        let devices: [LiveDevice]
    }

    let snapshots = LockedBox<Snapshot?>(nil)

    func snapshot(compiled: CompiledPolicy, at now: Date, shared: Bool) async throws -> ([String: NetworkHostRecord], [LiveDevice]) {
        let clock = ContinuousClock()
        let generation = self.environment.store.writeGeneration
        let version = self.policy.active.info?.version
        if shared, let s = self.snapshots.value, s.policyVersion == version, clock.now - s.taken < .seconds(5), abs(now.timeIntervalSince(s.at)) < 5,
            generation.map({ $0 == s.generation }) ?? (clock.now - s.taken < .milliseconds(200))
        {
            return (s.registrations, s.devices)
        }
        let taken = clock.now
        let (registrations, devices) = try await self.environment.store.read { tx in
            let registrations = try await self.registeredHosts(tx, compiled: compiled)
            var devices: [LiveDevice] = []
            var users: [String: User?] = [:]
            for d in try await tx.networkDevices(userID: nil, liveAt: now) {
                if users[d.userID] == nil { users[d.userID] = .some(try await tx.user(id: d.userID)) }
                // A locked or offboarded person's devices are off the network at once.
                if let u = users[d.userID] ?? nil, u.status == .active { devices.append((self.address(of: d), d, u.username.rawValue)) }
            }
            return (registrations, devices)
        }
        self.snapshots.value = Snapshot(
            generation: generation, policyVersion: version, taken: taken, at: now, registrations: registrations, devices: devices)
        return (registrations, devices)
    }

    /// The pure part of ``configuration(host:)``: what `host` runs, given the policy, the hosts
    /// registered and the live devices of active people.
    public static func configuration(
        host name: String, policy compiled: CompiledPolicy, addressing: MeshAddressing,
        registrations: [String: NetworkHostRecord],
        devices: [(address: IPPrefix, device: NetworkDeviceRecord, username: String)],
        keepalive: Int, at now: Date
    ) throws -> HostNetworkConfig {
        let hosts = compiled.definitions.hosts
        guard let me = hosts.first(where: { $0.name == name }), let organization = me.organization, let address = me.meshAddress else {
            throw GatehouseError(.notFound, "host \(name) is not on the private network: give it org = \"...\" in the policy")
        }
        let onNetwork = hosts.filter { $0.organization != nil && registrations[$0.name] != nil }
        // People's devices route through one gateway: the first by name.
        let deviceGateway = hosts.filter(\.gateway).min { $0.name < $1.name }?.name
        var peers: [WireGuardPeer] = []
        for other in onNetwork where other.name != name {
            guard let r = registrations[other.name], let mesh = other.meshAddress else { continue }
            var allowed = [mesh.description]
            if other.name == deviceGateway { allowed.append(addressing.devicePrefix.description) }
            peers.append(
                WireGuardPeer(
                    publicKey: r.publicKey, endpoint: r.endpoint, allowedIPs: allowed, persistentKeepalive: keepalive, label: "host:\(other.name)"))
        }
        var members: [(subject: PolicySubject, sources: [IPPrefix])] = []
        if me.name == deviceGateway || !me.gateway {
            // Devices' packets reach every host through the gateway; each host checks them again.
            var byUser: [String: [IPPrefix]] = [:]
            for d in devices { byUser[d.username, default: []].append(d.address) }
            for (user, sources) in byUser.sorted(by: { $0.key < $1.key }) { members.append((compiled.subject(user: user, now: now), sources)) }
        }
        if me.name == deviceGateway {
            for d in devices.sorted(by: { $0.address < $1.address }) {
                peers.append(
                    WireGuardPeer(
                        publicKey: d.device.publicKey, endpoint: nil, allowedIPs: [d.address.description], persistentKeepalive: nil,
                        label: "device:\(d.device.id)"))
            }
        }
        for other in onNetwork where other.name != name {
            if let mesh = other.meshAddress { members.append((compiled.subject(host: other.name), [mesh])) }
        }
        // One key, one peer: a key claimed twice (which registration refuses) would make the
        // whole configuration unusable for every agent, so only its first holder is kept.
        var seenKeys = Set<WireGuardKey>()
        peers = peers.filter { seenKeys.insert($0.publicKey).inserted }
        var allow: [NetworkAllowClass] = []
        for c in compiled.networkAllowClasses(node: name, members: members, at: now) {
            var rules: [NetworkAllowRule] = []
            for box in c.boxes {
                let icmp = box.ports.proto == .icmp
                for destination in box.prefixes {
                    rules.append(
                        NetworkAllowRule(
                            destination: destination.description, proto: box.ports.proto.rawValue, low: icmp ? 0 : box.ports.low,
                            high: icmp ? 0 : box.ports.high))
                }
            }
            allow.append(NetworkAllowClass(sources: c.sources.map(\.description), rules: rules.sorted()))
        }
        // The isolation program's map: organizations by /64, numbered by their subnet (unique in
        // a policy, and stable: a new organization renumbers nothing, so no update can make two
        // organizations share a number even for a moment); devices and gateways' own routes
        // are 0, judged by the packet filters alone.
        let organizations = Set(hosts.compactMap(\.organization)).sorted()
        var orgMap = organizations.map {
            MeshOrganizationPrefix(
                prefix: addressing.organizationPrefix($0).description, organization: UInt32(MeshAddressing.subnet(organization: $0)))
        }
        orgMap.append(MeshOrganizationPrefix(prefix: addressing.devicePrefix.description, organization: 0))
        let orgPrefixes = Set(organizations.map { addressing.organizationPrefix($0) })
        for g in hosts where g.gateway {
            for r in g.routes where !r.isIPv4 && !orgPrefixes.contains(r) && !addressing.prefix.contains(r) && !r.contains(addressing.prefix) {
                orgMap.append(MeshOrganizationPrefix(prefix: r.description, organization: 0))
            }
        }
        var config = HostNetworkConfig(
            version: "", host: name, organization: organization, address: address.description, meshPrefix: addressing.prefix.description,
            forwarding: me.gateway, peers: peers, allow: allow, organizations: orgMap)
        config.version = Self.digest(config)
        return config
    }

    static func digest(_ config: HostNetworkConfig) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(config)) ?? Data()
        return String(ContentDigest.sha256Hex(String(decoding: data, as: UTF8.self)).prefix(32))
    }

    /// How often a waiting agent's configuration is re-checked: often where a check costs one
    /// counter read (a store that counts its writes), less often where it means recomputing.
    public var pollInterval: Duration { self.environment.store.writeGeneration == nil ? .milliseconds(250) : .milliseconds(50) }

    /// Long poll: the configuration as soon as it differs from `version`, or when `timeout`
    /// passes. Checks every `interval`, recomputing only when the store or the policy changed
    /// (or a few seconds passed, for devices that expire).
    public func nextConfiguration(host: String, after version: String?, timeout: Duration, interval: Duration = .milliseconds(200)) async throws
        -> HostNetworkConfig
    {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // What was seen is taken before the read: a write landing during the read then shows as
        // a change at the next check (taken after, it would hide until the 5 s recheck).
        var seen = (self.environment.store.writeGeneration, self.policy.active.info?.version, clock.now)
        var config = try await self.configuration(host: host, shared: true)
        while config.version == version, clock.now < deadline {
            try await Task.sleep(for: interval)
            let now = (self.environment.store.writeGeneration, self.policy.active.info?.version, clock.now)
            if now.0 == nil || now.0 != seen.0 || now.1 != seen.1 || now.2 - seen.2 > .seconds(5) {
                seen = now
                config = try await self.configuration(host: host, shared: true)
            }
        }
        return config
    }
}

/// Offboarding removes every device of the person from the network; gateways drop the peers
/// within the agents' next poll (well under a second).
public struct NetworkOffboardingHook: OffboardingHook {
    public init() {}
    public var name: String { "wireguard_devices" }
    public func revoke(user: User, in tx: any StoreWriter, at time: Date) async throws -> Int {
        try await tx.revokeNetworkDevices(userID: user.id, at: time)
    }
}
