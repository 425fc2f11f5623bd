public import GatehouseCore

/// Why an SSH key, certificate request or certificate was refused, with a stable code.
public struct SSHError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        case malformed = "ssh.malformed"
        case unsupportedKey = "ssh.unsupported_key"
        case invalidCertificate = "ssh.invalid_certificate"
        case tooLarge = "ssh.too_large"
        /// A certificate request without a valid proof that the asker holds the key.
        case proofRequired = "ssh.proof_required"
        /// The policy allows no login on the hosts asked for.
        case notPermitted = "ssh.not_permitted"
        /// The policy would allow a login after a fresh passkey check (a rule's `step_up`).
        /// The same code as ``GatehouseError/Code/stepUpRequired``: one word for "ask for the
        /// passkey again" on every surface.
        case stepUpRequired = "step_up_required"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}

extension SSHError: CodedError {
    public var stableCode: String { self.code.rawValue }
    public var httpStatus: Int {
        switch self.code {
        case .notPermitted: 403
        case .stepUpRequired: 401
        case .tooLarge: 413
        default: 400
        }
    }
    /// RFC 9470: the token is valid, its authentication too old for what was asked.
    public var challenge: String? {
        self.code == .stepUpRequired
            ? #"Bearer error="insufficient_user_authentication", error_description="a fresh passkey check is needed", max_age=0"# : nil
    }
}
