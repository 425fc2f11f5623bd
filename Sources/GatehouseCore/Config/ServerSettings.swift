import Foundation

/// The settings `gatehouse serve` runs with, resolved from defaults, a configuration file and
/// flags (flags win). Every check happens here, before anything is created on disk, so a bad
/// setting stops the server with one line naming the setting and where it came from.
public struct ServerSettings: Sendable, Equatable {
    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        case text
        case json
    }

    public struct TLSFiles: Sendable, Equatable {
        public let certificatePath: String
        public let privateKeyPath: String
    }

    /// Values as given on the command line; `nil` means "not given".
    public struct Overrides: Sendable, Equatable {
        public var dataDir: String?
        public var listen: String?
        public var publicURL: String?
        public var database: String?
        public var logFormat: String?
        public var logLevel: String?
        public var tlsCert: String?
        public var tlsKey: String?
        public var webauthnAttestation: String?
        public var webauthnTrustAnchors: String?
        /// Comma-separated on the command line.
        public var webauthnAAGUIDs: String?
        public var signInRate: String?
        /// Comma-separated on the command line.
        public var trustedProxies: String?
        public var mtlsListen: String?
        public var trustDomain: String?
        public var pkiAlgorithm: String?
        public var networkPrefix: String?
        public var sshListen: String?
        public var mtlsPublicURL: String?
        public var adminName: String?
        public init() {}
    }

    public static let defaultDataDir = "./gatehouse-data"
    public static let defaultListen = "127.0.0.1:8080"
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Configuration keys and the flag that overrides each, in documentation order.
    public static let knownKeys: [(key: String, flag: String)] = [
        ("data_dir", "--data-dir"), ("listen", "--listen"), ("public_url", "--public-url"),
        ("database", "--database"), ("log_format", "--log-format"), ("log_level", "--log-level"),
        ("tls.cert", "--tls-cert"), ("tls.key", "--tls-key"),
        ("webauthn.attestation", "--webauthn-attestation"), ("webauthn.trust_anchors", "--webauthn-trust-anchors"),
        ("webauthn.aaguids", "--webauthn-aaguids"), ("webauthn.signin_rate_per_minute", "--signin-rate"),
        ("trusted_proxies", "--trusted-proxies"), ("mtls_listen", "--mtls-listen"), ("trust_domain", "--trust-domain"),
        ("pki_algorithm", "--pki-algorithm"), ("network_prefix", "--network-prefix"), ("ssh_listen", "--ssh-listen"),
        ("mtls_public_url", "--mtls-public-url"), ("admin_name", "--admin-name"),
    ]

    /// Where the SSH bastion listens unless told otherwise (`off` turns it off).
    public static let defaultSSHListen = "127.0.0.1:2222"

    /// Sign-in attempts allowed per source network per minute, by default.
    public static let defaultSignInRate = 120

    /// Which passkeys may register: any (the default), or only attested authenticators whose
    /// certificate chains end at `trustAnchorsPath` (PEM), optionally only the listed models.
    public struct Passkeys: Sendable, Equatable {
        public let requireAttestation: Bool
        public let trustAnchorsPath: String?
        public let allowedAAGUIDs: [[UInt8]]?

        public static let any = Passkeys(requireAttestation: false, trustAnchorsPath: nil, allowedAAGUIDs: nil)
    }

    public let dataDir: String
    public let listen: ListenAddress
    public let publicURL: PublicURL
    public let database: DatabaseLocation
    public let logFormat: LogFormat
    public let logLevel: String
    public let tls: TLSFiles?
    public let passkeys: Passkeys
    /// Sign-in attempts per source network (IPv4 address, IPv6 /64) per minute.
    public let signInRatePerMinute: Int
    /// Reverse proxies whose `X-Forwarded-For` is believed (empty: the header is ignored).
    public let trustedProxies: [IPPrefix]
    /// The mutual-TLS listener for agents and services (TLS 1.3, client certificates required).
    public let mtlsListen: ListenAddress?
    /// The URL agents and services on other machines use for the mutual-TLS listener (nil when
    /// there is none): `mtls_public_url`, or one derived from `mtls_listen` and the public URL.
    public let mtlsPublicURL: String?
    /// The first administrator's user name (the bootstrap invitation's), `admin` by default.
    public let adminName: Username
    /// The SSH bastion's listener; nil when `ssh_listen = "off"`.
    public let sshListen: ListenAddress?
    /// The SPIFFE trust domain the X.509 authority issues for (default: the public URL's host).
    public let trustDomain: String
    /// The key algorithm of intermediates the server makes: `p256` (default) or `ed25519`.
    public let pkiAlgorithm: String
    /// The private network's address plan: the ULA /48 from `network_prefix`, or one derived
    /// from the trust domain.
    public let addressing: MeshAddressing

    public static func resolve(overrides: Overrides, file: ConfigDocument?, fileName: String = "config") throws(GatehouseError) -> ServerSettings {
        let known = Set(knownKeys.map(\.key))
        if let file {
            for key in file.keys where !known.contains(key) {
                let hint = knownKeys.map(\.key).joined(separator: ", ")
                throw GatehouseError(.configInvalid, "\(fileName):\(file[key]!.line): unknown key '\(key)' (known keys: \(hint))")
            }
        }
        let lookup = Lookup(overrides: overrides, file: file, fileName: fileName)

        let dataDir = try lookup.string("data_dir") ?? (Self.defaultDataDir, .default)
        guard !dataDir.value.isEmpty, !dataDir.value.contains("\0") else {
            throw lookup.error(dataDir.origin, "data_dir", "must be a non-empty path")
        }
        let listenText = try lookup.string("listen") ?? (Self.defaultListen, .default)
        let listen: ListenAddress
        do { listen = try ListenAddress(parsing: listenText.value) } catch { throw lookup.error(listenText.origin, "listen", error.message) }

        let certPath = try lookup.string("tls.cert")
        let keyPath = try lookup.string("tls.key")
        let tls: TLSFiles?
        switch (certPath, keyPath) {
        case (nil, nil): tls = nil
        case let (cert?, key?): tls = TLSFiles(certificatePath: cert.value, privateKeyPath: key.value)
        case let (cert?, nil): throw lookup.error(cert.origin, "tls.cert", "is set but tls.key is not; give both or neither")
        case let (nil, key?): throw lookup.error(key.origin, "tls.key", "is set but tls.cert is not; give both or neither")
        }
        if tls == nil && !listen.isLoopback {
            throw lookup.error(
                listenText.origin, "listen",
                "refusing to serve plain HTTP on \(listen), which is not a loopback address; configure tls.cert and tls.key (--tls-cert/--tls-key) or listen on 127.0.0.1"
            )
        }

        let publicURL: PublicURL
        if let given = try lookup.string("public_url") {
            do { publicURL = try PublicURL(parsing: given.value) } catch { throw lookup.error(given.origin, "public_url", error.message) }
            if publicURL.scheme == "http" && tls != nil {
                throw lookup.error(given.origin, "public_url", "uses http while TLS is configured; use https")
            }
        } else {
            guard listen.isLoopback else {
                throw lookup.error(
                    listenText.origin, "listen",
                    "is not a loopback address, so public_url cannot be derived from it; set public_url (--public-url) to the https URL users reach")
            }
            let scheme = tls == nil ? "http" : "https"
            // Cannot fail: localhost and a valid port always form a valid URL.
            publicURL = try! PublicURL(parsing: "\(scheme)://localhost:\(listen.port)")
        }

        let databaseText = try lookup.string("database")
        let database: DatabaseLocation
        do { database = try DatabaseLocation(parsing: databaseText?.value, dataDir: dataDir.value) } catch {
            throw lookup.error(databaseText?.origin ?? .default, "database", error.message)
        }

        let formatText = try lookup.string("log_format") ?? ("text", .default)
        guard let logFormat = LogFormat(rawValue: formatText.value) else {
            throw lookup.error(formatText.origin, "log_format", "must be 'text' or 'json', not '\(formatText.value)'")
        }
        let levelText = try lookup.string("log_level") ?? ("info", .default)
        guard Self.logLevels.contains(levelText.value) else {
            throw lookup.error(levelText.origin, "log_level", "must be one of \(Self.logLevels.joined(separator: ", "))")
        }

        let passkeys: Passkeys
        let attestation = try lookup.string("webauthn.attestation") ?? ("any", .default)
        switch attestation.value {
        case "any":
            passkeys = .any
        case "attested":
            guard let anchors = try lookup.string("webauthn.trust_anchors"), !anchors.value.isEmpty else {
                throw lookup.error(
                    attestation.origin, "webauthn.attestation",
                    "'attested' needs webauthn.trust_anchors (a PEM file of the vendors' root certificates)")
            }
            var aaguids: [[UInt8]]? = nil
            if let list = try lookup.stringList("webauthn.aaguids") {
                aaguids = []
                for text in list.value {
                    guard let bytes = Hex.decode(text.replacingOccurrences(of: "-", with: "")), bytes.count == 16 else {
                        throw lookup.error(list.origin, "webauthn.aaguids", "'\(text.prefix(40))' is not an AAGUID (32 hex digits, dashes allowed)")
                    }
                    aaguids?.append(bytes)
                }
            }
            passkeys = Passkeys(requireAttestation: true, trustAnchorsPath: anchors.value, allowedAAGUIDs: aaguids)
        default:
            throw lookup.error(attestation.origin, "webauthn.attestation", "must be 'any' or 'attested'")
        }

        var signInRate = Self.defaultSignInRate
        let rateKey = "webauthn.signin_rate_per_minute"
        let rate: (Int?, SettingOrigin)?
        if let flag = overrides.signInRate {
            rate = (Int(flag), .flag("--signin-rate"))
        } else if let entry = file?[rateKey], case .integer(let value) = entry.value {
            rate = (Int(exactly: value), .file(fileName, line: entry.line))
        } else {
            rate = try lookup.string(rateKey).map { (Int($0.value), $0.origin) }
        }
        if let (value, origin) = rate {
            guard let value, (1...1_000_000).contains(value) else {
                throw lookup.error(origin, rateKey, "must be a whole number from 1 to 1000000")
            }
            signInRate = value
        }

        var trustedProxies: [IPPrefix] = []
        if let list = try lookup.stringList("trusted_proxies") {
            for text in list.value {
                do { trustedProxies.append(try IPPrefix(parsing: text)) } catch {
                    throw lookup.error(list.origin, "trusted_proxies", error.message)
                }
            }
        }

        var mtlsListen: ListenAddress? = nil
        if let text = try lookup.string("mtls_listen") {
            do { mtlsListen = try ListenAddress(parsing: text.value) } catch { throw lookup.error(text.origin, "mtls_listen", error.message) }
            if mtlsListen?.port == listen.port && mtlsListen?.bindHost == listen.bindHost {
                throw lookup.error(text.origin, "mtls_listen", "must differ from listen")
            }
        }
        var mtlsPublicURL: String? = nil
        if let text = try lookup.string("mtls_public_url") {
            guard let mtls = mtlsListen else {
                throw lookup.error(text.origin, "mtls_public_url", "needs mtls_listen: there is no mutual-TLS listener to reach")
            }
            guard let c = URLComponents(string: text.value), c.scheme == "https", let host = c.host, !host.isEmpty, c.path.isEmpty || c.path == "/",
                c.query == nil, c.fragment == nil, c.user == nil, text.value.utf8.count <= 512
            else {
                throw lookup.error(
                    text.origin, "mtls_public_url", "must be https://HOST[:PORT] (no path), e.g. https://gatehouse.internal:\(mtls.port)")
            }
            // The host goes into the listener's certificate: an IP address or a plain DNS name
            // (letters, digits, hyphens; no wildcard, escape or other script), lower-cased, the
            // same string in the URL agents get and in the certificate.
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            guard c.percentEncodedHost == c.host, Self.isCertificateHost(bare.lowercased()) else {
                throw lookup.error(
                    text.origin, "mtls_public_url", "'\(host.prefix(64))' must be an IP address or a DNS name of letters, digits, hyphens and dots")
            }
            let name = bare.lowercased()
            mtlsPublicURL = "https://\(name.contains(":") ? "[\(name)]" : name)\(c.port.map { ":\($0)" } ?? "")"
        } else if let mtls = mtlsListen {
            mtlsPublicURL = Self.derivedMTLSURL(listen: mtls, publicHost: publicURL.host)
        }
        let adminText = try lookup.string("admin_name") ?? ("admin", .default)
        let adminName: Username
        do { adminName = try Username(validating: adminText.value) } catch { throw lookup.error(adminText.origin, "admin_name", error.message) }
        let sshText = try lookup.string("ssh_listen") ?? (Self.defaultSSHListen, .default)
        var sshListen: ListenAddress? = nil
        if sshText.value != "off" {
            do { sshListen = try ListenAddress(parsing: sshText.value) } catch { throw lookup.error(sshText.origin, "ssh_listen", error.message) }
            for other in [listen, mtlsListen].compactMap({ $0 }) where other.port == sshListen?.port && other.bindHost == sshListen?.bindHost {
                throw lookup.error(sshText.origin, "ssh_listen", "must differ from listen and mtls_listen")
            }
        }
        let domain = try lookup.string("trust_domain") ?? (publicURL.host, .default)
        guard SPIFFEID.isValidTrustDomain(domain.value) else {
            throw lookup.error(
                domain.origin, "trust_domain", "'\(domain.value.prefix(64))' is not a SPIFFE trust domain (lower-case a-z, 0-9, '.', '-', '_')")
        }

        let algorithm = try lookup.string("pki_algorithm") ?? ("p256", .default)
        guard ["p256", "ed25519"].contains(algorithm.value) else {
            throw lookup.error(algorithm.origin, "pki_algorithm", "must be p256 or ed25519, not '\(algorithm.value.prefix(32))'")
        }

        var addressing = MeshAddressing(trustDomain: domain.value)
        if let text = try lookup.string("network_prefix") {
            do { addressing = try MeshAddressing(prefix: try IPPrefix(parsing: text.value)) } catch {
                throw lookup.error(text.origin, "network_prefix", error.message)
            }
        }

        return ServerSettings(
            dataDir: dataDir.value, listen: listen, publicURL: publicURL, database: database,
            logFormat: logFormat, logLevel: levelText.value, tls: tls, passkeys: passkeys, signInRatePerMinute: signInRate,
            trustedProxies: trustedProxies, mtlsListen: mtlsListen, mtlsPublicURL: mtlsPublicURL, adminName: adminName, sshListen: sshListen,
            trustDomain: domain.value, pkiAlgorithm: algorithm.value, addressing: addressing
        )
    }
}

