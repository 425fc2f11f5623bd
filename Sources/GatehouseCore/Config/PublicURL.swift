import Foundation

/// The URL people reach Gatehouse at: the base of every link, the OIDC issuer and the WebAuthn
/// origin. Its host is the WebAuthn relying-party ID, so it must be a DNS name, never an IP.
public struct PublicURL: Sendable, Equatable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: Int?

    public init(parsing text: String) throws(GatehouseError) {
        guard text.utf8.count <= 2048, let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(),
            let rawHost = c.host, !rawHost.isEmpty
        else {
            throw GatehouseError(.configInvalid, "'\(text)' is not an absolute http(s) URL")
        }
        let host = rawHost.lowercased()
        guard scheme == "https" || scheme == "http" else {
            throw GatehouseError(.configInvalid, "'\(text)': scheme must be https (or http for localhost)")
        }
        guard c.user == nil, c.password == nil, c.query == nil, c.fragment == nil, c.path.isEmpty || c.path == "/" else {
            throw GatehouseError(.configInvalid, "'\(text)': give only scheme, host and port (no path, query, fragment or credentials)")
        }
        guard !IPAddress.isIPv4(host), !IPAddress.isIPv6(host), !host.hasPrefix("[") else {
            throw GatehouseError(.configInvalid, "'\(text)': host must be a DNS name; WebAuthn refuses IP addresses (use localhost for loopback)")
        }
        guard
            host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ label in
                (1...63).contains(label.utf8.count)
                    && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
            })
        else {
            throw GatehouseError(.configInvalid, "'\(text)': host is not a valid DNS name")
        }
        guard scheme == "https" || host == "localhost" else {
            throw GatehouseError(.configInvalid, "'\(text)': plain http is only for localhost; use https")
        }
        if let port = c.port, !(1...65535).contains(port) {
            throw GatehouseError(.configInvalid, "'\(text)': port must be 1 to 65535")
        }
        self.scheme = scheme
        self.host = host
        self.port = c.port.flatMap { (scheme == "https" && $0 == 443) || (scheme == "http" && $0 == 80) ? nil : $0 }
    }

    /// `scheme://host[:port]`, with no trailing slash: the WebAuthn origin and OIDC issuer.
    public var origin: String {
        "\(self.scheme)://\(self.host)" + (self.port.map { ":\($0)" } ?? "")
    }

    /// The WebAuthn relying-party ID.
    public var relyingPartyID: String { self.host }

    public var description: String { self.origin }
}
