import Foundation
public import GatehouseCore

/// Loads the server's key material, generating what is missing on first start.
///
/// Rules, in order:
/// 1. The store remembers the root key's check value. A different root key is refused
///    (``GatehouseError/Code/rootKeyMismatch``) before any blob is touched.
/// 2. Every existing key must open under the root key and match its stored public key;
///    otherwise ``GatehouseError/Code/keyMaterialCorrupted`` names the key.
/// 3. Missing keys are generated, sealed and inserted in one transaction with a
///    `key.generated` event each. Existing material is never replaced: if another replica
///    wins the race, its keys are loaded instead.
public struct KeyBootstrap: Sendable {
    let environment: ServiceEnvironment
    let rootKey: RootKey

    public init(environment: ServiceEnvironment, rootKey: RootKey) {
        self.environment = environment
        self.rootKey = rootKey
    }

    /// True when the store already holds key material (so a missing root key file is an error,
    /// not a first start).
    public static func storeHasKeyMaterial(_ store: any Store) async throws -> Bool {
        try await store.read { tx in
            let check = try await tx.metaValue(.rootKeyCheck)
            let keys = try await tx.sealedKeys()
            return check != nil || !keys.isEmpty
        }
    }

    public func loadOrCreate() async throws -> KeyRing {
        for attempt in 0..<3 {
            do {
                return try await self.attempt()
            } catch let error as GatehouseError where error.code == .conflict && attempt < 2 {
                continue  // another replica generated keys concurrently; load theirs
            }
        }
        throw GatehouseError(.internal, "could not settle key material after concurrent starts")
    }

    private func attempt() async throws -> KeyRing {
        let env = self.environment
        let (_, existing) = try await env.store.read { tx in try await self.unsealExisting(tx) }
        if let ring = try? KeyRing(keys: existing) {
            return ring  // a plain restart writes nothing
        }
        let sealer = KeySealer(rootKey: self.rootKey)
        return try await env.store.commit { tx in
            let (hasCheck, found) = try await self.unsealExisting(tx, writing: true)
            var keys = found
            let now = env.time.now()
            var events: [AuditEvent] = []
            if !hasCheck {
                guard try await tx.insertMetaValueIfAbsent(.rootKeyCheck, self.rootKey.checkValue) else {
                    throw GatehouseError(.conflict, "another replica initialized the store concurrently")
                }
                _ = try await tx.insertMetaValueIfAbsent(.installationID, Identifier.make(using: env.random))
                events.append(AuditEvent(code: .systemInitialized, time: now, actor: .system, subject: .installation))
            }
            for purpose in KeyPurpose.allCases where purpose.isInKeyRing && keys[purpose] == nil {
                let key = SigningKey.generate(purpose.algorithm, using: env.random)
                try await tx.insertSealedKey(
                    SealedKeyRecord(
                        purpose: purpose, algorithm: key.algorithm, publicKey: key.publicKeyBytes,
                        sealedPrivateKey: sealer.seal(key.rawPrivate, purpose: purpose, random: env.random), createdAt: now
                    )
                )
                keys[purpose] = key
                events.append(
                    AuditEvent(
                        code: .keyGenerated, time: now, actor: .system, subject: .key(purpose.rawValue),
                        details: ["algorithm": key.algorithm.rawValue, "fingerprint": key.fingerprint]
                    )
                )
            }
            let ring = try KeyRing(keys: keys)
            guard let first = events.first else {
                // Another replica generated every key between our read and this transaction:
                // nothing to write; the retry in loadOrCreate() loads theirs.
                throw GatehouseError(.conflict, "key material appeared concurrently")
            }
            return Change(ring, first: first, rest: Array(events.dropFirst()))
        }
    }

    /// Checks the root key against the stored check value and opens every stored key.
    ///
    /// In the writing transaction (`writing`), keys without a check value mean another replica
    /// committed both between the two reads (PostgreSQL's read-committed writes see each
    /// statement's own snapshot), so it is a conflict to retry; a store that really lacks the
    /// check value was refused by the snapshot read before.
    private func unsealExisting(_ tx: any StoreReader, writing: Bool = false) async throws -> (hasCheck: Bool, keys: [KeyPurpose: SigningKey]) {
        let sealer = KeySealer(rootKey: self.rootKey)
        let storedCheck = try await tx.metaValue(.rootKeyCheck)
        let records = try await tx.sealedKeys()
        if let storedCheck {
            guard ConstantTime.equals(Array(storedCheck.utf8), Array(self.rootKey.checkValue.utf8)) else {
                throw GatehouseError(
                    .rootKeyMismatch,
                    "the root key does not match the one this store's keys were sealed with; restore the original root key file"
                )
            }
        } else if !records.isEmpty {
            if writing { throw GatehouseError(.conflict, "another replica initialized the store concurrently") }
            throw GatehouseError(.keyMaterialCorrupted, "the store holds sealed keys but no root key check value; refusing to guess")
        }
        var keys: [KeyPurpose: SigningKey] = [:]
        for record in records {
            let raw = try sealer.open(record.sealedPrivateKey, purpose: record.purpose)
            let key = try SigningKey(algorithm: record.algorithm, rawPrivate: raw)
            guard record.algorithm == record.purpose.algorithm, key.publicKeyBytes == record.publicKey else {
                throw GatehouseError(.keyMaterialCorrupted, "stored \(record.purpose.rawValue) key does not match its public key (tampered)")
            }
            keys[record.purpose] = key
        }
        return (storedCheck != nil, keys)
    }
}
