public import GatehouseCore
public import Hummingbird
import Foundation
public import NIOCore

/// The public listener's request context: Hummingbird's basic storage plus the peer address,
/// which rate limits and audit events need. (Behind a proxy it is the proxy's address;
/// forwarded headers are not trusted.)
public struct GatehouseRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address as text.
    public var sourceAddress: String? { self.remoteAddress?.ipAddress }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    /// right-most `X-Forwarded-For` hop that is not itself a trusted proxy. A malformed or
    /// oversized header is not believed (the peer is used). Clients can prepend anything to the
    /// header, so only hops appended by trusted proxies count.
    public static func clientAddress(peer: String?, forwardedFor: [String], trusted: [IPPrefix]) -> String? {
        guard let peer, !trusted.isEmpty, let peerAddress = try? IPPrefix(parsing: peer),
              trusted.contains(where: { $0.contains(peerAddress.first) }) else { return peer }
        let joined = forwardedFor.joined(separator: ",")
        guard joined.utf8.count <= 4096 else { return peer }
        let hops = joined.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !hops.isEmpty, hops.count <= 32 else { return peer }
        var client = peer
        for hop in hops.reversed() {
            guard let address = try? IPPrefix(parsing: hop), address.isSingleAddress else { return peer }
            client = hop
            if !trusted.contains(where: { $0.contains(address.first) }) { break }
        }
        return client
    }
}
