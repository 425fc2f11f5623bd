public import GatehouseCore

/// Why a WebAuthn ceremony or message was refused. The code is stable (it reaches API clients and
/// the audit log); the message is for people and never carries secrets.
public struct WebAuthnError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case malformed = "webauthn.malformed"
        case tooLarge = "webauthn.too_large"
        case typeMismatch = "webauthn.type_mismatch"
        case challengeMismatch = "webauthn.challenge_mismatch"
        case originMismatch = "webauthn.origin_mismatch"
        case crossOrigin = "webauthn.cross_origin"
        case rpIDMismatch = "webauthn.rp_id_mismatch"
        case userNotPresent = "webauthn.user_not_present"
        case userNotVerified = "webauthn.user_not_verified"
        case backupStateInvalid = "webauthn.backup_state_invalid"
        case unsupportedAlgorithm = "webauthn.unsupported_algorithm"
        case badSignature = "webauthn.bad_signature"
        case attestationInvalid = "webauthn.attestation_invalid"
        case attestationUnsupported = "webauthn.attestation_unsupported"
        case counterRegression = "webauthn.counter_regression"
        case credentialNotAllowed = "webauthn.credential_not_allowed"
        case userHandleMismatch = "webauthn.user_handle_mismatch"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }
}

extension WebAuthnError: CodedError {
    public var stableCode: String { self.code.rawValue }
    public var httpStatus: Int { self.code == .tooLarge ? 413 : 400 }
}
