import Crypto
public import Foundation

/// The private network's address plan (docs/network.md): one IPv6 ULA /48 per deployment
/// (RFC 4193), cut into /64 subnets.
///
/// - Subnet `0000` holds people's devices: `PREFIX:0:0:0:N/128`, N handed out in order by the
///   server and never given out again.
/// - Every organization has its own /64, the first 16 bits of SHA-256 of its name (a collision
///   between two organizations of one policy is a compile error). A host's address in it is the
///   first 64 bits of SHA-256 of the host's name: stable across restarts and re-enrollment,
///   unique while the host exists, and computable from the policy alone.
///
/// The /48's 40-bit global ID is the first 40 bits of SHA-256 of the deployment's trust domain
/// (pseudo-random, as RFC 4193 §3.2 asks), or an operator's own `fdXX:XXXX:XXXX::/48`.
public struct MeshAddressing: Sendable, Equatable {
    /// The deployment's /48.
    public let prefix: IPPrefix

    /// The organization hosts belong to when the policy names none.
    public static let defaultOrganization = "default"

    /// A placeholder plan for checking a policy away from any server (`fd00::/48`).
    public static let placeholder = MeshAddressing(validated: IPPrefix(isIPv4: false, base: UInt128(0xFD) << 120, length: 48))

    init(validated prefix: IPPrefix) { self.prefix = prefix }

    public init(prefix: IPPrefix) throws(GatehouseError) {
        guard !prefix.isIPv4, prefix.length == 48, prefix.base >> 120 == 0xFD else {
            throw GatehouseError(.configInvalid, "the network prefix must be an IPv6 ULA /48 (fdXX:XXXX:XXXX::/48), not \(prefix)")
        }
        self.prefix = prefix
    }

    public init(trustDomain: String) {
        let digest = Array(SHA256.hash(data: Array("gatehouse ula \(trustDomain)".utf8)))
        var base = UInt128(0xFD)
        for b in digest.prefix(5) { base = base << 8 | UInt128(b) }
        self.prefix = IPPrefix(isIPv4: false, base: base << 80, length: 48)
    }

    /// People's devices: subnet 0.
    public var devicePrefix: IPPrefix { IPPrefix(isIPv4: false, base: self.prefix.base, length: 64) }

    /// Device number `index` (1...).
    public func deviceAddress(index: UInt64) -> IPPrefix {
        precondition(index > 0)
        return IPPrefix(address: self.prefix.base | UInt128(index))
    }

    /// The organization's subnet number, 1...0xFFFE (never the devices' 0, never FFFF).
    public static func subnet(organization: String) -> UInt16 {
        let d = Array(SHA256.hash(data: Array("gatehouse organization \(organization)".utf8)))
        return UInt16(UInt32(d[0]) << 8 | UInt32(d[1])) % 0xFFFE + 1
    }

    public func organizationPrefix(_ organization: String) -> IPPrefix {
        IPPrefix(isIPv4: false, base: self.prefix.base | UInt128(Self.subnet(organization: organization)) << 64, length: 64)
    }

    /// The host's interface ID: 64 bits of SHA-256 of its name, never all zero.
    public static func interfaceID(host: String) -> UInt64 {
        let d = Array(SHA256.hash(data: Array("gatehouse host \(host)".utf8)))
        let id = d.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return id == 0 ? 1 : id
    }

    public func hostAddress(organization: String, host: String) -> IPPrefix {
        IPPrefix(address: self.organizationPrefix(organization).base | UInt128(Self.interfaceID(host: host)))
    }
}
