public import Crypto
import Foundation

/// A user's or host's public key as OpenSSH writes it: `ssh-ed25519` or `ecdsa-sha2-nistp256`.
/// RSA, DSA and security-key types are refused (`ssh.unsupported_key`).
public enum SSHPublicKey: Sendable, Equatable {
    case ed25519([UInt8])
    /// The uncompressed SEC1 point (65 bytes).
    case ecdsaP256([UInt8])

    public var typeName: String {
        switch self {
        case .ed25519: "ssh-ed25519"
        case .ecdsaP256: "ecdsa-sha2-nistp256"
        }
    }

    /// The certificate type for a certificate over this key.
    public var certificateTypeName: String { self.typeName + "-cert-v01@openssh.com" }

    /// The key as an SSH wire blob (what `authorized_keys` base64-encodes).
    public var blob: [UInt8] {
        var w = SSHWriter()
        w.string(self.typeName)
        self.writeKeyFields(&w)
        return w.bytes
    }

    /// The fields after the type name, as a certificate embeds them.
    func writeKeyFields(_ w: inout SSHWriter) {
        switch self {
        case .ed25519(let k):
            w.string(k)
        case .ecdsaP256(let q):
            w.string("nistp256")
            w.string(q)
        }
    }

    /// `TYPE BASE64`, the authorized_keys form.
    public var authorizedKey: String { "\(self.typeName) \(Data(self.blob).base64EncodedString())" }

    /// OpenSSH's fingerprint: `SHA256:` and unpadded base64 of the blob's SHA-256.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: self.blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    public init(blob: [UInt8]) throws(SSHError) {
        guard blob.count <= 1024 else { throw SSHError(.tooLarge, "public key is too large") }
        var r = SSHReader(blob)
        let type = try r.text(max: 64)
        switch type {
        case "ssh-ed25519":
            let k = try r.string(max: 64)
            guard k.count == 32, (try? Curve25519.Signing.PublicKey(rawRepresentation: k)) != nil else {
                throw SSHError(.malformed, "Ed25519 key is not 32 bytes")
            }
            self = .ed25519(k)
        case "ecdsa-sha2-nistp256":
            guard try r.text(max: 16) == "nistp256" else { throw SSHError(.malformed, "ECDSA key names another curve") }
            let q = try r.string(max: 133)
            guard q.count == 65, q[0] == 4, (try? P256.Signing.PublicKey(x963Representation: q)) != nil else {
                throw SSHError(.malformed, "ECDSA key is not a valid uncompressed P-256 point")
            }
            self = .ecdsaP256(q)
        default:
            throw SSHError(
                .unsupportedKey, "key type \(type.prefix(40)) is not supported; use ssh-ed25519 (ssh-keygen -t ed25519) or ecdsa-sha2-nistp256")
        }
        guard r.isAtEnd else { throw SSHError(.malformed, "public key has trailing data") }
    }

    /// Parses `TYPE BASE64 [COMMENT]` (one authorized_keys line without options).
    public init(authorizedKey line: String) throws(SSHError) {
        guard line.utf8.count <= 4096 else { throw SSHError(.tooLarge, "public key line is too long") }
        let fields = line.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])) else {
            throw SSHError(.malformed, "expected an OpenSSH public key line: TYPE BASE64 [COMMENT]")
        }
        try self.init(blob: [UInt8](blob))
        guard self.typeName == fields[0] else {
            throw SSHError(.malformed, "the key's type (\(self.typeName)) differs from its label (\(fields[0].prefix(40)))")
        }
    }

    public init(_ key: Curve25519.Signing.PublicKey) { self = .ed25519(Array(key.rawRepresentation)) }
    public init(_ key: P256.Signing.PublicKey) { self = .ecdsaP256(Array(key.x963Representation)) }
}
