public import Crypto
import Foundation
public import GatehouseCore

/// Client secrets: 256 random bits, shown once at registration. Only the SHA-256 is stored; a
/// secret with that much entropy needs no slow hash, and a copy of the database cannot be turned
/// into working credentials.
public enum ClientSecret {
    public static let prefix = "ghcs_"

    public static func generate(using random: some RandomSource) -> String {
        Self.prefix + Base64URL.encode(random.bytes(32))
    }

    public static func hash(_ secret: String) -> String {
        Hex.encode(SHA256.hash(data: Array(secret.utf8)))
    }

    public static func matches(_ presented: String, hash: String) -> Bool {
        guard presented.utf8.count <= 256 else { return false }
        return ConstantTime.equals(Array(Self.hash(presented).utf8), Array(hash.utf8))
    }
}
