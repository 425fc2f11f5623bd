public import Foundation
public import GatehouseCore
import SwiftASN1
public import X509

/// A version 2 X.509 CRL (RFC 5280 section 5), DER, signed by the intermediate: the serials of
/// revoked certificates that have not yet expired, a CRL number that grows with every
/// revocation, and the issuer's key identifier. swift-certificates has no CRL type; the
/// structure is small enough to write here.
public struct RevocationList: Sendable {
    public struct Entry: Sendable, Equatable {
        public var serialHex: String
        public var revokedAt: Date
        public init(serialHex: String, revokedAt: Date) {
            self.serialHex = serialHex
            self.revokedAt = revokedAt
        }
    }

    public var entries: [Entry]
    public var number: UInt64
    public var thisUpdate: Date
    public var nextUpdate: Date

    public init(entries: [Entry], number: UInt64, thisUpdate: Date, nextUpdate: Date) {
        self.entries = entries
        self.number = number
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
    }

    public func der(issuer: Certificate, key: SigningKey) throws -> [UInt8] {
        let algorithm: ASN1ObjectIdentifier = key.algorithm == .p256 ? [1, 2, 840, 10045, 4, 3, 2] : [1, 3, 101, 112]
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { c in
            try c.serialize(1)  // v2
            try c.appendConstructedNode(identifier: .sequence) { a in try a.serialize(algorithm) }
            try c.serialize(issuer.subject)
            try Self.time(self.thisUpdate, into: &c)
            try Self.time(self.nextUpdate, into: &c)
            if !self.entries.isEmpty {
                try c.appendConstructedNode(identifier: .sequence) { list in
                    for entry in self.entries.sorted(by: { $0.serialHex < $1.serialHex }) {
                        guard let bytes = Hex.decode(entry.serialHex), !bytes.isEmpty else { continue }
                        try list.appendConstructedNode(identifier: .sequence) { e in
                            try e.serialize(ArraySlice(bytes))  // INTEGER from its big-endian bytes
                            try Self.time(entry.revokedAt, into: &e)
                        }
                    }
                }
            }
            try c.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { x in
                try x.appendConstructedNode(identifier: .sequence) { list in
                    try list.serialize(
                        Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: ArraySlice(issuer.publicKey.keyIdentifier)), critical: false))
                    var number = DER.Serializer()
                    try number.serialize(self.number)
                    try list.serialize(Certificate.Extension(oid: [2, 5, 29, 20], critical: false, value: ArraySlice(number.serializedBytes)))
                }
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature: [UInt8]
        switch key {
        case .p256(let k): signature = Array(try k.signature(for: tbsBytes).derRepresentation)
        case .ed25519(let k): signature = Array(try k.signature(for: tbsBytes))
        }
        var out = DER.Serializer()
        try out.appendConstructedNode(identifier: .sequence) { c in
            c.serializeRawBytes(tbsBytes)
            try c.appendConstructedNode(identifier: .sequence) { a in try a.serialize(algorithm) }
            try c.serialize(ASN1BitString(bytes: ArraySlice(signature)))
        }
        return out.serializedBytes
    }

    /// UTCTime through 2049, GeneralizedTime after (RFC 5280 5.1.2.4).
    static func time(_ date: Date, into coder: inout DER.Serializer) throws {
        let c = Calendar(identifier: .gregorian)
        var calendar = c
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let p = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        if p.year! < 2050 {
            try coder.serialize(UTCTime(year: p.year!, month: p.month!, day: p.day!, hours: p.hour!, minutes: p.minute!, seconds: p.second!))
        } else {
            try coder.serialize(
                GeneralizedTime(
                    year: p.year!, month: p.month!, day: p.day!, hours: p.hour!, minutes: p.minute!, seconds: p.second!, fractionalSeconds: 0))
        }
    }
}
