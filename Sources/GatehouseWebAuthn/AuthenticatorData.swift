/// The authenticator data an authenticator signs (WebAuthn §6.1), parsed strictly: the fixed
/// 37 bytes, attested credential data when AT is set, extensions when ED is set, and nothing
/// after them.
public struct AuthenticatorData: Sendable, Equatable {
    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let userPresent = Flags(rawValue: 0x01)
        public static let userVerified = Flags(rawValue: 0x04)
        public static let backupEligible = Flags(rawValue: 0x08)
        public static let backedUp = Flags(rawValue: 0x10)
        public static let attestedCredentialData = Flags(rawValue: 0x40)
        public static let extensionData = Flags(rawValue: 0x80)
    }

    /// A new credential, present in registrations.
    public struct AttestedCredential: Sendable, Equatable {
        public let aaguid: [UInt8]
        public let credentialID: [UInt8]
        public let publicKey: COSEKey
    }

    public static let maxCredentialIDLength = 1023

    public let bytes: [UInt8]
    public let rpIDHash: [UInt8]
    public let flags: Flags
    public let signCount: UInt32
    public let attestedCredential: AttestedCredential?
    public let extensions: CBORValue?

    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        guard bytes.count >= 37 else { throw WebAuthnError(.malformed, "authenticator data is shorter than 37 bytes") }
        guard bytes.count <= 64 * 1024 else { throw WebAuthnError(.tooLarge, "authenticator data is larger than 64 KiB") }
        self.bytes = bytes
        self.rpIDHash = Array(bytes[0..<32])
        self.flags = Flags(rawValue: bytes[32])
        self.signCount = bytes[33..<37].reduce(0) { $0 << 8 | UInt32($1) }
        var index = 37
        if self.flags.contains(.attestedCredentialData) {
            guard bytes.count >= index + 18 else { throw WebAuthnError(.malformed, "attested credential data is truncated") }
            let aaguid = Array(bytes[index..<index + 16])
            let length = Int(bytes[index + 16]) << 8 | Int(bytes[index + 17])
            index += 18
            guard length >= 1, length <= Self.maxCredentialIDLength else {
                throw WebAuthnError(.malformed, "credential ID length \(length) is outside 1–\(Self.maxCredentialIDLength)")
            }
            guard bytes.count >= index + length else { throw WebAuthnError(.malformed, "credential ID is truncated") }
            let id = Array(bytes[index..<index + length])
            index += length
            let (keyValue, end) = try CBORDecoder().decodePrefix(bytes, from: index)
            let key = try COSEKey(keyValue, encoded: Array(bytes[index..<end]))
            index = end
            self.attestedCredential = AttestedCredential(aaguid: aaguid, credentialID: id, publicKey: key)
        } else {
            self.attestedCredential = nil
        }
        if self.flags.contains(.extensionData) {
            let (value, end) = try CBORDecoder().decodePrefix(bytes, from: index)
            guard value.mapPairs != nil else { throw WebAuthnError(.malformed, "extension data is not a map") }
            index = end
            self.extensions = value
        } else {
            self.extensions = nil
        }
        guard index == bytes.count else { throw WebAuthnError(.malformed, "\(bytes.count - index) unexpected bytes after authenticator data") }
        if self.flags.contains(.backedUp) && !self.flags.contains(.backupEligible) {
            throw WebAuthnError(.backupStateInvalid, "authenticator says backed up but not backup eligible")
        }
    }
}
