public import Foundation
public import GatehouseCore
public import SwiftASN1
public import X509

/// What Gatehouse's own mutual-TLS links require of a peer's chain, beyond RFC 5280 (which
/// swift-certificates' `RFC5280Policy` checks, but without extended key usage or key usage):
/// the leaf carries exactly one SPIFFE ID in our trust domain, is not a CA, may sign
/// (digitalSignature), and has the extended key usage the link needs; every issuer above it is
/// a CA that may sign certificates (keyCertSign).
public struct SPIFFELeafPolicy: VerifierPolicy {
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName,
    ]

    public let trustDomain: String
    public let usage: ExtendedKeyUsage.Usage

    public init(trustDomain: String, usage: ExtendedKeyUsage.Usage) {
        self.trustDomain = trustDomain
        self.usage = usage
    }

    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        if let reason = Self.failure(chain: Array(chain), trustDomain: self.trustDomain, usage: self.usage) {
            return .failsToMeetPolicy(reason: reason)
        }
        return .meetsPolicy
    }

    /// Why `chain` (leaf first) fails, or nil when it passes.
    public static func failure(chain: [Certificate], trustDomain: String, usage: ExtendedKeyUsage.Usage) -> String? {
        guard let leaf = chain.first else { return "empty chain" }
        do {
            if let constraints = try leaf.extensions.basicConstraints, case .isCertificateAuthority = constraints {
                return "the leaf is a CA certificate"
            }
            guard let keyUsage = try leaf.extensions.keyUsage, keyUsage.digitalSignature else { return "the leaf's key usage lacks digitalSignature" }
            guard let eku = try leaf.extensions.extendedKeyUsage, eku.contains(usage) else { return "the leaf's extended key usage lacks \(usage)" }
            guard case .success(let id) = Self.spiffeID(of: leaf) else { return "the leaf does not carry exactly one valid SPIFFE ID" }
            guard id.trustDomain == trustDomain else { return "the leaf's SPIFFE ID is in trust domain \(id.trustDomain), not \(trustDomain)" }
            for issuer in chain.dropFirst() {
                guard let constraints = try issuer.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
                    return "an issuer in the chain is not a CA"
                }
                guard let keyUsage = try issuer.extensions.keyUsage, keyUsage.keyCertSign else {
                    return "an issuer in the chain may not sign certificates"
                }
            }
        } catch {
            return "an extension in the chain is malformed"
        }
        return nil
    }

    public struct Identity: Sendable, Equatable {
        public let id: String
        public let trustDomain: String
        public let segments: [String]
    }

    /// swift-certificates' reasons embed whole certificate dumps (`Certificate Certificate(...)`);
    /// keep the words around them, bounded, so logs and errors say what failed.
    static func shorten(_ text: String) -> String {
        var out = ""
        var depth = 0
        var rest = Substring(text)
        while let c = rest.first {
            if depth == 0 && rest.hasPrefix("Certificate(") {
                depth = 1
                rest = rest.dropFirst("Certificate(".count)
                out += "…"
                continue
            }
            if depth > 0 {
                if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            } else {
                out.append(c)
            }
            rest = rest.dropFirst()
        }
        return String(out.prefix(300))
    }

    /// The one SPIFFE ID a leaf carries: exactly one URI SAN, and it must be a valid SPIFFE ID.
    public static func spiffeID(of certificate: Certificate) -> Result<Identity, GatehouseError> {
        let uris = Authority.names(of: certificate).uris
        guard uris.count == 1 else {
            return .failure(GatehouseError(.unauthenticated, "the certificate carries \(uris.count) URIs, not one SPIFFE ID"))
        }
        do {
            let parts = try SPIFFEID.split(uris[0])
            return .success(Identity(id: uris[0], trustDomain: parts.trustDomain, segments: parts.segments))
        } catch {
            return .failure(error)
        }
    }

    /// Verifies `chain` (leaf first, as a TLS peer sends it) against `root` at `time` with
    /// RFC 5280 and this policy; returns the leaf's identity or why it fails.
    public static func verify(chain: [Certificate], root: Certificate, trustDomain: String, usage: ExtendedKeyUsage.Usage, time: Date) async
        -> Result<(Identity, Certificate), GatehouseError>
    {
        guard let leaf = chain.first, chain.count <= 4 else {
            return .failure(GatehouseError(.unauthenticated, "no certificate, or a chain longer than 4"))
        }
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(fixedValidationTime: time)
            SPIFFELeafPolicy(trustDomain: trustDomain, usage: usage)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst())) {
        case .validCertificate:
            switch Self.spiffeID(of: leaf) {
            case .success(let id): return .success((id, leaf))
            case .failure(let error): return .failure(error)
            }
        case .couldNotValidate(let failures):
            let reason = failures.first.map { Self.shorten("\($0.policyFailureReason)") } ?? "no chain to the Gatehouse root"
            return .failure(GatehouseError(.unauthenticated, "the certificate does not verify: \(reason)"))
        }
    }
}
