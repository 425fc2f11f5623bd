import Crypto
public import Foundation
public import GatehouseCore

/// What the identity-aware proxy hands a browser for an app on its own host name, where the
/// Gatehouse session cookie is not sent: the sign-in session's hash, the app and an expiry,
/// MACed with a key only the servers hold. Stateless, so every replica accepts it, and never
/// stronger than the session it names: each request still looks that session up.
///
/// `nonce` makes each ticket distinct; the one-time handoff ticket in the callback URL is
/// remembered by its nonce so it cannot be replayed.
public struct ProxyTicket: Sendable, Equatable {
    public var sessionHash: String
    public var app: String
    public var expiresAt: Date
    public var nonce: String

    public init(sessionHash: String, app: String, expiresAt: Date, nonce: String) {
        self.sessionHash = sessionHash
        self.app = app
        self.expiresAt = expiresAt
        self.nonce = nonce
    }

    public func encode(key: [UInt8]) -> String {
        let body = Array("\(self.sessionHash)|\(self.app)|\(Int(self.expiresAt.timeIntervalSince1970))|\(self.nonce)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key))
        return Base64URL.encode(body) + "." + Base64URL.encode(mac)
    }

    /// The ticket if the MAC checks out, it names `app`, and it has not expired at `now`.
    public static func verify(_ text: String, app: String, key: [UInt8], now: Date) -> ProxyTicket? {
        guard text.utf8.count <= 512 else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let body = Base64URL.decode(String(parts[0])), let mac = Base64URL.decode(String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: key))
        else { return nil }
        let fields = String(decoding: body, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 4, fields[1] == app, let expiry = Int(fields[2]), now.timeIntervalSince1970 < TimeInterval(expiry) else { return nil }
        return ProxyTicket(sessionHash: fields[0], app: fields[1], expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry)), nonce: fields[3])
    }
}
