public import Foundation

/// One SSH login the policy allows a user on one host, as the certificate authority needs it
/// (the policy engine's answer, mapped by the service layer).
public struct SSHLoginPermit: Sendable, Equatable {
    public var login: String
    public var host: String
    /// The longest certificate this permit allows; nil: the default cap.
    public var maxLifetime: TimeInterval?
    public var extensions: Set<String>
    public var forceCommand: String?
    /// CIDRs for `source-address`, nil when the rule names none.
    public var sourceAddresses: [String]?

    public init(login: String, host: String, maxLifetime: TimeInterval?, extensions: Set<String>, forceCommand: String?, sourceAddresses: [String]?) {
        self.login = login
        self.host = host
        self.maxLifetime = maxLifetime
        self.extensions = extensions
        self.forceCommand = forceCommand
        self.sourceAddresses = sourceAddresses
    }

    /// The certificate principal for this permit: `LOGIN@HOST`. Each host accepts, for each
    /// local account, only principals naming itself (its agent writes `AuthorizedPrincipalsFile`),
    /// so a certificate for `deploy` on web-1 does not open `deploy` on db-1.
    public var principal: String { "\(self.login)@\(self.host)" }
}

/// The rules that turn permits into one user certificate: what the CA signs.
public enum SSHCertificatePlan {
    public static let defaultLifetime: TimeInterval = 8 * 3600
    public static let backdate: TimeInterval = 60

    /// - Parameters:
    ///   - permits: what the policy allows this user (on the requested hosts).
    ///   - requestedLifetime: what the client asked for, if anything.
    public static func certificate(
        for publicKey: SSHPublicKey, username: String, permits: [SSHLoginPermit], requestedLifetime: TimeInterval?, serial: UInt64, requestID: String,
        now: Date
    ) throws(SSHError) -> SSHCertificate {
        guard !permits.isEmpty else { throw SSHError(.notPermitted, "the policy allows you no SSH login on these hosts") }
        let principals = Array(Set(permits.map(\.principal))).sorted()
        guard principals.count <= SSHCertificate.maxPrincipals else {
            throw SSHError(
                .invalidCertificate,
                "the policy allows \(principals.count) logins, more than one certificate may carry (\(SSHCertificate.maxPrincipals)); ask for specific hosts"
            )
        }
        if let requested = requestedLifetime, !(requested >= 60) { throw SSHError(.invalidCertificate, "the lifetime must be at least one minute") }
        let cap = permits.map { $0.maxLifetime ?? Self.defaultLifetime }.min()!
        let lifetime = min(requestedLifetime ?? Self.defaultLifetime, cap, Self.defaultLifetime * 3)
        // Certificate-wide settings must hold for every permit: the least of them is granted.
        var extensions = permits[0].extensions
        for p in permits.dropFirst() { extensions.formIntersection(p.extensions) }
        let commands = Set(permits.map { $0.forceCommand ?? "" })
        guard commands.count == 1 else {
            throw SSHError(.invalidCertificate, "these hosts have different force-commands; ask for them one at a time")
        }
        let sources = Set(permits.map { ($0.sourceAddresses ?? []).sorted().joined(separator: ",") })
        guard sources.count == 1 else {
            throw SSHError(.invalidCertificate, "these hosts allow different source networks; ask for them one at a time")
        }
        var options: [String: String] = [:]
        if let command = permits[0].forceCommand { options["force-command"] = command }
        if let source = sources.first, !source.isEmpty { options["source-address"] = source }
        let after = UInt64(max(0, (now.timeIntervalSince1970 - Self.backdate).rounded(.down)))
        let before = UInt64((now.timeIntervalSince1970 + lifetime).rounded(.down))
        let certificate = SSHCertificate(
            kind: .user, publicKey: publicKey, serial: serial, keyID: "\(username) serial:\(serial) request:\(requestID)",
            principals: principals, validAfter: after, validBefore: before, criticalOptions: options,
            extensions: extensions.intersection(SSHCertificate.knownExtensions))
        try certificate.validate()
        return certificate
    }
}
