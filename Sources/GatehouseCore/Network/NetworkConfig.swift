public import Foundation

/// One WireGuard peer as the server describes it to an agent or a device.
public struct WireGuardPeer: Sendable, Hashable, Codable {
    enum CodingKeys: String, CodingKey {
        case publicKey = "public_key"
        case endpoint
        case allowedIPs = "allowed_ips"
        case persistentKeepalive = "persistent_keepalive"
        case label
    }

    public var publicKey: WireGuardKey
    /// `HOST:PORT` or `[V6]:PORT`; nil for peers that connect to us (devices).
    public var endpoint: String?
    /// What the peer may send from and what we route to it.
    public var allowedIPs: [String]
    public var persistentKeepalive: Int?
    /// What the peer is, for logs and `wg` comments: `host:NAME` or `device:ID`.
    public var label: String

    public init(publicKey: WireGuardKey, endpoint: String?, allowedIPs: [String], persistentKeepalive: Int?, label: String) {
        self.publicKey = publicKey
        self.endpoint = endpoint
        self.allowedIPs = allowedIPs
        self.persistentKeepalive = persistentKeepalive
        self.label = label
    }
}

/// What one class of sources may reach: packets to `destination` (a prefix) with protocol
/// `proto` (`tcp`, `udp`, `icmp`) and destination ports `low...high` (0...0 for ICMP).
public struct NetworkAllowRule: Sendable, Hashable, Codable, Comparable {
    public var destination: String
    public var proto: String
    public var low: UInt16
    public var high: UInt16

    public init(destination: String, proto: String, low: UInt16, high: UInt16) {
        self.destination = destination
        self.proto = proto
        self.low = low
        self.high = high
    }

    public static func < (a: Self, b: Self) -> Bool { (a.proto, a.destination, a.low, a.high) < (b.proto, b.destination, b.low, b.high) }
}

/// Sources (single addresses: devices, mesh hosts) that may reach exactly the same things. The
/// allow list is sent as classes so that ten thousand devices in a hundred roles cost ten
/// thousand source entries plus a hundred rule lists, not a million (source, rule) pairs.
/// Within a class the rules never overlap.
public struct NetworkAllowClass: Sendable, Hashable, Codable {
    public var sources: [String]
    public var rules: [NetworkAllowRule]

    public init(sources: [String], rules: [NetworkAllowRule]) {
        self.sources = sources
        self.rules = rules
    }
}

/// A prefix of the mesh and the organization it belongs to, for the kernel isolation program:
/// `organization` 0 marks prefixes whose traffic the packet filter judges alone (people's
/// devices, a gateway's routes).
public struct MeshOrganizationPrefix: Sendable, Hashable, Codable {
    public var prefix: String
    public var organization: UInt32

    public init(prefix: String, organization: UInt32) {
        self.prefix = prefix
        self.organization = organization
    }
}

/// Everything an agent needs to configure its host's private network, as the server computes it
/// from the policy and the store. `version` is a digest of the rest: equal versions, equal state.
public struct HostNetworkConfig: Sendable, Equatable, Codable {
    enum CodingKeys: String, CodingKey {
        case version, host, organization, address
        case meshPrefix = "mesh_prefix"
        case forwarding, peers, allow, organizations
    }

    public var version: String
    public var host: String
    public var organization: String
    /// The host's own mesh address (a /128).
    public var address: String
    /// The mesh's prefixes (the deployment /48), routed into the interface.
    public var meshPrefix: String
    /// Forward between peers (a gateway).
    public var forwarding: Bool
    public var peers: [WireGuardPeer]
    public var allow: [NetworkAllowClass]
    public var organizations: [MeshOrganizationPrefix]

    public init(
        version: String, host: String, organization: String, address: String, meshPrefix: String, forwarding: Bool,
        peers: [WireGuardPeer], allow: [NetworkAllowClass], organizations: [MeshOrganizationPrefix]
    ) {
        self.version = version
        self.host = host
        self.organization = organization
        self.address = address
        self.meshPrefix = meshPrefix
        self.forwarding = forwarding
        self.peers = peers
        self.allow = allow
        self.organizations = organizations
    }
}

/// A person's device on the private network, as the server lists it.
public struct NetworkDevice: Sendable, Equatable, Codable {
    enum CodingKeys: String, CodingKey {
        case id, username, name
        case publicKey = "public_key"
        case address
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }

    public var id: String
    public var username: String
    public var name: String
    public var publicKey: WireGuardKey
    public var address: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(
        id: String, username: String, name: String, publicKey: WireGuardKey, address: String, createdAt: Date, expiresAt: Date, revokedAt: Date?
    ) {
        self.id = id
        self.username = username
        self.name = name
        self.publicKey = publicKey
        self.address = address
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// What `gatehouse wg up` receives: its device record and the peers (gateways) to configure.
public struct DeviceNetworkConfig: Sendable, Equatable, Codable {
    public var device: NetworkDevice
    public var peers: [WireGuardPeer]

    public init(device: NetworkDevice, peers: [WireGuardPeer]) {
        self.device = device
        self.peers = peers
    }
}
