/// How many credentials a revocation by grant ended: what was issued with the access tokens of
/// OIDC grants whose sign-in session was revoked.
public struct IssuedUnderGrants: Sendable, Equatable {
    public var sshCertificates = 0
    public var x509Certificates = 0
    public var networkDevices = 0

    public init() {}

    /// As audit details: `ssh_certificates`, `x509_certificates`, `network_devices`.
    public var details: [String: String] {
        [
            "ssh_certificates": String(self.sshCertificates), "x509_certificates": String(self.x509Certificates),
            "network_devices": String(self.networkDevices),
        ]
    }
}
