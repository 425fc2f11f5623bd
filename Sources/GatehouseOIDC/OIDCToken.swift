public import GatehouseCore

/// The opaque tokens Gatehouse issues. Each is 256 random bits behind a prefix that names its
/// kind (so secret scanners and people can tell them apart); only the SHA-256 is stored.
public enum OIDCTokenKind: String, Sendable, Equatable, CaseIterable {
    case authorizationCode = "code"
    case accessToken = "access"
    case refreshToken = "refresh"
    case deviceCode = "device"

    public var prefix: String {
        switch self {
        case .authorizationCode: "ghac_"
        case .accessToken: "ghat_"
        case .refreshToken: "ghrt_"
        case .deviceCode: "ghdc_"
        }
    }

    public func generate(using random: some RandomSource) -> String {
        self.prefix + Base64URL.encode(random.bytes(32))
    }

    /// The kind a presented token claims by its prefix, if it is shaped like one of ours.
    public static func of(_ token: String) -> OIDCTokenKind? {
        guard token.utf8.count == 48 else { return nil }  // 5-character prefix + 43 characters
        return Self.allCases.first { token.hasPrefix($0.prefix) }
    }
}
