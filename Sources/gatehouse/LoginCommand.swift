import ArgumentParser
import Crypto
import Foundation
import GatehouseClient
import GatehouseCore
import GatehouseSSH

#if canImport(Glibc)
    import Glibc
#endif

/// Where the CLI keeps a person's sign-in and SSH files: `$GATEHOUSE_CONFIG_DIR`, else
/// `~/.config/gatehouse` (0700; files 0600).
struct CLIConfig {
    let directory: String

    init() {
        let env = ProcessInfo.processInfo.environment
        self.directory = env["GATEHOUSE_CONFIG_DIR"] ?? ((env["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".config/gatehouse")
    }

    func path(_ name: String) -> String { (self.directory as NSString).appendingPathComponent(name) }

    struct Credentials: Codable {
        var server: String
        var accessToken: String
        var refreshToken: String?
        var expiresAt: Date
        var username: String?
    }

    func prepare() throws {
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(self.directory, 0o700)
    }

    /// Writes `data` to `name` with mode 0600, atomically.
    func write(_ name: String, _ data: Data) throws {
        try self.prepare()
        let temporary = self.path(".\(name).tmp")
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw GatehouseError(.invalidInput, "cannot write \(temporary)")
        }
        guard rename(temporary, self.path(name)) == 0 else { throw GatehouseError(.invalidInput, "cannot write \(self.path(name))") }
    }

    func load() throws -> Credentials {
        guard let data = FileManager.default.contents(atPath: self.path("credentials.json")) else {
            throw GatehouseError(.unauthenticated, "not signed in; run gatehouse login --server URL")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let credentials = try? decoder.decode(Credentials.self, from: data) else {
            throw GatehouseError(.unauthenticated, "\(self.path("credentials.json")) is unreadable; run gatehouse login again")
        }
        return credentials
    }

    func save(_ credentials: Credentials) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try self.write("credentials.json", try encoder.encode(credentials))
    }

    /// A live access token: refreshed (and the rotated refresh token saved) when it is about to
    /// expire. Serialized across processes with a lock file: two runs refreshing at once would
    /// present one refresh token twice, which the server treats as theft and ends the sign-in.
    func accessToken() async throws -> (String, Credentials) {
        try self.prepare()
        let lock = open(self.path("credentials.lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX) == 0 else { throw GatehouseError(.internal, "cannot lock \(self.path("credentials.lock"))") }
        defer { close(lock) }
        var credentials = try self.load()
        if credentials.expiresAt.timeIntervalSinceNow > 30 { return (credentials.accessToken, credentials) }
        guard let refresh = credentials.refreshToken, let server = URL(string: credentials.server) else {
            throw GatehouseError(.unauthenticated, "the sign-in has expired; run gatehouse login again")
        }
        do {
            let tokens = try await ServerClient(server: server).refresh(refresh)
            credentials.accessToken = tokens.accessToken
            credentials.refreshToken = tokens.refreshToken ?? refresh
            credentials.expiresAt = Date().addingTimeInterval(TimeInterval(tokens.expiresIn))
            try self.save(credentials)
            return (tokens.accessToken, credentials)
        } catch let refusal as ServerClient.OAuthRefusal {
            throw GatehouseError(.unauthenticated, "the sign-in has ended (\(refusal.message)); run gatehouse login again")
        }
    }
}

/// A server URL the CLI may talk to: https, or plain http only to this machine (plain HTTP
/// elsewhere would hand tokens and CA keys to anyone on the path).
func serverURL(_ text: String) throws -> URL {
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else {
        throw GatehouseError(.invalidInput, "--server must be a URL like https://gatehouse.example.com")
    }
    if scheme == "https" { return url }
    guard scheme == "http", ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) else {
        throw GatehouseError(.invalidInput, "--server must use https (plain http only to localhost)")
    }
    return url
}

/// Writes a line to standard output at once: the person needs it now, not when a pipe's buffer
/// fills or the process ends.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// The signed-in name from an ID token's payload, for display only.
func preferredUsername(idToken: String?) -> String? {
    guard let parts = idToken?.split(separator: "."), parts.count == 3, let payload = Base64URL.decode(String(parts[1])),
        let claims = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
    else { return nil }
    return claims["preferred_username"] as? String
}

/// `gatehouse login`: sign in through the server's OpenID Connect provider with a passkey in a
/// browser, and keep the tokens for the CLI.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in with your passkey: opens (or prints) a browser page; --device for machines without a browser."
    )

    @Option(help: "The Gatehouse server, e.g. https://gatehouse.example.com (default: the one you last signed in to).") var server: String?
    @Flag(help: "Device sign-in: approve a short code from any other device's browser.") var device = false
    @Flag(name: .customLong("no-browser"), help: "Print the sign-in URL instead of opening a browser.") var noBrowser = false
    @Flag(name: .customLong("step-up"), help: "Ask for your passkey even if the browser is signed in (for rules with step_up).") var stepUp = false

    static let scope = "openid profile offline_access ssh certificates network"
    /// What device sign-in asks for when the policy keeps Gatehouse's own scopes out of it.
    static let deviceScope = "openid profile offline_access"

    func run() async throws {
        do {
            guard let text = self.server ?? (try? CLIConfig().load())?.server else {
                throw GatehouseError(.invalidInput, "name the server to sign in to: gatehouse login --server https://gatehouse.example.com")
            }
            let url = try serverURL(text)
            let client = ServerClient(server: url)
            let tokens: ServerClient.Tokens
            if self.device {
                if self.stepUp { throw GatehouseError(.invalidInput, "a step-up needs your passkey in a browser on this machine; drop --device") }
                let start: ServerClient.DeviceStart
                do {
                    start = try await client.startDeviceAuthorization(scope: Self.scope)
                } catch let refusal as ServerClient.OAuthRefusal where refusal.code == "invalid_scope" {
                    // The policy keeps Gatehouse's own scopes out of the device flow (the default):
                    // sign in without them and say how to get them.
                    say(
                        "Device sign-in cannot obtain SSH certificates, X.509 identities or network devices here (\(refusal.message)).\nSigning in without them; run gatehouse login (with a browser) for those."
                    )
                    start = try await client.startDeviceAuthorization(scope: Self.deviceScope)
                }
                say("To sign in, open \(start.verificationURIComplete)\nin a browser and check that it shows the code \(start.userCode).")
                tokens = try await client.waitForDeviceApproval(
                    start,
                    progress: { remaining in
                        // A line now and then, not a spinner: the output may be a log.
                        say("Waiting for approval of \(start.userCode) (\(remaining / 60)m \(remaining % 60)s left)...")
                    })
            } else {
                tokens = try await LoopbackSignIn.run(client: client, scope: Self.scope, openBrowser: !self.noBrowser, fresh: self.stepUp)
            }
            let username = try await Self.keep(tokens, server: url)
            print("Signed in to \(url.absoluteString) as \(username ?? "you"). Credentials are in \(CLIConfig().directory).")
        } catch {
            throw fail(error)
        }
    }

    /// A fresh passkey check in the browser, for a rule's `step_up`: the same sign-in as
    /// `gatehouse login --step-up`, to the server of the saved credentials. Returns the new access token.
    static func stepUp(reason: String) async throws -> String {
        let config = CLIConfig()
        guard let server = URL(string: try config.load().server) else { throw GatehouseError(.unauthenticated, "not signed in; run gatehouse login") }
        say("\(reason)\nAsking for a fresh passkey check in the browser...")
        let tokens = try await LoopbackSignIn.run(client: ServerClient(server: server), scope: Self.scope, openBrowser: true, fresh: true)
        _ = try await Self.keep(tokens, server: server)
        return tokens.accessToken
    }

    /// Saves the tokens and writes what SSH needs (hosts, known_hosts, ssh_config, the bastion's
    /// config). Returns the signed-in name.
    static func keep(_ tokens: ServerClient.Tokens, server url: URL) async throws -> String? {
        let client = ServerClient(server: url)
        let config = CLIConfig()
        let username = preferredUsername(idToken: tokens.idToken)
        try config.save(
            .init(
                server: url.absoluteString, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken,
                expiresAt: Date().addingTimeInterval(TimeInterval(tokens.expiresIn)), username: username))
        // SSH, for the hosts this person may reach only: their certificate goes to those
        // servers and no others, and the host CA vouches for those names and no others.
        let authorities = try await client.sshAuthorities()
        let hosts = (try? await client.sshHosts(accessToken: tokens.accessToken)) ?? []
        try config.write("hosts.json", try JSONEncoder().encode(hosts))
        let patterns = hosts.flatMap { [$0.name] + $0.addresses }.filter { $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") } }
        try config.write(
            "known_hosts", Data((patterns.isEmpty ? "" : "@cert-authority \(patterns.joined(separator: ",")) \(authorities.hostCA)\n").utf8))
        // Each host by its policy name: where it is (its first address and sshd port) and the
        // name its host certificate vouches for (HostKeyAlias), so `ssh web-1` resolves and
        // checks the right key on any port. Then its addresses, for `ssh 10.0.0.5`.
        let named = hosts.filter { BastionTarget.isHostName($0.name) }.map { host in
            "Host \(host.name)\n" + (host.addresses.first.map { "    HostName \($0)\n" } ?? "")
                + "    Port \(host.port ?? 22)\n    HostKeyAlias \(host.name)\n"
                + "    IdentityFile \(config.path("id_ed25519"))\n    CertificateFile \(config.path("id_ed25519-cert.pub"))\n"
                + "    UserKnownHostsFile \(config.path("known_hosts"))\n\n"
        }
        let addresses = hosts.flatMap(\.addresses).filter { $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") } }
        // The hosts by their addresses too, for `ssh 10.0.0.5`.
        let byAddress =
            addresses.isEmpty
            ? ""
            : "Host \(addresses.joined(separator: " "))\n" + "    IdentityFile \(config.path("id_ed25519"))\n"
                + "    CertificateFile \(config.path("id_ed25519-cert.pub"))\n" + "    UserKnownHostsFile \(config.path("known_hosts"))\n\n"
        let sshConfig =
            patterns.isEmpty
            ? "# No SSH hosts for you in the policy yet; run gatehouse login again when there are.\n"
            : "# Written by gatehouse login. Add to ~/.ssh/config:  Include \(config.path("ssh_config"))\n" + named.joined() + byAddress
        try config.write("ssh_config", Data(sshConfig.utf8))
        // Through the bastion: the same hosts, each reached as HOST on the bastion (log in as
        // your own name; `ssh -l LOGIN@HOST HOST` for another login); sessions are recorded.
        if let bastion = authorities.bastion, !patterns.isEmpty {
            let alias = "gatehouse-bastion"
            let bastionHost = bastion.host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }) ? bastion.host : "localhost"
            // The bastion's key under its alias, and under its real name and port, so the
            // README's `ssh -p PORT LOGIN@HOST@BASTION` checks it too.
            let realName = bastion.port == 22 ? bastionHost : "[\(bastionHost)]:\(bastion.port)"
            try config.write(
                "known_hosts",
                Data(
                    ("@cert-authority \(patterns.joined(separator: ",")) \(authorities.hostCA)\n"
                        + "\(alias) \(bastion.hostKey)\n\(realName) \(bastion.hostKey)\n").utf8))
            let blocks = hosts.map(\.name).filter(BastionTarget.isHostName).map { name in
                "Host \(name)\n    HostName \(bastionHost)\n    Port \(bastion.port)\n    User \(name)\n    HostKeyAlias \(alias)\n"
                    + "    IdentityFile \(config.path("id_ed25519"))\n    CertificateFile \(config.path("id_ed25519-cert.pub"))\n"
                    + "    IdentitiesOnly yes\n    UserKnownHostsFile \(config.path("known_hosts"))\n\n"
            }
            let header =
                "# Written by gatehouse login: your hosts through the Gatehouse bastion (sessions are recorded).\n"
                + "# Add to ~/.ssh/config instead of ssh_config:  Include \(config.path("ssh_bastion_config"))\n"
                + "# `ssh web-1` logs in as your own name; `ssh -l root@web-1 web-1` as root;\n"
                + "# `ssh -p \(bastion.port) root@web-1@\(bastionHost)` names the bastion itself.\n\n"
            // The bastion by its own name, for a login of the form LOGIN@HOST (or HOST).
            let direct =
                "Match host \(bastionHost) user *@*,\(hosts.map(\.name).filter(BastionTarget.isHostName).joined(separator: ","))\n"
                + "    IdentityFile \(config.path("id_ed25519"))\n    CertificateFile \(config.path("id_ed25519-cert.pub"))\n"
                + "    IdentitiesOnly yes\n    UserKnownHostsFile \(config.path("known_hosts"))\n\n"
            try config.write("ssh_bastion_config", Data((header + blocks.joined() + direct).utf8))
        }
        return username
    }
}

/// The code flow through a loopback redirect (RFC 8252 §7.3): a one-shot listener on a free
/// 127.0.0.1 port receives the code; PKCE S256 protects it.
enum LoopbackSignIn {
    /// Opens `url` with the person's browser: `$BROWSER` (as git and Python do: a command, or
    /// several separated by colons, tried in turn), else xdg-open or open.
    static func openBrowser(_ url: String) {
        let env = ProcessInfo.processInfo.environment
        let chosen = (env["BROWSER"] ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty } + ["/usr/bin/xdg-open", "/usr/bin/open"]
        for command in chosen {
            let path =
                command.contains("/")
                ? command
                : ((env["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(command)" }.first {
                    FileManager.default.isExecutableFile(atPath: $0)
                } ?? "")
            guard FileManager.default.isExecutableFile(atPath: path) else { continue }
            if (try? Process.run(URL(fileURLWithPath: path), arguments: [url])) != nil { return }
        }
    }

    /// `fresh`: ask for the passkey even when the browser is signed in (`prompt=login`, `max_age=0`).
    static func run(client: ServerClient, scope: String, openBrowser: Bool, fresh: Bool = false) async throws -> ServerClient.Tokens {
        let listener = try LoopbackListener()
        let redirect = "http://127.0.0.1:\(listener.port)/callback"
        let verifier = Base64URL.encode((0..<48).map { _ in UInt8.random(in: 0...255) })
        let state = Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        let challenge = Base64URL.encode(SHA256.hash(data: Array(verifier.utf8)))
        var components = URLComponents(url: client.server.appendingPathComponent("oauth2/authorize"), resolvingAgainstBaseURL: false)!
        components.queryItems = [
            .init(name: "client_id", value: client.clientID), .init(name: "redirect_uri", value: redirect),
            .init(name: "response_type", value: "code"),
            .init(name: "scope", value: scope), .init(name: "state", value: state), .init(name: "code_challenge", value: challenge),
            .init(name: "code_challenge_method", value: "S256"),
        ]
        if fresh { components.queryItems! += [.init(name: "prompt", value: "login"), .init(name: "max_age", value: "0")] }
        let url = components.url!.absoluteString
        say("Sign in at: \(url)")
        if openBrowser { Self.openBrowser(url) }
        // Only the answer carrying this request's state counts; anything else is ignored.
        let query = try await listener.waitForCallback(timeout: 300) { query in
            (URLComponents(string: "http://x/?" + query)?.queryItems ?? []).first { $0.name == "state" }?.value == state
        }
        let items = URLComponents(string: "http://x/?" + query)?.queryItems ?? []
        func value(_ name: String) -> String? { items.first { $0.name == name }?.value }
        if let error = value("error") { throw GatehouseError(.unauthenticated, "sign-in refused: \(value("error_description") ?? error)") }
        guard let code = value("code") else { throw GatehouseError(.unauthenticated, "the sign-in answer carried no code") }
        return try await client.exchangeCode(code, verifier: verifier, redirectURI: redirect)
    }
}

/// A one-shot HTTP listener on 127.0.0.1 for the redirect carrying the code.
final class LoopbackListener: @unchecked Sendable {
    // @unchecked: the descriptor is used by one accept loop, then closed.
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw GatehouseError(.internal, "cannot open a loopback socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 4) == 0 else {
            close(fd)
            throw GatehouseError(.internal, "cannot listen on a loopback port")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(self.fd) }

