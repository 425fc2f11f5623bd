public import Crypto
import Foundation
public import GatehouseCore

/// An OpenSSH certificate (PROTOCOL.certkeys, `*-cert-v01@openssh.com`) before signing: what
/// the CA vouches for. ``signed(by:nonce:)`` encodes and signs it; the encoding is pinned by
/// golden tests and read back by `ssh-keygen -L` and `sshd` in the live tests.
public struct SSHCertificate: Sendable, Equatable {
    public enum Kind: UInt32, Sendable, Equatable {
        case user = 1
        case host = 2
    }

    public var kind: Kind
    public var publicKey: SSHPublicKey
    public var serial: UInt64
    public var keyID: String
    /// Never empty: OpenSSH reads an empty list as "any principal".
    public var principals: [String]
    /// Seconds since 1970.
    public var validAfter: UInt64
    public var validBefore: UInt64
    /// Only `force-command` and `source-address`: an unknown critical option would make sshd
    /// refuse the certificate, and a misspelt one must not be issued silently.
    public var criticalOptions: [String: String]
    public var extensions: Set<String>

    public static let knownCriticalOptions: Set<String> = ["force-command", "source-address"]
    public static let knownExtensions: Set<String> = [
        "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc",
    ]
    public static let maxPrincipals = 256

    public init(
        kind: Kind, publicKey: SSHPublicKey, serial: UInt64, keyID: String, principals: [String], validAfter: UInt64, validBefore: UInt64,
        criticalOptions: [String: String] = [:], extensions: Set<String> = []
    ) {
        self.kind = kind
        self.publicKey = publicKey
        self.serial = serial
        self.keyID = keyID
        self.principals = principals
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.criticalOptions = criticalOptions
        self.extensions = extensions
    }

    /// Checks what the CA must never sign.
    public func validate() throws(SSHError) {
        guard !self.principals.isEmpty else {
            throw SSHError(.invalidCertificate, "a certificate needs at least one principal (an empty list means any)")
        }
        guard self.principals.count <= Self.maxPrincipals else { throw SSHError(.invalidCertificate, "at most \(Self.maxPrincipals) principals") }
        for p in self.principals {
            // No `*` or `?` either: OpenSSH matches host-certificate principals as patterns.
            guard (1...255).contains(p.utf8.count),
                p.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: "?") })
            else {
                throw SSHError(
                    .invalidCertificate, "principal \(p.prefix(40).debugDescription) is not printable ASCII without spaces, commas or wildcards")
            }
        }
        guard Set(self.principals).count == self.principals.count else { throw SSHError(.invalidCertificate, "a principal is listed twice") }
        guard (1...255).contains(self.keyID.utf8.count), self.keyID.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw SSHError(.invalidCertificate, "the key id must be 1-255 printable ASCII characters")
        }
        guard self.validBefore > self.validAfter else { throw SSHError(.invalidCertificate, "valid-before must be after valid-after") }
        guard self.serial != 0 else { throw SSHError(.invalidCertificate, "serial 0 means 'no serial'; Gatehouse always numbers certificates") }
        for name in self.criticalOptions.keys where !Self.knownCriticalOptions.contains(name) {
            throw SSHError(.invalidCertificate, "unknown critical option \(name.prefix(40))")
        }
        for name in self.extensions where !Self.knownExtensions.contains(name) {
            throw SSHError(.invalidCertificate, "unknown extension \(name.prefix(40))")
        }
        if self.kind == .host && (!self.criticalOptions.isEmpty || !self.extensions.isEmpty) {
            throw SSHError(.invalidCertificate, "host certificates carry no critical options or extensions")
        }
    }

    /// Everything the signature covers: the certificate up to and including the CA's key.
    func toBeSigned(nonce: [UInt8], caKey: SSHPublicKey) -> [UInt8] {
        var w = SSHWriter()
        w.string(self.publicKey.certificateTypeName)
        w.string(nonce)
        self.publicKey.writeKeyFields(&w)
        w.uint64(self.serial)
        w.uint32(self.kind.rawValue)
        w.string(self.keyID)
        var principals = SSHWriter()
        for p in self.principals { principals.string(p) }
        w.string(principals.bytes)
        w.uint64(self.validAfter)
        w.uint64(self.validBefore)
        // Options and extensions sorted by name; an option's value is itself an SSH string,
        // an extension's value is empty.
        var options = SSHWriter()
        for name in self.criticalOptions.keys.sorted() {
            options.string(name)
            var value = SSHWriter()
            value.string(self.criticalOptions[name]!)
            options.string(value.bytes)
        }
        w.string(options.bytes)
        var extensions = SSHWriter()
        for name in self.extensions.sorted() {
            extensions.string(name)
            extensions.string([UInt8]())
        }
        w.string(extensions.bytes)
        w.string([UInt8]())  // reserved
        w.string(caKey.blob)
        return w.bytes
    }

    /// Validates, encodes and signs with the CA key. `nonce` is 32 random bytes from the caller
    /// (so tests can pin the output).
    public func signed(by ca: SigningKey, nonce: [UInt8]) throws(SSHError) -> SignedSSHCertificate {
        try self.validate()
        guard nonce.count == 32 else { throw SSHError(.invalidCertificate, "the nonce must be 32 bytes") }
        let caKey = SSHCertificate.publicKey(of: ca)
        let body = self.toBeSigned(nonce: nonce, caKey: caKey)
        var signature = SSHWriter()
        switch ca {
        case .ed25519(let key):
            guard let sig = try? key.signature(for: body) else { throw SSHError(.invalidCertificate, "the CA could not sign") }
            signature.string("ssh-ed25519")
            signature.string(Array(sig))
        case .p256(let key):
            guard let sig = try? key.signature(for: body) else { throw SSHError(.invalidCertificate, "the CA could not sign") }
            let raw = Array(sig.rawRepresentation)
            var rs = SSHWriter()
            rs.mpint(raw[0..<32])
            rs.mpint(raw[32..<64])
            signature.string("ecdsa-sha2-nistp256")
            signature.string(rs.bytes)
        }
        var w = SSHWriter()
        w.string(signature.bytes)
        return SignedSSHCertificate(certificate: self, blob: body + w.bytes, caKey: caKey)
    }

    /// A random, non-zero 64-bit serial.
    public static func randomSerial(using random: some RandomSource) -> UInt64 {
        while true {
            let serial = random.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if serial != 0 { return serial }
        }
    }

    public static func publicKey(of key: SigningKey) -> SSHPublicKey {
        switch key {
        case .ed25519(let k): SSHPublicKey(k.publicKey)
        case .p256(let k): SSHPublicKey(k.publicKey)
        }
    }
}

/// A signed certificate: its wire blob and the line OpenSSH reads (`TYPE BASE64 KEYID`).
public struct SignedSSHCertificate: Sendable, Equatable {
    public let certificate: SSHCertificate
    public let blob: [UInt8]
    public let caKey: SSHPublicKey

    public var line: String { "\(self.certificate.publicKey.certificateTypeName) \(Data(self.blob).base64EncodedString()) \(self.certificate.keyID)" }
}
