public import Hummingbird
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

    /// The peer's IP address as text, for audit events and rate-limit keys.
    public var sourceAddress: String? { self.remoteAddress?.ipAddress }
}
