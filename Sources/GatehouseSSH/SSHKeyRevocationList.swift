/// An OpenSSH key revocation list (PROTOCOL.krl), as `sshd`'s `RevokedKeys` and `ssh-keygen -Q`
/// read it: the certificates revoked by serial under one CA, and keys revoked by their SHA-256.
public struct SSHKeyRevocationList: Sendable, Equatable {
    public static let magic: UInt64 = 0x5353_484B_524C_0A00  // "SSHKRL\n\0"
    static let formatVersion: UInt32 = 1
    static let sectionCertificates: UInt8 = 1
    static let sectionFingerprintSHA256: UInt8 = 5
    static let certSectionSerialList: UInt8 = 0x20

    /// Increases with every change, so hosts can tell a newer list.
    public var version: UInt64
    public var generatedAt: UInt64
    public var comment: String
    public var caKey: SSHPublicKey
    public var revokedSerials: [UInt64]
    /// SHA-256 digests of revoked public key blobs (32 bytes each).
    public var revokedKeyHashes: [[UInt8]]

    public init(version: UInt64, generatedAt: UInt64, comment: String, caKey: SSHPublicKey, revokedSerials: [UInt64], revokedKeyHashes: [[UInt8]]) {
        self.version = version
        self.generatedAt = generatedAt
        self.comment = comment
        self.caKey = caKey
        self.revokedSerials = revokedSerials
        self.revokedKeyHashes = revokedKeyHashes
    }

    /// The binary list. Serials and hashes are written sorted and without repeats, as OpenSSH
    /// writes (and for hashes, requires) them.
    public func encoded() -> [UInt8] {
        var w = SSHWriter()
        w.uint64(Self.magic)
        w.uint32(Self.formatVersion)
        w.uint64(self.version)
        w.uint64(self.generatedAt)
        w.uint64(0)  // flags
        w.string([UInt8]())  // reserved
        w.string(self.comment)
        let serials = Array(Set(self.revokedSerials)).sorted()
        if !serials.isEmpty {
            var section = SSHWriter()
            section.string(self.caKey.blob)
            section.string([UInt8]())  // reserved
            var list = SSHWriter()
            for serial in serials { list.uint64(serial) }
            section.bytes8(Self.certSectionSerialList)
            section.string(list.bytes)
            w.bytes8(Self.sectionCertificates)
            w.string(section.bytes)
        }
        let hashes = Array(Set(self.revokedKeyHashes.filter { $0.count == 32 })).sorted { $0.lexicographicallyPrecedes($1) }
        if !hashes.isEmpty {
            var section = SSHWriter()
            for hash in hashes { section.string(hash) }
            w.bytes8(Self.sectionFingerprintSHA256)
            w.string(section.bytes)
        }
        return w.bytes
    }
}

extension SSHWriter {
    /// A single byte (section types).
    mutating func bytes8(_ b: UInt8) { self.append([b]) }
}
