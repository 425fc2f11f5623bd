public import Foundation

/// The rule for OAuth redirect URIs that Gatehouse accepts at registration, shared by the policy
/// checker and client registration: absolute, no fragment, no user info; https, or plain http
/// to a loopback host only (RFC 8252 §7.3, §8.3).
public enum RedirectURI {
    /// A message saying what is wrong with `uri`, or nil when it is acceptable.
    public static func problem(_ uri: String) -> String? {
        guard uri.utf8.count <= 2000 else { return "redirect URI is longer than 2000 characters" }
        guard let c = URLComponents(string: uri), let scheme = c.scheme?.lowercased(), let host = c.host, !host.isEmpty else {
            return "redirect URI \(uri.prefix(80)) is not an absolute URL"
        }
        guard c.fragment == nil else { return "redirect URI \(uri.prefix(80)) has a fragment" }
        guard c.user == nil, c.password == nil else { return "redirect URI \(uri.prefix(80)) has user info" }
        switch scheme {
        case "https": return nil
        case "http": return Self.isLoopback(host) ? nil : "redirect URI \(uri.prefix(80)) is plain http to a host that is not loopback; use https"
        default: return "redirect URI \(uri.prefix(80)) has scheme \(scheme.prefix(20)); use https (or http to loopback)"
        }
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "127.0.0.1" || host == "[::1]" || host == "::1" || host == "localhost"
    }
}
