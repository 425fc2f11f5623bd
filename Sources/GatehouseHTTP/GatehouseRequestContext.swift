import Foundation
public import GatehouseCore
public import Hummingbird
public import NIOCore

/// The public listener's request context: Hummingbird's basic storage, the TCP peer, and the
/// client's address, which rate limits, policy `from` conditions and audit events need. The
/// client address is resolved once per request by ``ClientAddressMiddleware`` (it believes
/// `X-Forwarded-For` only from `trusted_proxies`); until then it is the peer.
public struct GatehouseRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The client's address as text: the peer, or the client a trusted proxy speaks for.
    public var clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// The peer's IP address as text.
    public var sourceAddress: String? { self.remoteAddress?.ipAddress }

    /// The client address as a number, for policy conditions on source networks.
    public var clientNumber: UInt128? { self.clientAddress.flatMap { try? IPPrefix(parsing: $0) }.map(\.first) }

    /// Resolves ``clientAddress`` from the peer and the forwarded header.
    mutating func resolveClient(_ request: Request, trusted: [IPPrefix]) {
        self.clientAddress = Self.clientAddress(
            peer: self.sourceAddress, forwardedFor: request.headers[values: .init("X-Forwarded-For")!], trusted: trusted)
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    /// right-most `X-Forwarded-For` hop that is not itself a trusted proxy. A malformed or
    /// oversized header is not believed (the peer is used). Clients can prepend anything to the
    /// header, so only hops appended by trusted proxies count.
    public static func clientAddress(peer: String?, forwardedFor: [String], trusted: [IPPrefix]) -> String? {
        guard let peer, !trusted.isEmpty, let peerAddress = try? IPPrefix(parsing: peer),
            trusted.contains(where: { $0.contains(peerAddress.first) })
        else { return peer }
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

/// Resolves the client address once per request, for every route (`/graphql` and `/metrics`
/// included): the first middleware of the public router.
struct ClientAddressMiddleware: RouterMiddleware {
    let trusted: [IPPrefix]

    func handle(_ request: Request, context: GatehouseRequestContext, next: (Request, GatehouseRequestContext) async throws -> Response) async throws
        -> Response
    {
        var context = context
        context.resolveClient(request, trusted: self.trusted)
        return try await next(request, context)
    }
}
