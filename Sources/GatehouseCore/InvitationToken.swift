public import Crypto
import Foundation

/// The secret in an enrollment link: 256 random bits, base64url. Only its SHA-256 is stored,
/// so a copy of the database cannot be turned into working links.
public struct InvitationToken: Sendable {
    public static let byteCount = 32

    /// The token as it appears in the link. Show it once, never log it.
    public let secret: String

    public static func generate(using random: some RandomSource) -> InvitationToken {
        InvitationToken(secret: Base64URL.encode(random.bytes(Self.byteCount)))
    }

    init(secret: String) { self.secret = secret }

    /// Hex SHA-256 of the secret, the only form that is stored.
    public var hash: String { Self.hash(of: self.secret) }

    public static func hash(of secret: String) -> String {
        Hex.encode(SHA256.hash(data: Array(secret.utf8)))
    }

    /// Checks a presented secret against a stored hash in constant time.
    public static func matches(presented: String, storedHash: String) -> Bool {
        ConstantTime.equals(Array(Self.hash(of: presented).utf8), Array(storedHash.utf8))
    }

    /// The enrollment link. The token travels in the fragment, which browsers never send to
    /// a server and proxies never log; the enrollment page reads it from there.
    public func enrollmentURL(publicURL: PublicURL) -> String {
        "\(publicURL.origin)/enroll#token=\(self.secret)"
    }
}
