import GatehouseCore
import Testing

@Suite("Server settings")
struct ServerSettingsTests {
    func resolve(_ file: String? = nil, _ configure: (inout ServerSettings.Overrides) -> Void = { _ in }) throws -> ServerSettings {
        var overrides = ServerSettings.Overrides()
        configure(&overrides)
        let document = try file.map { try ConfigParser(fileName: "g.toml").parse(Array($0.utf8)) }
        return try ServerSettings.resolve(overrides: overrides, file: document, fileName: "g.toml")
    }

    func message(_ file: String? = nil, _ configure: (inout ServerSettings.Overrides) -> Void = { _ in }) -> String? {
        do {
            _ = try self.resolve(file, configure)
            return nil
        } catch let error as GatehouseError {
            #expect(error.code == .configInvalid)
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func defaultsAreTheEmbeddedLoopbackServer() throws {
        let s = try self.resolve()
        #expect(s.dataDir == "./gatehouse-data")
        #expect(s.listen.description == "127.0.0.1:8080")
        #expect(s.publicURL.origin == "http://localhost:8080")
        #expect(s.publicURL.relyingPartyID == "localhost")
        #expect(s.database == .sqlite(path: "./gatehouse-data/gatehouse.sqlite"))
        #expect(s.logFormat == .text)
        #expect(s.tls == nil)
    }

    @Test func flagsOverrideTheFile() throws {
        let s = try self.resolve("listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/gh\"\nlog_format = \"json\"") {
            $0.listen = "[::1]:9100"
        }
        #expect(s.listen.description == "[::1]:9100")
        #expect(s.publicURL.origin == "http://localhost:9100")
        #expect(s.dataDir == "/srv/gh")
        #expect(s.database == .sqlite(path: "/srv/gh/gatehouse.sqlite"))
        #expect(s.logFormat == .json)
    }

    @Test func postgresAndTLS() throws {
        let s = try self.resolve(
            """
            listen = "0.0.0.0:8443"
            public_url = "https://gatehouse.example.org"
            database = "postgres://gh:secret@db.internal:5432/gatehouse"
            [tls]
            cert = "/c.pem"
            key = "/k.pem"
            """)
        #expect(s.publicURL.origin == "https://gatehouse.example.org")
        #expect(s.tls?.certificatePath == "/c.pem" && s.tls?.privateKeyPath == "/k.pem")
        #expect(s.database.description == "postgres://gh:***@db.internal:5432/gatehouse")
    }

    @Test func refusals() {
        #expect(self.message("lisen = \"x\"")?.hasPrefix("g.toml:1: unknown key 'lisen' (known keys: data_dir, listen,") == true)
        #expect(self.message("listen = 8080") == "g.toml:1: listen: must be a string, found integer")
        #expect(self.message("\nlisten = \"0.0.0.0:8080\"")?.hasPrefix("g.toml:2: listen: refusing to serve plain HTTP on 0.0.0.0:8080") == true)
        #expect(self.message { $0.listen = "10.0.0.5:80" }?.hasPrefix("--listen: refusing to serve plain HTTP on 10.0.0.5:80") == true)
        #expect(self.message { $0.listen = "web:80" } == "--listen: 'web:80': host must be an IP address or localhost")
        #expect(self.message { $0.listen = "127.0.0.1:0" } == "--listen: '127.0.0.1:0': port must be a number from 1 to 65535")
        #expect(self.message { $0.listen = "127.0.0.1:99999" } == "--listen: '127.0.0.1:99999': port must be a number from 1 to 65535")
        #expect(self.message { $0.listen = "::1:80" }?.contains("IPv6 hosts go in brackets") == true)
        #expect(self.message { $0.tlsCert = "/c.pem" } == "--tls-cert: is set but tls.key is not; give both or neither")
        #expect(self.message { $0.publicURL = "http://127.0.0.1:8080" }?.contains("WebAuthn refuses IP addresses") == true)
        #expect(self.message { $0.publicURL = "http://gatehouse.example.org" }?.contains("plain http is only for localhost") == true)
        #expect(self.message { $0.publicURL = "https://g.example.org/path" }?.contains("no path, query, fragment or credentials") == true)
        #expect(self.message { $0.publicURL = "ftp://g.example.org" }?.contains("scheme must be https") == true)
        #expect(self.message { $0.publicURL = "not a url" }?.contains("is not an absolute http(s) URL") == true)
        #expect(self.message { $0.database = "mysql://x" } == "--database: database must be postgres://USER@HOST/DB or sqlite:PATH")
        #expect(self.message { $0.logFormat = "xml" } == "--log-format: must be 'text' or 'json', not 'xml'")
        #expect(self.message { $0.logLevel = "loud" }?.hasPrefix("--log-level: must be one of trace") == true)
        #expect(self.message { $0.dataDir = "" } == "--data-dir: must be a non-empty path")
        #expect(
            self.message {
                $0.listen = "0.0.0.0:8443"
                $0.tlsCert = "/c"
                $0.tlsKey = "/k"
            }?.contains("public_url cannot be derived") == true)
        #expect(
            self.message {
                $0.tlsCert = "/c"
                $0.tlsKey = "/k"
                $0.publicURL = "http://localhost:8080"
            } == "--public-url: uses http while TLS is configured; use https")
    }

