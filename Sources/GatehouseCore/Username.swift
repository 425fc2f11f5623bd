/// A person's login name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter.
/// Lower case only, so `Alice` and `alice` can never be two accounts.
public struct Username: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(validating text: String) throws(GatehouseError) {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count) else {
            throw GatehouseError(.invalidInput, "username must be 1 to 64 characters")
        }
        guard bytes[0] >= 0x61 && bytes[0] <= 0x7A else {
            throw GatehouseError(.invalidInput, "username must start with a lower-case letter a-z")
        }
        guard bytes.allSatisfy(Self.isAllowed) else {
            throw GatehouseError(.invalidInput, "username may contain only a-z, 0-9, '.', '_' and '-'")
        }
        self.rawValue = text
    }

    /// For values read back from our own store, which were validated when written.
    public init(uncheckedStored text: String) { self.rawValue = text }

    public var description: String { self.rawValue }

    private static func isAllowed(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D
    }
}

/// An e-mail address, checked for shape only (one `@`, a dotted domain, no spaces or controls,
/// at most 254 bytes). Delivery is not Gatehouse's business.
public struct EmailAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(validating text: String) throws(GatehouseError) {
        let bytes = Array(text.utf8)
        guard (3...254).contains(bytes.count) else {
            throw GatehouseError(.invalidInput, "email must be 3 to 254 characters")
        }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64,
            parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3C && $0 != 0x3E && $0 != 0x22 })
        else {
            throw GatehouseError(.invalidInput, "email must look like name@example.org (ASCII, no spaces)")
        }
        self.rawValue = text
    }

    public init(uncheckedStored text: String) { self.rawValue = text }

    public var description: String { self.rawValue }
}

/// The name of a role (`admin`, `sre`, `prod-admin`): 1–64 of `a-z 0-9 _ -`, starting with a letter.
/// What a role grants is the policy's business; the name is only an identifier.
public struct RoleName: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// The built-in role that administers Gatehouse itself.
    public static let admin = RoleName(uncheckedStored: "admin")
    /// The role an invitation carries when none is named.
    public static let member = RoleName(uncheckedStored: "member")
    /// The account roles: what a person is to Gatehouse itself (an administrator, with a shorter
    /// idle timeout, or a member). What a person may reach is the policy's business: its
    /// `group` and `role` blocks name people as members.
    public static let accountRoles: [RoleName] = [.admin, .member]

    public init(validating text: String) throws(GatehouseError) {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), bytes[0] >= 0x61 && bytes[0] <= 0x7A,
            bytes.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D })
        else {
            throw GatehouseError(.invalidInput, "role must be 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter")
        }
        self.rawValue = text
    }

    public init(uncheckedStored text: String) { self.rawValue = text }

    public var description: String { self.rawValue }
}
