public import Foundation
public import GatehouseCore
import SwiftASN1
public import X509

/// The X.509 authority's issuing rules: a root, an intermediate limited by name constraints to
/// one trust domain, and end-entity certificates for SPIFFE identities. Pure: keys, time, serials
/// and names come in; certificates come out.
public enum Authority {
    public static let rootLifetime: TimeInterval = 10 * 365 * 24 * 3600
    public static let intermediateLifetime: TimeInterval = 365 * 24 * 3600
    public static let defaultLeafLifetime: TimeInterval = 24 * 3600
    /// Certificates start a minute in the past, for clocks that run a little behind.
    public static let backdate: TimeInterval = 60

    /// A random positive serial of 128 bits less one (at least 64 bits of randomness, RFC 5280's
    /// 20-octet limit respected, never zero).
    public static func randomSerial(using random: some RandomSource) -> Certificate.SerialNumber {
        var bytes = random.bytes(16)
        bytes[0] = (bytes[0] & 0x7F) | 0x40  // positive, and a full 16 octets in DER
        return Certificate.SerialNumber(bytes: bytes)
    }

    public static func rootName(trustDomain: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("Gatehouse")
            CommonName("Gatehouse root CA for \(trustDomain)")
        }
    }

    public static func intermediateName(trustDomain: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("Gatehouse")
            CommonName("Gatehouse intermediate CA for \(trustDomain)")
        }
    }

    /// A self-signed root: CA, path length 1, keyCertSign and cRLSign only.
    public static func root(key: SigningKey, trustDomain: String, serial: Certificate.SerialNumber, now: Date) throws -> Certificate {
        let name = try Self.rootName(trustDomain: trustDomain)
        let publicKey = key.certificatePrivateKey.publicKey
        return try Certificate(
            version: .v3, serialNumber: serial, publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdate), notValidAfter: now.addingTimeInterval(Self.rootLifetime),
            issuer: name, subject: name, signatureAlgorithm: key.pkiAlgorithm.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(keyIdentifier: ArraySlice(publicKey.keyIdentifier))
            },
            issuerPrivateKey: key.certificatePrivateKey
        )
    }

    /// The online intermediate, signed by the root: CA with path length 0, and name constraints
    /// that permit only URIs in `trustDomain`, so even a stolen intermediate cannot mint another
    /// trust domain's identities for verifiers that honor RFC 5280.
    public static func intermediate(
        publicKey: Certificate.PublicKey, trustDomain: String, root: Certificate, rootKey: SigningKey, serial: Certificate.SerialNumber, now: Date
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: serial, publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdate),
            notValidAfter: min(now.addingTimeInterval(Self.intermediateLifetime), root.notValidAfter),
            issuer: root.subject, subject: try Self.intermediateName(trustDomain: trustDomain),
            signatureAlgorithm: rootKey.pkiAlgorithm.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                Critical(NameConstraints(permittedURIDomains: [trustDomain]))
                SubjectKeyIdentifier(keyIdentifier: ArraySlice(publicKey.keyIdentifier))
                AuthorityKeyIdentifier(keyIdentifier: ArraySlice(root.publicKey.keyIdentifier))
            },
            issuerPrivateKey: rootKey.certificatePrivateKey
        )
    }

    /// What goes into an end-entity certificate, decided by the service from the request and
    /// the policy.
    public struct LeafProfile: Sendable {
        public var spiffeID: String
        public var dnsNames: [String]
        public var ipAddresses: [IPPrefix]
        public var lifetime: TimeInterval
        /// Where verifiers fetch the CRL; put in certificates that outlive the default lifetime.
        public var crlURL: String?

        public init(
            spiffeID: String, dnsNames: [String] = [], ipAddresses: [IPPrefix] = [], lifetime: TimeInterval = Authority.defaultLeafLifetime,
            crlURL: String? = nil
        ) {
            self.spiffeID = spiffeID
            self.dnsNames = dnsNames
            self.ipAddresses = ipAddresses
            self.lifetime = lifetime
            self.crlURL = crlURL
        }
    }

    /// An X509-SVID: empty subject, the SPIFFE ID first in a critical SAN, digitalSignature,
    /// serverAuth and clientAuth, not a CA, and never outliving its issuer.
    public static func leaf(
        publicKey: Certificate.PublicKey, profile: LeafProfile, issuer: Certificate, issuerKey: SigningKey, serial: Certificate.SerialNumber,
        now: Date
    ) throws -> Certificate {
        var names: [GeneralName] = [.uniformResourceIdentifier(profile.spiffeID)]
        names += profile.dnsNames.map { .dnsName($0) }
        names += profile.ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0.addressBytes))) }
        let notAfter = min(now.addingTimeInterval(profile.lifetime), issuer.notValidAfter)
        var extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            Critical(SubjectAlternativeNames(names))
            SubjectKeyIdentifier(keyIdentifier: ArraySlice(publicKey.keyIdentifier))
            AuthorityKeyIdentifier(keyIdentifier: ArraySlice(issuer.publicKey.keyIdentifier))
        }
        if let url = profile.crlURL {
            try extensions.append(Self.crlDistributionPoint(url))
        }
        return try Certificate(
            version: .v3, serialNumber: serial, publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdate), notValidAfter: notAfter,
            issuer: issuer.subject, subject: DistinguishedName(), signatureAlgorithm: issuerKey.pkiAlgorithm.signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: issuerKey.certificatePrivateKey
        )
    }

    /// CRLDistributionPoints with one full-name URI (RFC 5280 4.2.1.13).
    static func crlDistributionPoint(_ url: String) throws -> Certificate.Extension {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { points in
            try points.appendConstructedNode(identifier: .sequence) { point in
                try point.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { name in
                    try name.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { full in
                        try full.serialize(GeneralName.uniformResourceIdentifier(url))
                    }
                }
            }
        }
        return Certificate.Extension(oid: [2, 5, 29, 31], critical: false, value: ArraySlice(serializer.serializedBytes))
    }

    public static func pem(_ certificate: Certificate) throws -> String {
        PEM.encode(try DERBytes.of(certificate), label: "CERTIFICATE")
    }

    public static func der(_ certificate: Certificate) throws -> [UInt8] {
        try DERBytes.of(certificate)
    }

    /// The serial as lower-case hex, how the inventory and the CRL name a certificate.
    public static func serialHex(_ serial: Certificate.SerialNumber) -> String {
        Hex.encode(Array(serial.bytes))
    }

    /// The URI, DNS and IP names of a certificate's SAN extension.
    public static func names(of certificate: Certificate) -> (uris: [String], dns: [String], ips: [String]) {
        guard let sans = try? certificate.extensions.subjectAlternativeNames else { return ([], [], []) }
        var uris: [String] = []
        var dns: [String] = []
        var ips: [String] = []
        for name in sans {
            switch name {
            case .uniformResourceIdentifier(let u): uris.append(u)
            case .dnsName(let d): dns.append(d)
            case .ipAddress(let octets): ips.append(IPPrefix(addressBytes: Array(octets.bytes))?.description ?? Hex.encode(Array(octets.bytes)))
            default: continue
            }
        }
        return (uris, dns, ips)
    }
}
