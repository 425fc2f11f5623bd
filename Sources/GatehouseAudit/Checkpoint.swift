public import Crypto
public import Foundation
public import GatehouseCore

/// A signed statement of the log's state, as a C2SP `tlog-checkpoint` in a C2SP `signed-note`:
///
/// ```
/// gatehouse.audit/<installation-id>
/// 1042
/// <base64 root hash>
/// time 2026-11-29T05:00:00.000Z
///
/// — gatehouse.audit/<installation-id> <base64(key ID || Ed25519 signature)>
/// ```
///
/// The fourth line is an extension line carrying when the checkpoint was made; clients that
/// do not know it ignore it, as the format requires. The signature covers the text above the
/// blank line, including its final newline. The key ID is the first four bytes of
/// SHA-256(name || 0x0A || 0x01 || public key), 0x01 naming Ed25519.
public struct Checkpoint: Sendable, Equatable {
    public let origin: String
    public let size: Int
    public let root: TreeHash
    public let time: Date

    public init(origin: String, size: Int, root: TreeHash, time: Date) {
        self.origin = origin
        self.size = size
        self.root = root
        self.time = time
    }

    /// The signed text: origin, size, root, time, each ending in a newline.
    public var text: String {
        "\(self.origin)\n\(self.size)\n\(Data(self.root).base64EncodedString())\ntime \(CanonicalEntry.timestamp(self.time))\n"
    }

    /// The complete signed note.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        let signature = try key.signature(for: Array(self.text.utf8))
        let verifier = NoteVerifier(name: self.origin, publicKey: Array(key.publicKey.rawRepresentation))
        return self.text + "\n" + "\u{2014} \(self.origin) \(Data(verifier.keyID + Array(signature)).base64EncodedString())\n"
    }

    /// The complete signed note, with the server's audit key (which must be Ed25519).
    public func signed(with key: SigningKey) throws -> String {
        guard case .ed25519(let ed25519) = key else {
            throw GatehouseError(.keyMaterialCorrupted, "checkpoints are signed with Ed25519; the audit key is \(key.algorithm.rawValue)")
        }
        return try self.signed(with: ed25519)
    }

    /// Parses a signed note and checks its signature with `verifier`. Bounded: notes over 8 KiB,
    /// more than 16 signature lines or any malformed line are refused.
    public static func open(_ note: String, verifier: NoteVerifier) throws(CheckpointError) -> Checkpoint {
        let bytes = Array(note.utf8)
        guard bytes.count <= 8192 else { throw .malformed("note is larger than 8 KiB") }
        guard let separator = note.range(of: "\n\n", options: .backwards) else { throw .malformed("no blank line before the signatures") }
        let text = String(note[..<separator.lowerBound]) + "\n"
        let signatureBlock = note[separator.upperBound...]
        guard signatureBlock.hasSuffix("\n") else { throw .malformed("signature lines must end with a newline") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, lines.allSatisfy({ !$0.isEmpty }) else { throw .malformed("a checkpoint has origin, size and root lines") }
        let origin = String(lines[lines.startIndex])
        guard let size = Int(lines[lines.startIndex + 1]), size >= 0, String(size) == lines[lines.startIndex + 1] else {
            throw .malformed("tree size is not a decimal number")
        }
        guard let root = Data(base64Encoded: String(lines[lines.startIndex + 2])), root.count == 32 else {
            throw .malformed("root hash is not base64 of 32 bytes")
        }
        var time: Date? = nil
        for line in lines.dropFirst(3) where line.hasPrefix("time ") {
            time = CanonicalEntry.parseTimestamp(String(line.dropFirst(5)))
        }
        guard let time else { throw .malformed("no time line") }

        let signatureLines = signatureBlock.split(separator: "\n")
        guard signatureLines.count <= 16 else { throw .malformed("too many signature lines") }
        var verified = false
        for line in signatureLines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "\u{2014}", let blob = Data(base64Encoded: String(parts[2])), blob.count >= 4 else {
                throw .malformed("signature line is not '\u{2014} NAME BASE64'")
            }
            guard parts[1] == verifier.name, Array(blob.prefix(4)) == verifier.keyID else { continue }
            guard blob.count == 68, verifier.isValidSignature(Array(blob.dropFirst(4)), for: Array(text.utf8)) else {
                throw .badSignature
            }
            verified = true
        }
        guard verified else { throw .noSignatureFromKey(verifier.name) }
        guard origin == verifier.name else { throw .malformed("origin '\(origin)' is not the key's name '\(verifier.name)'") }
        return Checkpoint(origin: origin, size: size, root: Array(root), time: time)
    }
}

/// Why a checkpoint was refused.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case badSignature
    case noSignatureFromKey(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed checkpoint: \(why)"
        case .badSignature: "checkpoint signature does not verify"
        case .noSignatureFromKey(let name): "checkpoint carries no signature from \(name)"
        }
    }
}

/// An Ed25519 note verifier, written as a verifier key string
/// `NAME+KEYID+BASE64(0x01 || public key)` (the form Go's `golang.org/x/mod/sumdb/note` uses).
public struct NoteVerifier: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let publicKey: [UInt8]

    public init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
    }

    public var keyID: [UInt8] {
        Array(SHA256.hash(data: Array(self.name.utf8) + [0x0A, 0x01] + self.publicKey).prefix(4))
    }

    public var description: String {
        "\(self.name)+\(Hex.encode(self.keyID))+\(Data([0x01] + self.publicKey).base64EncodedString())"
    }

    public init(parsing text: String) throws(CheckpointError) {
        // The name never contains '+'; the base64 key may, so split at the first two only.
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let key = Data(base64Encoded: String(parts[2])), key.count == 33, key.first == 0x01 else {
            throw .malformed("verifier key must be NAME+KEYID+BASE64 of an Ed25519 key")
        }
        self.init(name: String(parts[0]), publicKey: Array(key.dropFirst()))
        guard Hex.encode(self.keyID) == parts[1] else { throw .malformed("verifier key ID does not match its key") }
    }

    func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: self.publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}