    /// The query string of the first `GET /callback?...` that `accept` takes; answers the browser
    /// with a short page. Idle or slow connections time out after five seconds each.
    func waitForCallback(timeout: Int, accept: @escaping @Sendable (String) -> Bool) async throws -> String {
        let fd = self.fd
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let deadline = Date().addingTimeInterval(TimeInterval(timeout))
                while Date() < deadline {
                    guard poll(&poller, 1, 1000) > 0 else { continue }
                    let client = Glibc.accept(fd, nil, nil)
                    guard client >= 0 else { continue }
                    var limit = timeval(tv_sec: 5, tv_usec: 0)
                    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                    var buffer = [UInt8](repeating: 0, count: 8192)
                    let n = read(client, &buffer, buffer.count)
                    let head = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
                    let line = head.split(separator: "\r\n").first.map(String.init) ?? ""
                    let parts = line.split(separator: " ")
                    if parts.count >= 2, parts[0] == "GET", parts[1].hasPrefix("/callback?"), accept(String(parts[1].dropFirst("/callback?".count))) {
                        let page = "<!doctype html><title>Gatehouse</title><p>Signed in. You can close this tab and return to the terminal.</p>"
                        let response =
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(page.utf8.count)\r\nConnection: close\r\n\r\n\(page)"
                        _ = response.withCString { write(client, $0, strlen($0)) }
                        close(client)
                        continuation.resume(returning: String(parts[1].dropFirst("/callback?".count)))
                        return
                    }
                    let notFound = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    _ = notFound.withCString { write(client, $0, strlen($0)) }
                    close(client)
                }
                continuation.resume(throwing: GatehouseError(.unauthenticated, "no sign-in arrived within \(timeout) seconds"))
            }
        }
    }
}

