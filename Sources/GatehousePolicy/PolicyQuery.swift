public import GatehouseCore

/// Reads a request as people type it (`root@web-1`, `web-1:443`, `10.0.5.7:5432/udp`,
/// `[fd00::1]:443`), for `policy explain` and the API behind it.
public enum PolicyQuery {
    public enum Kind: String, Sendable, CaseIterable { case ssh, reach, app, request, obtain }

    public static func parse(_ kind: Kind, _ text: String, in policy: CompiledPolicy) throws(GatehouseError) -> PolicyRequest {
        guard !text.isEmpty, text.utf8.count <= 2048 else {
            throw GatehouseError(.invalidInput, "\(kind.rawValue): expected a value of at most 2048 bytes")
        }
        switch kind {
        case .ssh:
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw GatehouseError(.invalidInput, "ssh: expected LOGIN@HOST") }
            return .ssh(login: String(parts[0]), host: String(parts[1]))
        case .reach:
            var target: Substring
            var portText: Substring
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                target = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { throw GatehouseError(.invalidInput, "reach: expected [IPv6]:PORT") }
                portText = rest.dropFirst()
            } else if let colon = text.lastIndex(of: ":"), text.filter({ $0 == ":" }).count == 1 {
                target = text[..<colon]
                portText = text[text.index(after: colon)...]
            } else {
                throw GatehouseError(.invalidInput, "reach: expected HOST:PORT, ADDRESS:PORT or [IPv6]:PORT, optionally /tcp or /udp")
            }
            let ranges = try PortRange.parse(String(portText))
            guard ranges.count == 1, ranges[0].low == ranges[0].high || ranges[0].proto == .icmp else {
                throw GatehouseError(.invalidInput, "reach: name one port, not a range")
            }
            let address: UInt128
            if let p = try? IPPrefix(parsing: String(target)), p.isSingleAddress {
                address = p.first
            } else if let host = policy.definitions.hosts.first(where: { $0.name == target }), let first = host.addresses.first {
                address = first.first
            } else {
                throw GatehouseError(.invalidInput, "reach: '\(target.prefix(64))' is not an address or a host of the policy")
            }
            return .reach(address: address, port: ranges[0].low, proto: ranges[0].proto)
        case .app: return .app(text)
        case .request: return .requestRole(text)
        case .obtain: return .certificate(spiffeID: text)
        }
    }
}
