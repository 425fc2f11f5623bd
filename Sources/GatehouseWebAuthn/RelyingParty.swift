import Crypto
public import Foundation
import GatehouseCore
import SwiftASN1
public import X509

/// Gatehouse as a WebAuthn relying party: verifies registration and authentication ceremonies
/// with every step of WebAuthn Level 3 §7.1 and §7.2 that belongs to the relying party, and
/// nothing else (no I/O; challenges, credentials and users come in as values).
///
/// User presence and user verification are both required: a passkey is both factors.
public struct RelyingParty: Sendable {
    /// The RP ID passkeys are scoped to (a registrable domain, `localhost` for development).
    public let id: String
    public let name: String
    /// Exact origins accepted in clientDataJSON, e.g. `https://gatehouse.example.org`.
    public let origins: Set<String>
    /// Algorithms offered and accepted, in order of preference.
    public let algorithms: [COSEKey.Algorithm]
    public let idHash: [UInt8]
    public let attestation: AttestationPolicy

    public init(
        id: String, name: String, origins: Set<String>, algorithms: [COSEKey.Algorithm] = [.es256, .edDSA, .rs256],
        attestation: AttestationPolicy = .anyAuthenticator
    ) {
        self.id = id
        self.name = name
        self.origins = origins
        self.algorithms = algorithms
        self.attestation = attestation
        self.idHash = Array(SHA256.hash(data: Array(id.utf8)))
    }

    /// A credential as stored after registration.
    public struct StoredCredential: Sendable, Equatable {
        public var id: [UInt8]
        public var publicKey: [UInt8]
        public var signCount: UInt32
        public var backupEligible: Bool
        /// The user handle the credential was created for.
        public var userHandle: [UInt8]

        public init(id: [UInt8], publicKey: [UInt8], signCount: UInt32, backupEligible: Bool, userHandle: [UInt8]) {
            self.id = id
            self.publicKey = publicKey
            self.signCount = signCount
            self.backupEligible = backupEligible
            self.userHandle = userHandle
        }
    }

    /// What a verified registration establishes.
    public struct VerifiedRegistration: Sendable, Equatable {
        public let credentialID: [UInt8]
        public let publicKey: COSEKey
        public let signCount: UInt32
        public let aaguid: [UInt8]
        public let attestationFormat: String
        public let backupEligible: Bool
        public let backedUp: Bool
        public let transports: [String]
        /// The attestation certificate chain (leaf first) when the statement carried one.
        public let attestationChain: [Certificate]
    }

    /// What a verified assertion establishes.
    public struct VerifiedAuthentication: Sendable, Equatable {
        public let credentialID: [UInt8]
        public let signCount: UInt32
        public let backedUp: Bool
    }

    // MARK: registration

    public func verifyRegistration(_ response: RegistrationResponse, challenge: [UInt8]) throws(WebAuthnError) -> VerifiedRegistration {
        try self.checkClientData(response.clientDataJSON, type: "webauthn.create", challenge: challenge)
        let clientDataHash = Array(SHA256.hash(data: response.clientDataJSON))
        let attestation = try CBORDecoder().decode(response.attestationObject)
        guard let pairs = attestation.mapPairs, pairs.count == 3,
            let fmt = attestation[text: "fmt"]?.textString,
            let statement = attestation[text: "attStmt"], statement.mapPairs != nil,
            let authBytes = attestation[text: "authData"]?.byteString
        else {
            throw WebAuthnError(.malformed, "attestationObject must be a map of exactly fmt, attStmt and authData")
        }
        let authData = try AuthenticatorData(authBytes)
        try self.checkAuthenticatorData(authData)
        guard let credential = authData.attestedCredential else {
            throw WebAuthnError(.malformed, "a registration must carry attested credential data")
        }
        guard credential.credentialID == response.credentialID else {
            throw WebAuthnError(.malformed, "the credential ID in authenticator data differs from the response's id")
        }
        guard self.algorithms.contains(credential.publicKey.algorithm) else {
            throw WebAuthnError(.unsupportedAlgorithm, "\(credential.publicKey.algorithm.name) was not offered")
        }
        let chain = try Self.verifyAttestation(
            format: fmt, statement: statement, authData: authData, clientDataHash: clientDataHash, key: credential.publicKey)
        if self.attestation.mode == .attested {
            guard !chain.isEmpty else {
                throw WebAuthnError(
                    .attestationInvalid, "this server accepts only attested security keys; '\(fmt.prefix(32))' carries no attestation certificate")
            }
            if let allowed = self.attestation.allowedAAGUIDs, !allowed.contains(credential.aaguid) {
                throw WebAuthnError(.attestationInvalid, "authenticator model \(Hex.encode(credential.aaguid)) is not on the allowlist")
            }
        }
        return VerifiedRegistration(
            credentialID: credential.credentialID, publicKey: credential.publicKey, signCount: authData.signCount,
            aaguid: credential.aaguid, attestationFormat: fmt, backupEligible: authData.flags.contains(.backupEligible),
            backedUp: authData.flags.contains(.backedUp), transports: response.transports, attestationChain: chain
        )
    }

