import Foundation
public import GatehouseCore

/// The named things a policy defines, after checking. ``PolicyCompiler`` produces them and
/// ``CompiledPolicy`` indexes them.
public struct PolicyDefinitions: Sendable {
    public struct Group: Sendable, Equatable {
        public var name: String
        public var members: [String]
        public var location: PolicyLocation
    }

    public struct Role: Sendable, Equatable {
        public var name: String
        /// Users and groups that hold the role permanently (grants add more, for a while).
        public var members: [PolicyPrincipal]
        /// Caps every credential issued through this role.
        public var maxLifetime: Duration?
        public var location: PolicyLocation
    }

    public struct Host: Sendable, Equatable {
        public var name: String
        public var addresses: [IPPrefix]
        public var labels: [String: String]
        /// Networks this host forwards to (a gateway); its packet filter guards them too.
        public var routes: [IPPrefix]
        /// `org = "..."`: the organization whose mesh /64 the host is in; nil for a host that is
        /// not on the private network.
        public var organization: String?
        /// The host's address on the mesh (also in `addresses`), for hosts with an organization.
        public var meshAddress: IPPrefix?
        /// `gateway = true`: people's devices connect here; it forwards to the mesh and `routes`.
        public var gateway: Bool
        /// `ssh_port = N`: where the host's sshd listens, for the bastion's onward connection (22).
        public var sshPort: Int
        public var location: PolicyLocation
    }

    public struct Network: Sendable, Equatable {
        public var name: String
        public var prefixes: [IPPrefix]
        public var location: PolicyLocation
    }

    public struct Service: Sendable, Equatable {
        public var name: String
        public var destinations: [IPPrefix]
        public var ports: [PortRange]
        public var location: PolicyLocation
    }

    public struct App: Sendable, Equatable {
        public var name: String
        public var clientID: String
        /// Redirect URIs of a public OIDC client declared here (empty: the client, if any, is
        /// registered with `gatehouse admin oidc-client add`).
        public var redirectURIs: [String] = []
        /// Identity-aware proxy: requests for `proxyHost` (a host name), or under `proxyPath` (a
        /// path prefix), go to `upstream` for users the policy allows.
        public var upstream: String? = nil
        public var proxyHost: String? = nil
        public var proxyPath: String? = nil
        /// Which of Gatehouse's own API scopes (`ssh`, `certificates`, `network`) this app's
        /// client may obtain; nil means the default (see ``PolicyDefinitions/gatehouseScopes(clientID:)``).
        public var gatehouseScopes: Set<String>? = nil
        /// Which of those the device flow may carry (`device_gatehouse_scopes`); none by default.
        public var deviceGatehouseScopes: Set<String> = []
        public var location: PolicyLocation
    }

    /// The scopes that reach Gatehouse's own APIs: an access token with one of them acts as the
    /// person on Gatehouse itself (SSH certificates, X.509 identities, WireGuard devices).
    public static let gatehouseScopeNames: Set<String> = ["ssh", "certificates", "network"]
    /// The one client that holds Gatehouse's own scopes unless the policy says otherwise.
    public static let defaultGatehouseClientID = "gatehouse-cli"

    /// Which of Gatehouse's own scopes a client may obtain and use: what its app's
    /// `gatehouse_scopes` lists, else all of them for `gatehouse-cli` and none for anyone else.
    /// An app (a wiki, a dashboard) never gets them by default: a token it holds must be
    /// worthless at Gatehouse's own APIs.
    public func gatehouseScopes(clientID: String) -> Set<String> {
        if let explicit = self.apps.first(where: { $0.clientID == clientID })?.gatehouseScopes { return explicit }
        return clientID == Self.defaultGatehouseClientID ? Self.gatehouseScopeNames : []
    }

    /// Which of Gatehouse's own scopes a device authorization for the client may carry: only
    /// those its app lists in `device_gatehouse_scopes` (and may hold at all). None by default:
    /// anyone can start a device flow and send a victim the real approval link, so a code
    /// approved by mistake must not mint SSH certificates, X.509 identities or WireGuard devices.
    public func deviceGatehouseScopes(clientID: String) -> Set<String> {
        let listed = self.apps.first(where: { $0.clientID == clientID })?.deviceGatehouseScopes ?? []
        return listed.intersection(self.gatehouseScopes(clientID: clientID))
    }

    public struct Identity: Sendable, Equatable {
        public var name: String
        public var pattern: SPIFFEPattern
        public var dnsNames: [String]
        public var location: PolicyLocation
    }

    public var groups: [Group] = []
    public var roles: [Role] = []
    public var hosts: [Host] = []
    public var networks: [Network] = []
    public var services: [Service] = []
    public var apps: [App] = []
    public var identities: [Identity] = []
    public var rules: [PolicyRule] = []
    public var assertions: [PolicyAssertion] = []
}
