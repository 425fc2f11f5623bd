public import Crypto
public import Foundation
import GatehouseCore

/// OpenSSH's signature format (`ssh-keygen -Y sign`, PROTOCOL.sshsig): a key's signature over a
/// message, bound to a namespace. Gatehouse verifies one to see proof that whoever asks for a
/// certificate holds the private key of the public key they name. Parsing is bounded and total.
public struct SSHSignature: Sendable, Equatable {
    public let publicKey: SSHPublicKey
    public let namespace: String
    public let hashAlgorithm: String
    /// The inner signature blob: `string format, string signature`.
    let signature: [UInt8]

    static let magic = Array("SSHSIG".utf8)
    static let begin = "-----BEGIN SSH SIGNATURE-----"
    static let end = "-----END SSH SIGNATURE-----"

    /// Parses the armored text `ssh-keygen -Y sign` writes (at most 8 KiB).
    public init(armored text: String) throws(SSHError) {
        guard text.utf8.count <= 8192 else { throw SSHError(.tooLarge, "the signature is longer than 8 KiB") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.begin), trimmed.hasSuffix(Self.end) else {
            throw SSHError(.malformed, "the proof must be an SSH signature (-----BEGIN SSH SIGNATURE-----), as ssh-keygen -Y sign writes it")
        }
        let body = trimmed.dropFirst(Self.begin.count).dropLast(Self.end.count).filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { throw SSHError(.malformed, "the SSH signature is not base64") }
        try self.init(blob: [UInt8](data))
    }

    public init(blob: [UInt8]) throws(SSHError) {
        guard blob.count >= 6, Array(blob.prefix(6)) == Self.magic else { throw SSHError(.malformed, "not an SSH signature (no SSHSIG preamble)") }
        var r = SSHReader(Array(blob.dropFirst(6)))
        guard try r.uint32() == 1 else { throw SSHError(.malformed, "unsupported SSH signature version") }
        self.publicKey = try SSHPublicKey(blob: try r.string(max: 1024))
        self.namespace = try r.text(max: 256)
        _ = try r.string(max: 256)  // reserved
        self.hashAlgorithm = try r.text(max: 16)
        self.signature = try r.string(max: 1024)
        guard r.isAtEnd else { throw SSHError(.malformed, "trailing bytes after the SSH signature") }
        guard ["sha256", "sha512"].contains(self.hashAlgorithm) else {
            throw SSHError(.malformed, "the SSH signature's hash must be sha256 or sha512")
        }
    }

    /// The bytes the key signed: the preamble, namespace, reserved, hash name and the message's hash.
    static func signedData(namespace: String, hashAlgorithm: String, message: [UInt8]) -> [UInt8] {
        var w = SSHWriter()
        w.string(namespace)
        w.string([UInt8]())
        w.string(hashAlgorithm)
        w.string(hashAlgorithm == "sha512" ? Array(SHA512.hash(data: message)) : Array(SHA256.hash(data: message)))
        return Self.magic + w.bytes
    }

    /// True only if this is `key`'s valid signature over `message` in `namespace`.
    public func isValid(for message: [UInt8], namespace: String, key: SSHPublicKey) -> Bool {
        guard self.publicKey == key, self.namespace == namespace else { return false }
        let data = Self.signedData(namespace: namespace, hashAlgorithm: self.hashAlgorithm, message: message)
        var r = SSHReader(self.signature)
        guard let format = try? r.text(max: 64), let raw = try? r.string(max: 512), r.isAtEnd, format == key.typeName else { return false }
        switch key {
        case .ed25519(let k):
            guard raw.count == 64, let pub = try? Curve25519.Signing.PublicKey(rawRepresentation: k) else { return false }
            return pub.isValidSignature(raw, for: data)
        case .ecdsaP256(let q):
            // The signature is `mpint r, mpint s`, each at most 32 bytes after its sign byte.
            var inner = SSHReader(raw)
            guard let r = try? inner.string(max: 33), let s = try? inner.string(max: 33), inner.isAtEnd,
                let rr = Self.scalar(r), let ss = Self.scalar(s),
                let signature = try? P256.Signing.ECDSASignature(rawRepresentation: rr + ss),
                let pub = try? P256.Signing.PublicKey(x963Representation: q)
            else { return false }
            return pub.isValidSignature(signature, for: data)
        }
    }

    /// A positive mpint as 32 big-endian bytes, or nil.
    static func scalar(_ mpint: [UInt8]) -> [UInt8]? {
        guard !mpint.isEmpty, mpint[0] & 0x80 == 0 else { return nil }
        let magnitude = Array(mpint.drop { $0 == 0 })
        guard magnitude.count <= 32 else { return nil }
        return [UInt8](repeating: 0, count: 32 - magnitude.count) + magnitude
    }

    /// Writes a signature (tests, and the golden vectors' counterpart).
    public static func armored(publicKey: SSHPublicKey, namespace: String, hashAlgorithm: String = "sha512", signature inner: [UInt8]) -> String {
        var w = SSHWriter()
        w.uint32(1)
        w.string(publicKey.blob)
        w.string(namespace)
        w.string([UInt8]())
        w.string(hashAlgorithm)
        w.string(inner)
        let b64 = Data(Self.magic + w.bytes).base64EncodedString()
        var lines: [String] = [Self.begin]
        var rest = Substring(b64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(70)))
            rest = rest.dropFirst(70)
        }
        lines.append(Self.end)
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Proof of possession for an SSH certificate request: the key signs (`ssh-keygen -Y sign -n
/// gatehouse-ssh-certificate`) a message bound to the access token that asks, so a person cannot
/// have a colleague's public key certified to themselves (offboarding them would then revoke the
/// colleague's key everywhere through the KRL).
public enum SSHKeyPossession {
    public static let namespace = "gatehouse-ssh-certificate"

    /// What the key signs: a fixed label and the SHA-256 of the access token (a server-issued,
    /// 256-bit, minutes-long secret only the asker holds), so a proof works for that token only.
    public static func message(accessToken: String) -> [UInt8] {
        Array("gatehouse ssh certificate request\n\(Hex.encode(Array(SHA256.hash(data: Array(accessToken.utf8)))))\n".utf8)
    }

    /// Checks `proof` (an armored SSH signature) for `key` and `accessToken`.
    public static func check(proof: String?, key: SSHPublicKey, accessToken: String) throws(SSHError) {
        guard let proof, !proof.isEmpty else {
            throw SSHError(
                .proofRequired,
                "prove you hold the key: send proof, the key's signature (ssh-keygen -Y sign -n \(Self.namespace)) over \"gatehouse ssh certificate request\\n\" and the SHA-256 of your access token in lower-case hex and a newline; gatehouse ssh does this for you"
            )
        }
        let signature = try SSHSignature(armored: proof)
        guard signature.isValid(for: Self.message(accessToken: accessToken), namespace: Self.namespace, key: key) else {
            throw SSHError(.proofRequired, "the proof is not a signature by this key over this request (namespace \(Self.namespace))")
        }
    }
}
