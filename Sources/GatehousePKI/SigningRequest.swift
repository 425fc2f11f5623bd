import Foundation
public import GatehouseCore
import SwiftASN1
public import X509

/// A certificate signing request (PKCS#10) after the checks every request must pass before the
/// policy is asked: bounded size, well-formed DER, its own signature valid, a P-256 or Ed25519
/// key, and nothing requested that Gatehouse would not put in a certificate itself.
///
/// What it may ask for: subject alternative names (one SPIFFE URI, DNS names, IP addresses), and
/// the usages Gatehouse issues anyway (basic constraints without CA, key usage digitalSignature,
/// extended key usage serverAuth/clientAuth). Anything else (a CA bit, another usage, an unknown
/// extension or attribute) is refused rather than silently dropped, so a requester never
/// believes it received what it did not.
public struct SigningRequest: Sendable {
    public static let maxBytes = 8 * 1024
    public static let maxNames = 32

    public let publicKey: Certificate.PublicKey
    public let algorithm: PKIKeyAlgorithm
    public let spiffeID: String?
    public let dnsNames: [String]
    public let ipAddresses: [IPPrefix]

    /// Parses a PEM (`CERTIFICATE REQUEST`) or DER request.
    public init(pemOrDER bytes: [UInt8]) throws(GatehouseError) {
        guard bytes.count <= Self.maxBytes else { throw GatehouseError(.inputTooLarge, "the certificate request is over \(Self.maxBytes) bytes") }
        if bytes.first == 0x30 {
            try self.init(der: bytes)
        } else {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw GatehouseError(.invalidInput, "the certificate request is neither PEM nor DER")
            }
            try self.init(der: try PEM.decode(text, label: "CERTIFICATE REQUEST", limit: Self.maxBytes))
        }
    }

    public init(der: [UInt8]) throws(GatehouseError) {
        guard der.count <= Self.maxBytes else { throw GatehouseError(.inputTooLarge, "the certificate request is over \(Self.maxBytes) bytes") }
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: der)
        } catch {
            throw GatehouseError(.invalidInput, "the certificate request is not valid PKCS#10 DER")
        }
        // The encoding must be canonical: re-serializing gives the same bytes, so what was
        // signed is what was parsed.
        guard let again = try? DERBytes.of(csr), again == der else {
            throw GatehouseError(.invalidInput, "the certificate request is not canonical DER")
        }
        // The request body too: rebuilt from what was parsed, it must encode to the same bytes.
        // (The parser keeps one attribute per type, so a request with two extension requests, the
        // second one unseen, is refused here instead of half-read.)
        guard
            let rebuilt = try? CertificateSigningRequest(
                version: csr.version, subject: csr.subject, publicKey: csr.publicKey, attributes: csr.attributes,
                signatureAlgorithm: csr.signatureAlgorithm, signature: csr.signature),
            (try? DERBytes.of(rebuilt)) == der
        else {
            throw GatehouseError(.invalidInput, "the certificate request is not canonical DER, or repeats an attribute")
        }
        guard let algorithm = csr.publicKey.pkiAlgorithm else {
            throw GatehouseError(.invalidInput, "unsupported key in the certificate request: use P-256 (ECDSA) or Ed25519")
        }
        guard csr.signatureAlgorithm == algorithm.signatureAlgorithm else {
            throw GatehouseError(
                .invalidInput, "the request's signature algorithm \(csr.signatureAlgorithm) does not fit its \(algorithm.rawValue) key")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw GatehouseError(.invalidInput, "the certificate request's signature does not verify: it was not made with the key it carries")
        }
        var extensionRequests = 0
        for attribute in csr.attributes {
            guard attribute.oid == .CSRAttributes.extensionRequest else {
                throw GatehouseError(.invalidInput, "the certificate request carries an attribute Gatehouse does not accept (\(attribute.oid))")
            }
            extensionRequests += 1
            // One extension request with one value: a second one would be silently ignored.
            guard extensionRequests == 1, attribute.values.count == 1 else {
                throw GatehouseError(.invalidInput, "the certificate request carries more than one extension request")
            }
        }
        var spiffe: String? = nil
        var dns: [String] = []
        var ips: [IPPrefix] = []
        let requested: Certificate.Extensions
        do {
            requested = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
        } catch {
            throw GatehouseError(.invalidInput, "the certificate request's extension request is malformed")
        }
        var seen = Set<ASN1ObjectIdentifier>()
        for ext in requested {
            guard seen.insert(ext.oid).inserted else {
                throw GatehouseError(.invalidInput, "the certificate request names extension \(ext.oid) twice")
            }
            do {
                switch ext.oid {
                case .X509ExtensionID.subjectAlternativeName:
                    for name in try SubjectAlternativeNames(ext) {
                        switch name {
                        case .uniformResourceIdentifier(let uri):
                            guard spiffe == nil else {
                                throw GatehouseError(.invalidInput, "a certificate carries exactly one SPIFFE ID; the request names several URIs")
                            }
                            _ = try SPIFFEID.split(uri)
                            spiffe = uri
                        case .dnsName(let name):
                            dns.append(try Self.checkDNSName(name))
                        case .ipAddress(let octets):
                            guard let ip = IPPrefix(addressBytes: Array(octets.bytes)) else {
                                throw GatehouseError(.invalidInput, "an IP address SAN must be 4 or 16 bytes")
                            }
                            ips.append(ip)
                        default:
                            throw GatehouseError(
                                .invalidInput, "the certificate request asks for a name Gatehouse does not issue (only URI, DNS and IP SANs)")
                        }
                    }
                case .X509ExtensionID.basicConstraints:
                    if case .isCertificateAuthority = try BasicConstraints(ext) {
                        throw GatehouseError(.invalidInput, "the certificate request asks to be a CA; Gatehouse issues end-entity certificates only")
                    }
                case .X509ExtensionID.keyUsage:
                    let usage = try KeyUsage(ext)
                    guard usage == KeyUsage(digitalSignature: true) else {
                        throw GatehouseError(.invalidInput, "the certificate request asks for key usages beyond digitalSignature")
                    }
                case .X509ExtensionID.extendedKeyUsage:
                    for usage in try ExtendedKeyUsage(ext) where usage != .serverAuth && usage != .clientAuth {
                        throw GatehouseError(
                            .invalidInput, "the certificate request asks for extended key usage \(usage); only serverAuth and clientAuth are issued")
                    }
                default:
                    throw GatehouseError(.invalidInput, "the certificate request asks for extension \(ext.oid), which Gatehouse does not issue")
                }
            } catch let error as GatehouseError {
                throw error
            } catch {
                throw GatehouseError(.invalidInput, "the certificate request's extension \(ext.oid) is malformed")
            }
        }
        guard dns.count + ips.count + (spiffe == nil ? 0 : 1) <= Self.maxNames else {
            throw GatehouseError(.invalidInput, "the certificate request names more than \(Self.maxNames) subject alternative names")
        }
        guard Set(dns).count == dns.count, Set(ips).count == ips.count else {
            throw GatehouseError(.invalidInput, "the certificate request names a SAN twice")
        }
        self.publicKey = csr.publicKey
        self.algorithm = algorithm
        self.spiffeID = spiffe
        self.dnsNames = dns
        self.ipAddresses = ips
    }

    /// A DNS name as certificates carry it: lower case LDH labels, optional leading `*.`.
    public static func checkDNSName(_ name: String) throws(GatehouseError) -> String {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...253).contains(name.utf8.count), labels.count >= 1 else {
            throw GatehouseError(.invalidInput, "'\(name.prefix(64))' is not a DNS name")
        }
        for (i, label) in labels.enumerated() {
            if i == 0 && label == "*" && labels.count > 2 { continue }
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
            else {
                throw GatehouseError(.invalidInput, "'\(name.prefix(64))' is not a lower-case DNS name")
            }
        }
        return name
    }
}

extension SigningRequest {
    /// A PEM CSR for `key`, asking for `spiffeID` and `dnsNames` in its subjectAltName: what an
    /// agent sends (the key stays on the host).
    public static func makePEM(key: SigningKey, spiffeID: String?, dnsNames: [String] = []) throws -> String {
        var names: [GeneralName] = spiffeID.map { [.uniformResourceIdentifier($0)] } ?? []
        names += dnsNames.map { .dnsName($0) }
        var attributes = CertificateSigningRequest.Attributes()
        if !names.isEmpty {
            attributes.insert(
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: try Certificate.Extensions { SubjectAlternativeNames(names) })))
        }
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: key.certificatePrivateKey, attributes: attributes,
            signatureAlgorithm: key.pkiAlgorithm.signatureAlgorithm)
        return PEM.encode(try DERBytes.of(csr), label: "CERTIFICATE REQUEST")
    }
}