extension ServerSettings {
    /// An IP address, or a DNS name of LDH labels (RFC 1123), fit for a certificate's names.
    static func isCertificateHost(_ host: String) -> Bool {
        if IPAddress.isIPv4(host) || IPAddress.isIPv6(host) { return true }
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        }
    }

    /// The mutual-TLS URL agents are told when none is configured: the public URL's host on the
    /// listener's port; but when the public host is this machine's loopback name and the listener
    /// is bound to one concrete other address, that address (agents elsewhere cannot reach
    /// "localhost").
    static func derivedMTLSURL(listen: ListenAddress, publicHost: String) -> String {
        let loopbackName = publicHost == "localhost" || publicHost.hasPrefix("127.") || publicHost == "::1"
        let bind = listen.bindHost
        let concrete = !(bind == "0.0.0.0" || bind == "::" || bind == "localhost" || bind.hasPrefix("127.") || bind == "::1")
        let host = loopbackName && concrete ? (bind.contains(":") ? "[\(bind)]" : bind) : publicHost
        return "https://\(host):\(listen.port)"
    }
}

/// Where a setting's value came from, for error messages.
enum SettingOrigin: Equatable {
    case `default`
    case flag(String)
    case file(String, line: Int)
}

private struct Lookup {
    let overrides: ServerSettings.Overrides
    let file: ConfigDocument?
    let fileName: String

