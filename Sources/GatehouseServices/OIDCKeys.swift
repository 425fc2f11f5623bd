public import Foundation
public import GatehouseCore
public import GatehouseOIDC

/// The token-signing keys a replica holds unsealed: the newest published key signs; every
/// published key verifies (by `kid` only). Reloaded from the store when it may have changed, so
/// a rotation on one replica reaches the others.
public final class OIDCKeys: Sendable {
    public struct Snapshot: Sendable {
        public let signer: TokenSigner
        public let published: JWKSet
        public let verifiers: [String: JWSVerificationKey]
        public let loadedAt: Date
    }

    let box = LockedBox<Snapshot?>(nil)

    public init() {}

    public var current: Snapshot? { self.box.value }

    /// Builds the snapshot from stored records: unseals every published key under `sealer`.
    func load(_ records: [OIDCSigningKeyRecord], sealer: KeySealer, at time: Date) throws -> Snapshot {
        var newest: (OIDCSigningKeyRecord, SigningKey)? = nil
        var keys: [JWK] = []
        var verifiers: [String: JWSVerificationKey] = [:]
        for record in records where record.isPublished(at: time) {
            let key = try SigningKey(algorithm: record.algorithm, rawPrivate: try sealer.open(record.sealedPrivateKey, purpose: .tokenSigning))
            let signer = TokenSigner(key: key)
            guard signer.kid == record.kid, key.publicKeyBytes == record.publicKey else {
                throw GatehouseError(
                    .keyMaterialCorrupted, "stored token-signing key \(record.kid.prefix(16)) does not match its public key (tampered)")
            }
            keys.append(signer.jwk)
            verifiers[signer.kid] = try? signer.jwk.verificationKey()
            // A key with no retirement scheduled signs (a rotation schedules it for all others);
            // the others stay published until they retire.
            if newest == nil || (record.retireAt == nil && (newest!.0.retireAt != nil || record.createdAt >= newest!.0.createdAt)) {
                newest = (record, key)
            }
        }
        guard let (_, signingKey) = newest else { throw GatehouseError(.keyMaterialCorrupted, "no published token-signing key") }
        let snapshot = Snapshot(signer: TokenSigner(key: signingKey), published: JWKSet(keys: keys), verifiers: verifiers, loadedAt: time)
        self.box.value = snapshot
        return snapshot
    }
}
