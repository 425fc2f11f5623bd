/// The unsealed keys a running server holds, one per ``KeyPurpose``. Only built through
/// ``KeyRing/init(keys:)`` with every purpose present, so a running server never lacks a key.
public struct KeyRing: Sendable {
    private let keys: [KeyPurpose: SigningKey]

    public init(keys: [KeyPurpose: SigningKey]) throws(GatehouseError) {
        for purpose in KeyPurpose.allCases where purpose.isInKeyRing && keys[purpose] == nil {
            throw GatehouseError(.internal, "key ring is missing the \(purpose.rawValue) key")
        }
        self.keys = keys
    }

    public subscript(purpose: KeyPurpose) -> SigningKey { self.keys[purpose]! }
}
