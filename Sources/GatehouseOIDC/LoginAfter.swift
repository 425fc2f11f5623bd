import Crypto
public import Foundation
public import GatehouseCore

/// The marker Gatehouse adds to an authorization request when it sends the user to sign in
/// again (for `prompt=login`, `max_age` or a step-up rule): "the user must have signed in at or
/// after this time". MACed with a server key, so neither a client nor a crafted link can use it
/// to skip the fresh sign-in; and honoured only for ten minutes.
public enum LoginAfter {
    public static let window: TimeInterval = 600

    public static func encode(_ time: Int, key: [UInt8]) -> String {
        "\(time).\(Self.mac(time, key: key))"
    }

    /// The time if `text` is one of ours, issued within the last ten minutes (and not in the future).
    public static func verify(_ text: String?, key: [UInt8], now: Date) -> Int? {
        guard let text, text.utf8.count <= 64 else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 12, let time = Int(parts[0]), time >= 0,
            ConstantTime.equals(Array(parts[1].utf8), Array(Self.mac(time, key: key).utf8))
        else { return nil }
        let t = TimeInterval(time)
        guard t <= now.timeIntervalSince1970 + 5, t >= now.timeIntervalSince1970 - Self.window else { return nil }
        return time
    }

    static func mac(_ time: Int, key: [UInt8]) -> String {
        Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Array("gatehouse/login-after|\(time)".utf8), using: SymmetricKey(data: key)).prefix(16))
    }
}