    /// In hardware-only mode, checks that the attestation chain ends at a trust anchor and is
    /// valid at `now` (RFC 5280 path validation). Without an anchor nothing can be trusted.
    public func verifyAttestationTrust(_ registration: VerifiedRegistration, now: Date) async throws(WebAuthnError) {
        guard self.attestation.mode == .attested else { return }
        guard let leaf = registration.attestationChain.first, !self.attestation.trustAnchors.isEmpty else {
            throw WebAuthnError(.attestationInvalid, "no attestation chain, or no trust anchors configured")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(self.attestation.trustAnchors)) { RFC5280Policy(validationTime: now) }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(Array(registration.attestationChain.dropFirst())))
        guard case .validCertificate = result else {
            throw WebAuthnError(.attestationInvalid, "the attestation certificate does not chain to a trusted authenticator vendor")
        }
    }

    /// Verifies an attestation statement (WebAuthn §8.2, §8.6, §8.7): `none`, `packed` (self
    /// attestation, or with a certificate chain) and `fido-u2f`. Returns the chain, leaf first,
    /// or empty for `none` and self attestation. Whether the chain is trusted is
    /// ``verifyAttestationTrust(_:now:)``'s question.
    static func verifyAttestation(format: String, statement: CBORValue, authData: AuthenticatorData, clientDataHash: [UInt8], key: COSEKey)
        throws(WebAuthnError) -> [Certificate]
    {
        let signed = authData.bytes + clientDataHash
        switch format {
        case "none":
            guard statement.mapPairs?.isEmpty == true else {
                throw WebAuthnError(.attestationInvalid, "attestation format none must have an empty statement")
            }
            return []
        case "packed":
            guard let alg = statement[text: "alg"]?.int, let sig = statement[text: "sig"]?.byteString else {
                throw WebAuthnError(.attestationInvalid, "packed attestation needs alg and sig")
            }
            guard let x5c = statement[text: "x5c"] else {
                guard statement.mapPairs?.count == 2 else { throw WebAuthnError(.attestationInvalid, "packed self attestation has unknown fields") }
                guard alg == key.algorithm.rawValue else {
                    throw WebAuthnError(.attestationInvalid, "packed self attestation alg differs from the credential key")
                }
                guard key.isValidSignature(sig, for: signed) else {
                    throw WebAuthnError(.attestationInvalid, "packed self attestation signature does not verify")
                }
                return []
            }
            guard statement.mapPairs?.count == 3 else { throw WebAuthnError(.attestationInvalid, "packed attestation has unknown fields") }
            let chain = try Self.certificates(x5c)
            let leaf = chain[0]
            guard let algorithm = COSEKey.Algorithm(rawValue: alg), Self.isValid(sig, for: signed, by: leaf, algorithm: algorithm) else {
                throw WebAuthnError(.attestationInvalid, "packed attestation signature does not verify with the attestation certificate")
            }
            try Self.checkPackedCertificate(leaf, aaguid: authData.attestedCredential?.aaguid ?? [])
            return chain
        case "fido-u2f":
            guard statement.mapPairs?.count == 2, let sig = statement[text: "sig"]?.byteString, let x5c = statement[text: "x5c"] else {
                throw WebAuthnError(.attestationInvalid, "fido-u2f attestation needs exactly x5c and sig")
            }
            let chain = try Self.certificates(x5c)
            guard chain.count == 1, let certKey = P256.Signing.PublicKey(chain[0].publicKey) else {
                throw WebAuthnError(.attestationInvalid, "fido-u2f attestation needs one P-256 certificate")
            }
            guard key.algorithm == .es256, let credential = authData.attestedCredential,
                let value = try? CBORDecoder().decode(credential.publicKey.encoded),
                let x = value[int: -2]?.byteString, let y = value[int: -3]?.byteString
            else {
                throw WebAuthnError(.attestationInvalid, "fido-u2f credentials are ES256 keys")
            }
            let data = [0x00] + authData.rpIDHash + clientDataHash + credential.credentialID + [0x04] + x + y
            guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: sig), certKey.isValidSignature(signature, for: data) else {
                throw WebAuthnError(.attestationInvalid, "fido-u2f attestation signature does not verify")
            }
            return chain
        default:
            throw WebAuthnError(.attestationUnsupported, "attestation format '\(format.prefix(32))' is not supported")
        }
    }

    static func certificates(_ x5c: CBORValue) throws(WebAuthnError) -> [Certificate] {
        guard case .array(let items) = x5c, (1...5).contains(items.count) else {
            throw WebAuthnError(.attestationInvalid, "x5c must be a list of one to five certificates")
        }
        var out: [Certificate] = []
        for item in items {
            guard let der = item.byteString, let certificate = try? Certificate(derEncoded: der) else {
                throw WebAuthnError(.attestationInvalid, "x5c holds something that is not a DER certificate")
            }
            out.append(certificate)
        }
        return out
    }

    static func isValid(_ signature: [UInt8], for data: [UInt8], by certificate: Certificate, algorithm: COSEKey.Algorithm) -> Bool {
        switch algorithm {
        case .es256: return certificate.publicKey.isValidSignature(signature, for: data, signatureAlgorithm: .ecdsaWithSHA256)
        case .rs256: return certificate.publicKey.isValidSignature(signature, for: data, signatureAlgorithm: .sha256WithRSAEncryption)
        case .edDSA: return certificate.publicKey.isValidSignature(signature, for: data, signatureAlgorithm: .ed25519)
        }
    }

    /// The FIDO `id-fido-gen-ce-aaguid` extension (1.3.6.1.4.1.45724.1.1.4).
    static let aaguidExtension: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4]

    /// §8.2.1: version 3, subject OU "Authenticator Attestation", not a CA, and an AAGUID
    /// extension (when present) equal to the authenticator data's.
    static func checkPackedCertificate(_ certificate: Certificate, aaguid: [UInt8]) throws(WebAuthnError) {
        guard certificate.version == .v3 else { throw WebAuthnError(.attestationInvalid, "attestation certificate is not X.509 v3") }
        let ou = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.organizationalUnitName }.map {
            String(describing: $0.value)
        }
        guard ou.contains("Authenticator Attestation") else {
            throw WebAuthnError(.attestationInvalid, "attestation certificate subject OU must be 'Authenticator Attestation'")
        }
        if let constraints = try? certificate.extensions.basicConstraints, case .isCertificateAuthority = constraints {
            throw WebAuthnError(.attestationInvalid, "attestation certificate must not be a CA")
        }
        if let ext = certificate.extensions[oid: Self.aaguidExtension] {
            guard let octets = try? ASN1OctetString(derEncoded: ext.value), Array(octets.bytes) == aaguid else {
                throw WebAuthnError(.attestationInvalid, "attestation certificate AAGUID differs from the authenticator's")
            }
        }
    }

    // MARK: authentication

    /// Verifies an assertion for `credential` (looked up by the response's credential ID).
    /// `expectedUserHandle` is the user the ceremony was started for, when one was named.
    public func verifyAuthentication(
        _ response: AuthenticationResponse, challenge: [UInt8], credential: StoredCredential, expectedUserHandle: [UInt8]? = nil
    ) throws(WebAuthnError) -> VerifiedAuthentication {
        guard ConstantTime.equals(response.credentialID, credential.id) else {
            throw WebAuthnError(.credentialNotAllowed, "the assertion is for another credential")
        }
        if let handle = response.userHandle, !ConstantTime.equals(handle, credential.userHandle) {
            throw WebAuthnError(.userHandleMismatch, "the user handle does not belong to this credential")
        }
        if let expected = expectedUserHandle, !ConstantTime.equals(expected, credential.userHandle) {
            throw WebAuthnError(.credentialNotAllowed, "the credential belongs to another user")
        }
        try self.checkClientData(response.clientDataJSON, type: "webauthn.get", challenge: challenge)
        let authData = try AuthenticatorData(response.authenticatorData)
        try self.checkAuthenticatorData(authData)
        guard authData.attestedCredential == nil else { throw WebAuthnError(.malformed, "an assertion must not carry attested credential data") }
        guard authData.flags.contains(.backupEligible) == credential.backupEligible else {
            throw WebAuthnError(.backupStateInvalid, "backup eligibility changed since registration")
        }
        let key = try COSEKey(encoded: credential.publicKey)
        let clientDataHash = Array(SHA256.hash(data: response.clientDataJSON))
        guard key.isValidSignature(response.signature, for: authData.bytes + clientDataHash) else {
            throw WebAuthnError(.badSignature, "the assertion signature does not verify")
        }
        // A counter that does not move forward means two authenticators share one key: a clone.
        if authData.signCount != 0 || credential.signCount != 0 {
            guard authData.signCount > credential.signCount else {
                throw WebAuthnError(
                    .counterRegression,
                    "signature counter \(authData.signCount) is not above the stored \(credential.signCount): possible cloned authenticator")
            }
        }
        return VerifiedAuthentication(credentialID: credential.id, signCount: authData.signCount, backedUp: authData.flags.contains(.backedUp))
    }

    /// A credential ID for a user name that has no passkeys, offered in sign-in options so they
    /// do not reveal who has an account: derived by HMAC-SHA-256 from a secret every replica
    /// shares (derived from the root key), so it is the same for the same name across restarts
    /// and replicas, and 16, 32 or 64 bytes long as real IDs are.
    public static func decoyCredentialID(for name: String, secret: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: secret)
        let first = Array(HMAC<SHA256>.authenticationCode(for: Array("id:\(name)".utf8), using: key))
        let second = Array(HMAC<SHA256>.authenticationCode(for: Array("more:\(name)".utf8), using: key))
        let length = [16, 32, 64][Int(first[0]) % 3]
        return Array((first + second).prefix(length))
    }

    // MARK: shared steps

    func checkClientData(_ bytes: [UInt8], type: String, challenge: [UInt8]) throws(WebAuthnError) {
        let data = try CollectedClientData(bytes)
        guard data.type == type else { throw WebAuthnError(.typeMismatch, "clientDataJSON type is '\(data.type.prefix(32))', expected \(type)") }
        guard ConstantTime.equals(data.challenge, challenge) else { throw WebAuthnError(.challengeMismatch, "the challenge is not the one issued") }
        guard self.origins.contains(data.origin) else {
            throw WebAuthnError(.originMismatch, "origin '\(data.origin.prefix(128))' is not this relying party's")
        }
        guard !data.crossOrigin, data.topOrigin == nil else {
            throw WebAuthnError(.crossOrigin, "ceremonies from inside another site's frame are refused")
        }
    }

    func checkAuthenticatorData(_ authData: AuthenticatorData) throws(WebAuthnError) {
        guard ConstantTime.equals(authData.rpIDHash, self.idHash) else {
            throw WebAuthnError(.rpIDMismatch, "the credential is scoped to another RP ID")
        }
        guard authData.flags.contains(.userPresent) else { throw WebAuthnError(.userNotPresent, "the authenticator did not test user presence") }
        guard authData.flags.contains(.userVerified) else {
            throw WebAuthnError(.userNotVerified, "the authenticator did not verify the user (PIN or biometric)")
        }
    }
}
