public import GatehouseCore

/// A pattern of SPIFFE IDs a certificate rule may grant: `spiffe://example.org/payments/*`.
/// `*` matches exactly one path segment, a final `**` one or more; `$user` and `$host` stand for
/// the requester's own name. Patterns and IDs are checked against the SPIFFE ID rules: lower-case
/// trust domain, non-empty segments of `A-Z a-z 0-9 . - _`, no `.` or `..`, at most 2048 bytes.
public struct SPIFFEPattern: Sendable, Hashable, CustomStringConvertible {
    public let trustDomain: String
    public let segments: [String]

    public init(parsing text: String) throws(GatehouseError) {
        let (domain, segments) = try Self.split(text, allowPattern: true)
        for (i, s) in segments.enumerated() where s == "**" && i != segments.count - 1 {
            throw GatehouseError(.invalidInput, "'\(text)': '**' may only be the last segment")
        }
        self.trustDomain = domain
        self.segments = segments
    }

    /// Validates a concrete SPIFFE ID (no wildcards or variables) and returns its parts.
    public static func validateID(_ text: String) throws(GatehouseError) -> (trustDomain: String, segments: [String]) {
        try Self.split(text, allowPattern: false)
    }

    private static func split(_ text: String, allowPattern: Bool) throws(GatehouseError) -> (String, [String]) {
        let parts = try SPIFFEID.split(text) { allowPattern && ($0 == "*" || $0 == "**" || $0 == "$user" || $0 == "$host") }
        return (parts.trustDomain, parts.segments)
    }

    /// Whether `id` (already split by ``validateID(_:)``) matches for a requester named `name`.
    /// `$user` matches only a person's own name and `$host` only a host's, so a user who happens
    /// to be called `web-1` never obtains the host `web-1`'s identities.
    public func matches(trustDomain: String, segments: [String], name: String?, isHost: Bool) -> Bool {
        guard trustDomain == self.trustDomain else { return false }
        for (i, pattern) in self.segments.enumerated() {
            if pattern == "**" { return segments.count > i }
            guard i < segments.count else { return false }
            switch pattern {
            case "*": continue
            case "$user": if isHost || segments[i] != name { return false }
            case "$host": if !isHost || segments[i] != name { return false }
            default: if segments[i] != pattern { return false }
            }
        }
        return segments.count == self.segments.count
    }

    public var isEverything: Bool { self.segments == ["**"] }

    public var description: String { "spiffe://\(self.trustDomain)/" + self.segments.joined(separator: "/") }
}
