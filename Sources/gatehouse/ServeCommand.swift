import ArgumentParser
import Foundation
import GatehouseCore
import Logging

/// `gatehouse serve`: runs the server on the embedded SQLite store by default.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Gatehouse server.",
        discussion: """
            Settings come from defaults, then --config FILE (TOML), then flags; flags win.
            On first start the data dir, root key and key material are created and a one-time
            enrollment URL for the first administrator is printed.
            """
    )

    @Option(help: "Configuration file (TOML subset; see docs/configuration.md).") var config: String?
    @Option(
        name: .customLong("data-dir"),
        help: "Data directory (default: $GATEHOUSE_DATA_DIR, else data_dir in the config file, else \(ServerSettings.defaultDataDir)).") var dataDir:
        String?
    @Option(help: "Address to listen on, HOST:PORT (default: \(ServerSettings.defaultListen)).") var listen: String?
    @Option(name: .customLong("public-url"), help: "URL users reach Gatehouse at (default: derived from --listen).") var publicURL: String?
    @Option(help: "postgres://USER@HOST/DB or sqlite:PATH (default: SQLite in the data dir).") var database: String?
    @Option(name: .customLong("log-format"), help: "text or json (default: text).") var logFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical (default: info).") var logLevel: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for HTTPS.") var tlsCert: String?
    @Option(name: .customLong("webauthn-attestation"), help: "Which passkeys may register: any (default) or attested (hardware-only).")
    var webauthnAttestation: String?
    @Option(name: .customLong("webauthn-trust-anchors"), help: "PEM file of authenticator vendors' root certificates (for attested).")
    var webauthnTrustAnchors: String?
    @Option(name: .customLong("webauthn-aaguids"), help: "Comma-separated AAGUIDs of the allowed authenticator models (for attested).")
    var webauthnAAGUIDs: String?
    @Option(name: .customLong("signin-rate"), help: "Sign-in attempts per source network per minute (default 120).")
    var signInRate: String?
    @Option(name: .customLong("trusted-proxies"), help: "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed.")
    var trustedProxies: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for HTTPS.") var tlsKey: String?
    @Option(
        name: .customLong("mtls-listen"),
        help: "HOST:PORT of the mutual-TLS listener for agents and services (TLS 1.3, client certificate required; off by default).")
    var mtlsListen: String?
    @Option(
        name: .customLong("mtls-public-url"),
        help:
            "The URL agents on other machines use for the mutual-TLS listener, e.g. https://gatehouse.internal:8443 (default: derived from --mtls-listen and the public URL)."
    )
    var mtlsPublicURL: String?
    @Option(name: .customLong("admin-name"), help: "The first administrator's user name, used by the first start's enrollment link (default admin).")
    var adminName: String?
    @Option(name: .customLong("ssh-listen"), help: "HOST:PORT of the SSH bastion, or off (default \(ServerSettings.defaultSSHListen)).")
    var sshListen: String?
    @Option(name: .customLong("trust-domain"), help: "SPIFFE trust domain of the X.509 authority (default: the public URL's host).") var trustDomain:
        String?
    @Option(name: .customLong("pki-algorithm"), help: "Key algorithm of the X.509 intermediates the server makes: p256 (default) or ed25519.")
    var pkiAlgorithm: String?
    @Option(name: .customLong("network-prefix"), help: "The private network's IPv6 ULA /48 (default: derived from the trust domain).")
    var networkPrefix: String?

    func run() async throws {
        let settings: ServerSettings
        do {
            settings = try self.resolveSettings()
        } catch {
            throw fail(error)
        }
        Self.bootstrapLogging(settings)
        do {
            try await ServerRunner(settings: settings, version: Gatehouse.version).run()
        } catch {
            throw fail(error)
        }
    }

    func resolveSettings() throws -> ServerSettings {
        var overrides = ServerSettings.Overrides()
        overrides.dataDir = self.dataDir ?? DataDirOption.fromEnvironment
        overrides.listen = self.listen
        overrides.publicURL = self.publicURL
        overrides.database = self.database
        overrides.logFormat = self.logFormat
        overrides.logLevel = self.logLevel
        overrides.tlsCert = self.tlsCert
        overrides.webauthnAttestation = self.webauthnAttestation
        overrides.webauthnTrustAnchors = self.webauthnTrustAnchors
        overrides.webauthnAAGUIDs = self.webauthnAAGUIDs
        overrides.signInRate = self.signInRate
        overrides.trustedProxies = self.trustedProxies
        overrides.tlsKey = self.tlsKey
        overrides.mtlsListen = self.mtlsListen
        overrides.mtlsPublicURL = self.mtlsPublicURL
        overrides.adminName = self.adminName
        overrides.sshListen = self.sshListen
        overrides.trustDomain = self.trustDomain
        overrides.pkiAlgorithm = self.pkiAlgorithm
        overrides.networkPrefix = self.networkPrefix
        var document: ConfigDocument? = nil
        var fileName = "config"
        if let path = self.config {
            fileName = path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw GatehouseError(.configInvalid, "cannot read config file \(path)")
            }
            do {
                document = try ConfigParser(fileName: path).parse([UInt8](data))
            } catch {
                throw GatehouseError(.configInvalid, error.description)
            }
        }
        return try ServerSettings.resolve(overrides: overrides, file: document, fileName: fileName)
    }

    static func bootstrapLogging(_ settings: ServerSettings) {
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            switch settings.logFormat {
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
