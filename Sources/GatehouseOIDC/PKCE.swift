public import Crypto
import Foundation
public import GatehouseCore

/// Proof Key for Code Exchange (RFC 7636), S256 only: `plain` would let anyone who sees the
/// authorization request redeem the code.
public enum PKCE {
    /// Checks the shape of a challenge: base64url of a SHA-256 digest (43 characters).
    public static func isValidChallenge(_ challenge: String) -> Bool {
        challenge.utf8.count == 43 && Base64URL.decode(challenge)?.count == 32
    }

    /// A verifier is 43–128 characters of `[A-Z a-z 0-9 - . _ ~]` (RFC 7636 §4.1).
    public static func isValidVerifier(_ verifier: String) -> Bool {
        let b = verifier.utf8
        guard (43...128).contains(b.count) else { return false }
        return b.allSatisfy {
            ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F
                || $0 == 0x7E
        }
    }

    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(data: Array(verifier.utf8)))
    }

    /// True when `verifier` is well formed and hashes to `challenge` (compared in constant time).
    public static func verify(verifier: String, challenge: String) -> Bool {
        guard Self.isValidVerifier(verifier) else { return false }
        return ConstantTime.equals(Array(Self.challenge(for: verifier).utf8), Array(challenge.utf8))
    }
}
