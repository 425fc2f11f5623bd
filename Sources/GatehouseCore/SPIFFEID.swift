/// SPIFFE IDs (the SPIFFE ID standard): `spiffe://TRUST-DOMAIN/PATH`, a lower-case trust domain
/// of `a-z 0-9 . - _`, path segments non-empty `A-Z a-z 0-9 . - _` and never `.` or `..`, at
/// most 2048 bytes in all. The policy's patterns and the X.509 authority share these rules.
public enum SPIFFEID {
    public static let maxBytes = 2048

    public static func isValidTrustDomain(_ domain: some StringProtocol) -> Bool {
        (1...255).contains(domain.utf8.count)
            && domain.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }
    }

    public static func isValidSegment(_ s: some StringProtocol) -> Bool {
        !s.isEmpty && s != "." && s != ".."
            && s.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
            }
    }

    /// Splits `text` into trust domain and path segments; `allowSegment` may admit more (patterns).
    public static func split(_ text: String, allowSegment: (String) -> Bool = { _ in false }) throws(GatehouseError) -> (
        trustDomain: String, segments: [String]
    ) {
        guard text.utf8.count <= Self.maxBytes, text.hasPrefix("spiffe://") else {
            throw GatehouseError(
                .invalidInput, "'\(text.prefix(80))' is not a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH, at most \(Self.maxBytes) bytes)")
        }
        let parts = text.dropFirst("spiffe://".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard Self.isValidTrustDomain(parts[0]) else {
            throw GatehouseError(.invalidInput, "'\(text.prefix(80))': the trust domain must be lower-case a-z, 0-9, '.', '-', '_'")
        }
        let segments = Array(parts.dropFirst())
        guard !segments.isEmpty else { throw GatehouseError(.invalidInput, "'\(text.prefix(80))': a SPIFFE ID needs a path") }
        for s in segments where !allowSegment(s) && !Self.isValidSegment(s) {
            throw GatehouseError(.invalidInput, "'\(text.prefix(80))': path segments must be non-empty A-Z a-z 0-9 . - _ (and not '.' or '..')")
        }
        return (parts[0], segments)
    }
}
