public import Foundation
public import GatehouseCore

/// A token-signing key as stored: public in clear, private sealed under the root key. The newest
/// unretired key signs; every unretired key is published in the JWKS, so after a rotation tokens
/// signed by the previous key keep verifying until it retires.
public struct OIDCSigningKeyRecord: Sendable, Equatable {
    public var kid: String
    public var algorithm: KeyAlgorithm
    public var publicKey: [UInt8]
    public var sealedPrivateKey: [UInt8]
    public var createdAt: Date
    public var retireAt: Date?

    public init(kid: String, algorithm: KeyAlgorithm, publicKey: [UInt8], sealedPrivateKey: [UInt8], createdAt: Date, retireAt: Date? = nil) {
        self.kid = kid
        self.algorithm = algorithm
        self.publicKey = publicKey
        self.sealedPrivateKey = sealedPrivateKey
        self.createdAt = createdAt
        self.retireAt = retireAt
    }

    public func isPublished(at time: Date) -> Bool { self.retireAt.map { time < $0 } ?? true }
}
