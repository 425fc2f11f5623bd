public import GatehouseCore

/// A ``HostNetworkConfig`` from the server, checked before anything reaches `wg`, `ip`, `nft` or
/// the BPF map: every prefix parses and is IPv6, the host's address lies in the mesh, labels and
/// endpoints are plain, and sizes are bounded. A configuration that fails is refused whole, with
/// the reason, and the host keeps what it had.
public struct HostNetworkPlan: Sendable, Equatable {
    public let config: HostNetworkConfig
    public let address: IPPrefix
    public let meshPrefix: IPPrefix
    public let organizations: [(prefix: IPPrefix, organization: UInt32)]

    public static let maxPeers = 100_000
    public static let maxElements = 2_000_000
    public static let maxOrganizations = 65_536

    public static func == (a: Self, b: Self) -> Bool { a.config == b.config }

    public init(_ config: HostNetworkConfig) throws(GatehouseError) {
        func prefix(_ text: String, _ what: String) throws(GatehouseError) -> IPPrefix {
            guard text.utf8.count <= 64, let p = try? IPPrefix(parsing: text) else {
                throw GatehouseError(.invalidInput, "the network configuration's \(what) '\(text.prefix(64))' is not an IP prefix")
            }
            guard !p.isIPv4 else { throw GatehouseError(.invalidInput, "the network configuration's \(what) \(p) is IPv4; the mesh is IPv6") }
            return p
        }
        guard config.version.utf8.count <= 64, config.version.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw GatehouseError(.invalidInput, "the network configuration's version is not hexadecimal")
        }
        guard config.peers.count <= Self.maxPeers, config.allow.count <= Self.maxElements, config.organizations.count <= Self.maxOrganizations,
            config.allow.reduce(0, { $0 + $1.sources.count + $1.rules.count }) <= Self.maxElements
        else {
            throw GatehouseError(.inputTooLarge, "the network configuration is larger than an agent accepts")
        }
        let mesh = try prefix(config.meshPrefix, "mesh prefix")
        guard mesh.length == 48, mesh.base >> 120 == 0xFD else { throw GatehouseError(.invalidInput, "the mesh prefix \(mesh) is not a ULA /48") }
        let address = try prefix(config.address, "address")
        guard address.isSingleAddress, mesh.contains(address) else {
            throw GatehouseError(.invalidInput, "the host address \(address) is not one address inside the mesh \(mesh)")
        }
        try Self.checkPeers(config.peers, within: mesh)
        var sources = Set<String>()
        for c in config.allow {
            for source in c.sources {
                let p = try prefix(source, "allow source")
                guard p.isSingleAddress, p.description == source else {
                    throw GatehouseError(.invalidInput, "allow source \(source.prefix(64)) is not one address written canonically")
                }
                guard sources.insert(source).inserted else { throw GatehouseError(.invalidInput, "allow source \(source) is in two classes") }
            }
            guard !c.rules.isEmpty, Set(c.rules).count == c.rules.count else {
                throw GatehouseError(.invalidInput, "an allow class has no rules or repeats one")
            }
            for r in c.rules {
                let d = try prefix(r.destination, "allow destination")
                guard d.description == r.destination else {
                    throw GatehouseError(.invalidInput, "allow destination \(r.destination.prefix(64)) is not written canonically")
                }
                guard ["tcp", "udp", "icmp"].contains(r.proto), r.low <= r.high, r.proto != "icmp" || (r.low == 0 && r.high == 0) else {
                    throw GatehouseError(
                        .invalidInput, "allow rule to \(r.destination) has protocol '\(r.proto.prefix(16))' ports \(r.low)-\(r.high)")
                }
            }
        }
        var organizations: [(IPPrefix, UInt32)] = []
        for o in config.organizations { organizations.append((try prefix(o.prefix, "organization prefix"), o.organization)) }
        guard config.host.utf8.count <= 64, config.organization.utf8.count <= 64 else {
            throw GatehouseError(.invalidInput, "host or organization name too long")
        }
        self.config = config
        self.address = address
        self.meshPrefix = mesh
        self.organizations = organizations
    }

    /// What a device's wg-quick file is made of, checked the same way before it is written: the
    /// server's answer must not be able to smuggle a line (`PostUp = ...`) into it.
    public static func checkDevice(_ config: DeviceNetworkConfig) throws(GatehouseError) {
        guard let address = try? IPPrefix(parsing: config.device.address), address.isSingleAddress, !address.isIPv4,
            address.description == config.device.address
        else {
            throw GatehouseError(.invalidInput, "the device address '\(config.device.address.prefix(64))' is not one IPv6 address")
        }
        guard (1...64).contains(config.peers.count) else { throw GatehouseError(.invalidInput, "the device configuration needs 1–64 peers") }
        try Self.checkPeers(config.peers, within: nil)
    }

    /// Peers: distinct keys, plain labels and endpoints, a sane keepalive, and 1–1024 canonical
    /// allowed prefixes (inside `mesh` when given).
    static func checkPeers(_ peers: [WireGuardPeer], within mesh: IPPrefix?) throws(GatehouseError) {
        var keys = Set<WireGuardKey>()
        for peer in peers {
            guard keys.insert(peer.publicKey).inserted else {
                throw GatehouseError(.invalidInput, "the network configuration lists peer \(peer.publicKey) twice")
            }
            guard peer.label.utf8.count <= 128, peer.label.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
                throw GatehouseError(.invalidInput, "a peer label holds characters a label may not")
            }
            if let endpoint = peer.endpoint {
                guard NetworkEndpoint.isValid(endpoint) else {
                    throw GatehouseError(.invalidInput, "peer \(peer.label)'s endpoint '\(endpoint.prefix(64))' is not HOST:PORT")
                }
            }
            if let k = peer.persistentKeepalive, !(0...3600).contains(k) {
                throw GatehouseError(.invalidInput, "peer \(peer.label)'s keepalive \(k) is out of range")
            }
            guard (1...1024).contains(peer.allowedIPs.count) else {
                throw GatehouseError(.invalidInput, "peer \(peer.label) needs 1–1024 allowed prefixes")
            }
            for a in peer.allowedIPs {
                guard a.utf8.count <= 64, let p = try? IPPrefix(parsing: a),
                    p.description == a || p.description + "/128" == a || p.description + "/32" == a
                else {
                    throw GatehouseError(.invalidInput, "peer \(peer.label)'s allowed prefix '\(a.prefix(64))' is not a prefix written canonically")
                }
                if let mesh {
                    guard !p.isIPv4, mesh.contains(p) else {
                        throw GatehouseError(.invalidInput, "peer \(peer.label)'s allowed prefix \(p) is outside the mesh \(mesh)")
                    }
                }
            }
        }
    }

    /// A network interface name the kernel accepts: 1–15 of `A-Z a-z 0-9 _ . -`.
    public static func checkInterfaceName(_ name: String) throws(GatehouseError) {
        // Not "lo": the loopback interface is the one the ruleset always lets through.
        guard (1...15).contains(name.utf8.count), name != ".", name != "..", name != "lo",
            name.utf8.allSatisfy({
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D
            })
        else {
            throw GatehouseError(.invalidInput, "'\(name.prefix(32))' is not an interface name (1–15 of A-Z a-z 0-9 _ . -)")
        }
    }
}