/// `gatehouse logout`: revokes the refresh token (and so every token of this sign-in) and
/// forgets the credentials.
struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign out: revoke this machine's tokens and delete them.")

    func run() async throws {
        do {
            let config = CLIConfig()
            let credentials = try config.load()
            if let server = URL(string: credentials.server) {
                try await ServerClient(server: server).revoke(credentials.refreshToken ?? credentials.accessToken)
            }
            for name in ["credentials.json", "id_ed25519-cert.pub"] { try? FileManager.default.removeItem(atPath: config.path(name)) }
            print("Signed out of \(credentials.server).")
        } catch {
            throw fail(error)
        }
    }
}

/// `gatehouse status`: who this machine is signed in as, and the SSH certificate's state.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show who you are signed in as (asking the server whether it still holds), the hosts you may reach, and your SSH certificate.")

    func run() async throws {
        do {
            let config = CLIConfig()
            let stored = try config.load()
            print("server:       \(stored.server)")
            // The server decides whether this sign-in still holds (it may have been revoked,
            // or the account locked or offboarded): ask it, refreshing the token if needed.
            let token: String
            let credentials: CLIConfig.Credentials
            do {
                (token, credentials) = try await config.accessToken()
            } catch let error as GatehouseError where error.code == .unauthenticated {
                print("signed in as: \(stored.username ?? "unknown"), but \(error.message)")
                throw ExitCode(1)
            }
            guard let server = URL(string: credentials.server) else { throw GatehouseError(.internal, "the stored server URL is malformed") }
            let hosts: [ServerClient.SSHHost]
            do {
                hosts = try await ServerClient(server: server).sshHosts(accessToken: token)
            } catch let error as GatehouseError where error.code == .unauthenticated {
                print("signed in as: \(credentials.username ?? "unknown"), but \(error.message)")
                throw ExitCode(1)
            } catch let error as GatehouseError where error.code == .forbidden {
                print("signed in as: \(credentials.username ?? "unknown") (no SSH access in this sign-in)")
                hosts = []
            }
            print("signed in as: \(credentials.username ?? "unknown") (checked with the server)")
            print("access token: valid until \(ISO8601DateFormatter().string(from: credentials.expiresAt))")
            print("refresh:      \(credentials.refreshToken == nil ? "none (sign in again when it expires)" : "yes")")
            print(
                "hosts:        \(hosts.isEmpty ? "none" : hosts.map { h in h.name + (h.addresses.first.map { " (\($0)" + ((h.port ?? 22) == 22 ? "" : ":\(h.port!)") + ")" } ?? "") }.joined(separator: ", "))"
            )
            let certificate = config.path("id_ed25519-cert.pub")
            print("ssh cert:     \(FileManager.default.fileExists(atPath: certificate) ? certificate : "none (gatehouse ssh cert)")")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }
    }
}