    @Test func loopbackDetection() throws {
        for host in ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1"] {
            #expect(try ListenAddress(parsing: host).isLoopback, "\(host)")
        }
        for host in ["0.0.0.0:1", "[::]:1", "10.1.2.3:1", "[fe80::1]:1"] {
            #expect(try !ListenAddress(parsing: host).isLoopback, "\(host)")
        }
        #expect(try ListenAddress(parsing: "[::]:1").isWildcard)
        #expect(throws: GatehouseError.self) { try ListenAddress(parsing: "127.000.0.1:80") }
        #expect(throws: GatehouseError.self) { try ListenAddress(parsing: "[1:2:3:4:5:6:7:8:9]:80") }
    }

    @Test func passkeysAcceptAnyAuthenticatorByDefaultAndHardwareOnlyOnRequest() throws {
        #expect(try self.resolve().passkeys == .any)
        let file = """
            [webauthn]
            attestation = "attested"
            trust_anchors = "/etc/gatehouse/fido-roots.pem"
            aaguids = ["cb69481e-8ff7-4039-93ec-0a2729a154a8", "ee882879721c491397753dfcce97072a"]
            """
        let s = try self.resolve(file)
        #expect(s.passkeys.requireAttestation && s.passkeys.trustAnchorsPath == "/etc/gatehouse/fido-roots.pem")
        #expect(s.passkeys.allowedAAGUIDs?.count == 2 && s.passkeys.allowedAAGUIDs?[0].first == 0xCB)
        let flags = try self.resolve {
            $0.webauthnAttestation = "attested"
            $0.webauthnTrustAnchors = "/r.pem"
            $0.webauthnAAGUIDs = "cb69481e8ff7403993ec0a2729a154a8"
        }
        #expect(flags.passkeys.allowedAAGUIDs?.count == 1)
        #expect(self.message { $0.webauthnAttestation = "attested" }?.contains("needs webauthn.trust_anchors") == true)
        #expect(self.message { $0.webauthnAttestation = "maybe" } == "--webauthn-attestation: must be 'any' or 'attested'")
        #expect(
            self.message("[webauthn]\nattestation = \"attested\"\ntrust_anchors = \"/r.pem\"\naaguids = [\"xyz\"]")?.contains("is not an AAGUID")
                == true)
        #expect(
            self.message("[webauthn]\naaguids = [1]\nattestation = \"attested\"\ntrust_anchors = \"/r.pem\"")?.contains("must be a list of strings")
                == true)
    }

    @Test func signInRate() throws {
        #expect(try self.resolve().signInRatePerMinute == 120)
        #expect(try self.resolve("[webauthn]\nsignin_rate_per_minute = 600").signInRatePerMinute == 600)
        #expect(try self.resolve("[webauthn]\nsignin_rate_per_minute = 600") { $0.signInRate = "30" }.signInRatePerMinute == 30)
        #expect(self.message { $0.signInRate = "0" } == "--signin-rate: must be a whole number from 1 to 1000000")
        #expect(self.message("[webauthn]\nsignin_rate_per_minute = \"lots\"")?.contains("must be a whole number") == true)
    }

    @Test func mutualTLSPublicURLAndAdminName() throws {
        // Agents are told a URL they can reach: the public host, unless that is "localhost" and
        // the listener is bound to one concrete address.
        #expect(try self.resolve().mtlsPublicURL == nil)
        #expect(
            try self.resolve {
                $0.mtlsListen = "0.0.0.0:8443"
                $0.publicURL = "https://gh.example.com"
            }.mtlsPublicURL == "https://gh.example.com:8443")
        #expect(try self.resolve { $0.mtlsListen = "10.77.0.1:8443" }.mtlsPublicURL == "https://10.77.0.1:8443")
        #expect(try self.resolve { $0.mtlsListen = "[fd00::1]:8443" }.mtlsPublicURL == "https://[fd00::1]:8443")
        #expect(try self.resolve { $0.mtlsListen = "127.0.0.1:8443" }.mtlsPublicURL == "https://localhost:8443")
        #expect(
            try self.resolve("mtls_listen = \"0.0.0.0:8443\"\nmtls_public_url = \"https://gh.internal:443\"").mtlsPublicURL
                == "https://gh.internal:443")
        #expect(self.message { $0.mtlsPublicURL = "https://gh.internal" }?.contains("needs mtls_listen") == true)
        #expect(
            try self.resolve {
                $0.mtlsListen = "0.0.0.0:8443"
                $0.mtlsPublicURL = "https://GH.Internal:8443"
            }.mtlsPublicURL == "https://gh.internal:8443")
        #expect(
            try self.resolve {
                $0.mtlsListen = "0.0.0.0:8443"
                $0.mtlsPublicURL = "https://[FD00::1]:8443"
            }.mtlsPublicURL == "https://[fd00::1]:8443")
        // Names that would put a wildcard, an escape or another script into the certificate.
        for bad in [
            "https://*.corp.example:8443", "https://gh%2Einternal:8443", "https://gh_internal:8443", "https://-gh.internal", "https://gh..internal",
        ] {
            #expect(
                self.message {
                    $0.mtlsListen = "0.0.0.0:8443"
                    $0.mtlsPublicURL = bad
                }?.contains("--mtls-public-url") == true, "\(bad)")
        }
        for bad in ["http://gh.internal:8443", "https://gh.internal:8443/path", "gh.internal:8443", "https://user@gh.internal"] {
            #expect(
                self.message {
                    $0.mtlsListen = "0.0.0.0:8443"
                    $0.mtlsPublicURL = bad
                }?.contains("--mtls-public-url: must be https://HOST[:PORT]") == true, "\(bad)")
        }
        #expect(try self.resolve().adminName.rawValue == "admin")
        #expect(try self.resolve { $0.adminName = "alice" }.adminName.rawValue == "alice")
        #expect(try self.resolve("admin_name = \"bob\"").adminName.rawValue == "bob")
        #expect(self.message { $0.adminName = "Not A Name" }?.hasPrefix("--admin-name: ") == true)
        #expect(self.message("admin_name = \"-x\"")?.contains("admin_name") == true)
    }

    @Test func trustedProxies() throws {
        #expect(try self.resolve().trustedProxies.isEmpty)
        #expect(try self.resolve("trusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]").trustedProxies.map(\.description) == ["10.0.0.0/8", "fd00::/8"])
        #expect(
            try self.resolve("trusted_proxies = [\"10.0.0.0/8\"]") { $0.trustedProxies = "192.0.2.1" }.trustedProxies.map(\.description) == [
                "192.0.2.1"
            ])
        #expect(self.message { $0.trustedProxies = "10.0.0.1/8" }?.contains("has host bits set; did you mean 10.0.0.0/8?") == true)
        #expect(self.message("trusted_proxies = [\"proxy.internal\"]")?.contains("is not an IP address or CIDR prefix") == true)
    }
}