    func string(_ key: String) throws(GatehouseError) -> (value: String, origin: SettingOrigin)? {
        let flag = ServerSettings.knownKeys.first { $0.key == key }!.flag
        let flagValue: String? =
            switch key {
            case "data_dir": self.overrides.dataDir
            case "listen": self.overrides.listen
            case "public_url": self.overrides.publicURL
            case "database": self.overrides.database
            case "log_format": self.overrides.logFormat
            case "log_level": self.overrides.logLevel
            case "tls.cert": self.overrides.tlsCert
            case "tls.key": self.overrides.tlsKey
            case "webauthn.attestation": self.overrides.webauthnAttestation
            case "webauthn.trust_anchors": self.overrides.webauthnTrustAnchors
            case "webauthn.aaguids": self.overrides.webauthnAAGUIDs
            case "webauthn.signin_rate_per_minute": self.overrides.signInRate
            case "trusted_proxies": self.overrides.trustedProxies
            case "mtls_listen": self.overrides.mtlsListen
            case "trust_domain": self.overrides.trustDomain
            case "pki_algorithm": self.overrides.pkiAlgorithm
            case "network_prefix": self.overrides.networkPrefix
            case "ssh_listen": self.overrides.sshListen
            case "mtls_public_url": self.overrides.mtlsPublicURL
            case "admin_name": self.overrides.adminName
            default: nil
            }
        if let flagValue { return (flagValue, .flag(flag)) }
        guard let entry = self.file?[key] else { return nil }
        guard case .string(let text) = entry.value else {
            throw self.error(.file(self.fileName, line: entry.line), key, "must be a string, found \(entry.value.typeName)")
        }
        return (text, .file(self.fileName, line: entry.line))
    }

    /// A list: comma-separated from a flag; an array of strings (or one string) in the file.
    func stringList(_ key: String) throws(GatehouseError) -> (value: [String], origin: SettingOrigin)? {
        let flagGiven =
            (key == "webauthn.aaguids" && self.overrides.webauthnAAGUIDs != nil) || (key == "trusted_proxies" && self.overrides.trustedProxies != nil)
        if let entry = self.file?[key], case .array(let items) = entry.value, !flagGiven {
            var out: [String] = []
            for item in items {
                guard case .string(let text) = item else {
                    throw self.error(.file(self.fileName, line: entry.line), key, "must be a list of strings")
                }
                out.append(text)
            }
            return (out, .file(self.fileName, line: entry.line))
        }
        guard let single = try self.string(key) else { return nil }
        return (single.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }, single.origin)
    }

    func error(_ origin: SettingOrigin, _ key: String, _ message: String) -> GatehouseError {
        switch origin {
        case .default: GatehouseError(.configInvalid, "\(key): \(message)")
        case .flag(let flag): GatehouseError(.configInvalid, "\(flag): \(message)")
        case .file(let name, let line): GatehouseError(.configInvalid, "\(name):\(line): \(key): \(message)")
        }
    }
}
