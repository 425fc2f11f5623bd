import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehouseHostNetwork
import GatehousePKI
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// `gatehouse agent`: runs on each server. `join` enrolls it once with a one-time token; `run`
/// keeps the revocation list fresh and renews the host certificate before it expires.
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll this server with Gatehouse and keep its SSH trust current.",
        subcommands: [Join.self, Run.self, Cert.self, Leave.self]
    )

    struct Paths: ParsableArguments {
        @Option(name: .customLong("state-dir"), help: "Where the agent keeps its token, CA key and revocation list.") var stateDir =
            "/var/lib/gatehouse-agent"
        @Option(name: .customLong("host-key"), help: "The sshd host private key path; its .pub is certified, the certificate written beside it.")
        var hostKey = "/etc/ssh/ssh_host_ed25519_key"

        func path(_ name: String) -> String { (self.stateDir as NSString).appendingPathComponent(name) }

        func write(_ path: String, _ data: Data, mode: Int = 0o644) throws {
            try SecureFile.write(path, data, mode: mode)
        }

        func hostPublicKey() throws -> String {
            guard let data = FileManager.default.contents(atPath: self.hostKey + ".pub") else {
                throw GatehouseError(.invalidInput, "cannot read \(self.hostKey).pub")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        struct State: Codable {
            var server: String
            var host: String
            var agentToken: String
            var validBefore: Date
            /// The mutual-TLS listener, when the server runs one (then agent.key/agent.pem/ca.pem hold the identity).
            var mtlsURL: String?
            var agentNotBefore: Date?
            var agentNotAfter: Date?
        }

        /// A client for the mutual-TLS listener with the identity on disk now (re-read each time,
        /// so a renewed certificate is used at once).
        func mtlsClient(_ state: State) throws -> ServerClient? {
            guard let text = state.mtlsURL, let url = URL(string: text) else { return nil }
            func read(_ name: String) throws -> String {
                guard let data = FileManager.default.contents(atPath: self.path(name)) else {
                    throw GatehouseError(.invalidInput, "cannot read \(self.path(name))")
                }
                return String(decoding: data, as: UTF8.self)
            }
            return try ServerClient(
                server: url, mtls: .init(chainPEM: try read("agent.pem"), keyPEM: try read("agent.key"), rootPEM: try read("ca.pem")))
        }

        /// Runs `body` with a mutual-TLS client (nil when the agent has no identity), then shuts it down.
        func withMTLS<T: Sendable>(_ state: State, _ body: (ServerClient) async throws -> T) async throws -> T? {
            guard let client = try self.mtlsClient(state) else { return nil }
            do {
                let result = try await body(client)
                try? await client.shutdown()
                return result
            } catch {
                try? await client.shutdown()
                throw error
            }
        }

        /// Writes a new agent identity: key first, then the certificate, each atomically.
        func saveIdentity(key: SigningKey, chain: String, root: String) throws {
            try self.write(self.path("agent.key"), Data(key.pkcs8PEM.utf8), mode: 0o600)
            try self.write(self.path("agent.pem"), Data(chain.utf8))
            try self.write(self.path("ca.pem"), Data(root.utf8))
        }

        func saveState(_ state: State) throws {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            try self.write(self.path("agent.json"), try encoder.encode(state), mode: 0o600)
        }

        func loadState() throws -> State {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            guard let data = FileManager.default.contents(atPath: self.path("agent.json")), let state = try? decoder.decode(State.self, from: data)
            else {
                throw GatehouseError(.invalidInput, "this server has not joined (no \(self.path("agent.json"))); run gatehouse agent join")
            }
            return state
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll this server: certify its SSH host key, trust the user CA and revocation list, and write an sshd_config drop-in."
        )

        @OptionGroup var paths: Paths
        @Option(help: "The Gatehouse server URL.") var server: String
        @Option(help: "The one-time token from gatehouse admin host add (on the command line it shows in ps: prefer --token-file).") var token:
            String?
        @Option(name: .customLong("token-file"), help: "A file holding the one-time token (- for standard input).") var tokenFile: String?
        @Option(name: .customLong("sshd-config-dir"), help: "Where sshd includes drop-ins from.") var sshdConfigDir = "/etc/ssh/sshd_config.d"

        func run() async throws {
            do {
                let url = try serverURL(self.server)
                var token = self.token
                if let file = self.tokenFile {
                    let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                    // The token itself, or the first ghjt_ word of what `admin host add` printed.
                    let text = data.map { String(decoding: $0.prefix(4096), as: UTF8.self) } ?? ""
                    token =
                        text.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("ghjt_") }.map(String.init)
                        ?? String(text.prefix(256)).trimmingCharacters(in: .whitespacesAndNewlines)
                }
                guard let token, !token.isEmpty else {
                    throw GatehouseError(.invalidInput, "give the join token with --token-file FILE (or --token)")
                }
                let client = ServerClient(server: url)
                try FileManager.default.createDirectory(
                    atPath: self.paths.stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                // The agent's mutual-TLS key is made here and never leaves this host.
                let agentKey = SigningKey.generate(.p256, using: SystemRandomSource())
                let joined = try await client.joinHost(
                    token: token, hostKey: try self.paths.hostPublicKey(), agentCSR: try SigningRequest.makePEM(key: agentKey, spiffeID: nil))
                guard let agentToken = joined.agentToken else { throw GatehouseError(.internal, "the server sent no agent token") }
                // What goes into a root-owned sshd file is checked here, not trusted from the answer.
                let nameOK = Agent.isHostName(joined.host)
                let ca = joined.userCA.split(separator: " ")
                guard nameOK, ca.count == 2, ["ssh-ed25519", "ecdsa-sha2-nistp256"].contains(String(ca[0])),
                    Data(base64Encoded: String(ca[1])) != nil,
                    !joined.hostCertificate.contains("\n")
                else {
                    throw GatehouseError(.internal, "the server's answer is malformed; nothing was written")
                }
                try self.paths.write(self.paths.hostKey + "-cert.pub", Data((joined.hostCertificate + "\n").utf8))
                try self.paths.write(self.paths.path("user_ca.pub"), Data((joined.userCA + "\n").utf8))
                try self.paths.write(self.paths.path("revoked.krl"), try await client.revocationList())
                var state = Paths.State(server: url.absoluteString, host: joined.host, agentToken: agentToken, validBefore: joined.validBefore)
                if let chain = joined.agentCertificate, let root = joined.rootCertificate, let mtls = joined.mtlsURL {
                    guard let leaf = try? PEM.decodeAll(chain, label: "CERTIFICATE"), !leaf.isEmpty,
                        (try? PEM.decode(root, label: "CERTIFICATE")) != nil,
                        let mtlsURL = URL(string: mtls), mtlsURL.scheme == "https"
                    else {
                        throw GatehouseError(.internal, "the server's agent certificate answer is malformed; nothing was written")
                    }
                    try self.paths.saveIdentity(key: agentKey, chain: chain, root: root)
                    let now = Date()
                    state.mtlsURL = mtls
                    state.agentNotBefore = now
                    state.agentNotAfter = now.addingTimeInterval(24 * 3600)
                }
                try self.paths.saveState(state)
                try FileManager.default.createDirectory(atPath: self.sshdConfigDir, withIntermediateDirectories: true)
                // A certificate's principals are LOGIN@HOST: for the account sshd is asked about,
                // only the principal naming that account on this host opens it.
                let dropIn = """
                    # Written by gatehouse agent join for host \(joined.host). Users sign in with Gatehouse certificates.
                    TrustedUserCAKeys \(self.paths.path("user_ca.pub"))
                    RevokedKeys \(self.paths.path("revoked.krl"))
                    HostCertificate \(self.paths.hostKey)-cert.pub
                    AuthorizedPrincipalsCommand /bin/echo %u@\(joined.host)
                    AuthorizedPrincipalsCommandUser nobody

                    """
                try self.paths.write((self.sshdConfigDir as NSString).appendingPathComponent("50-gatehouse.conf"), Data(dropIn.utf8))
                if state.mtlsURL != nil {
                    // The identity the certificate really carries (with the server's trust domain).
                    let leaf = joined.agentCertificate.flatMap {
                        $0.components(separatedBy: "-----END CERTIFICATE-----").first.map { $0 + "-----END CERTIFICATE-----" }
                    }
                    let identity =
                        leaf.flatMap { try? Certificate(pemEncoded: $0) }.flatMap { Authority.names(of: $0).uris.first }
                        ?? "gatehouse/agent/\(joined.host)"
                    print("Mutual-TLS identity \(identity) in \(self.paths.path("agent.pem")), server \(state.mtlsURL!).")
                }
                print(
                    "Joined as \(joined.host): host certificate for \(joined.principals.joined(separator: ", ")) until \(ISO8601DateFormatter().string(from: joined.validBefore))."
                )
                print(
                    "Reload sshd to apply \((self.sshdConfigDir as NSString).appendingPathComponent("50-gatehouse.conf")); keep `gatehouse agent run` running."
                )
            } catch {
                throw fail(error)
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep the revocation list fresh (every --interval seconds) and renew the host certificate when a third of its life is left."
        )

        @OptionGroup var paths: Paths
        @Option(help: "Seconds between revocation list refreshes.") var interval = 10
        @Flag(help: "Do one round and exit (for cron and tests).") var once = false
        @Flag(name: .customLong("renew-now"), help: "Renew the agent's certificates this round, whatever their age.") var renewIdentity = false
        @OptionGroup var network: NetworkOptions

        func run() async throws {
            do {
                if let endpoint = self.network.endpoint {
                    let state = try self.paths.loadState()
                    let network = self.network
                    let paths = self.paths
                    let once = self.once
                    // The private network runs beside the SSH duties, on its own long poll. If it
                    // cannot run at all (bad options, no tools), the agent stops and says why.
                    signal(SIGPIPE, SIG_IGN)
                    guard NetworkEndpoint.isValid(endpoint) else {
                        throw GatehouseError(.invalidInput, "--wg-endpoint '\(endpoint.prefix(80))' is not HOST:PORT or [IPV6]:PORT")
                    }
                    _ = try network.applier(paths)
                    let task = Task {
                        do {
                            try await network.run(paths: paths, state: state, endpoint: endpoint, once: once)
                        } catch {
                            FileHandle.standardError.write(Data("gatehouse agent: the private network stopped: \(error)\n".utf8))
                            Glibc.exit(1)
                        }
                    }
                    if once { await task.value }
                }
                var state = try self.paths.loadState()
                guard let url = URL(string: state.server) else { throw GatehouseError(.invalidInput, "the agent state names no server") }
                let client = ServerClient(server: url)
                while true {
                    do {
                        try self.paths.write(self.paths.path("revoked.krl"), try await client.revocationList())
                        // Renewed at two thirds of its life, with a new key made here.
                        if let from = state.agentNotBefore, let to = state.agentNotAfter,
                            Date() >= from.addingTimeInterval(to.timeIntervalSince(from) * 2 / 3) || self.renewIdentity
                        {
                            let key = SigningKey.generate(.p256, using: SystemRandomSource())
                            let csr = try SigningRequest.makePEM(key: key, spiffeID: nil)
                            if let identity = try await self.paths.withMTLS(state, { try await $0.renewAgentIdentity(csr: csr) }) {
                                // The root is pinned at join: an answer with another one is not believed.
                                let pinned = FileManager.default.contents(atPath: self.paths.path("ca.pem")).map {
                                    String(decoding: $0, as: UTF8.self)
                                }
                                guard pinned == identity.root else {
                                    throw GatehouseError(
                                        .internal,
                                        "the server answered with a different root than the one pinned at join; nothing was written (join again to change roots)"
                                    )
                                }
                                try self.paths.saveIdentity(key: key, chain: identity.certificate, root: identity.root)
                                state.agentNotBefore = Date()
                                state.agentNotAfter = identity.notAfter
                                try self.paths.saveState(state)
                                print("renewed the agent's mutual-TLS certificate until \(ISO8601DateFormatter().string(from: identity.notAfter))")
                            }
                        }
                        if state.validBefore.timeIntervalSinceNow < (7 * 24 * 3600) / 3 || self.renewIdentity {
                            let hostKey = try self.paths.hostPublicKey()
                            // Over mutual TLS when the agent has an identity; the agent token otherwise.
                            var renewed = try await self.paths.withMTLS(state) { try await $0.renewHostOverMTLS(hostKey: hostKey) }
                            if renewed == nil { renewed = try await client.renewHost(agentToken: state.agentToken, hostKey: hostKey) }
                            guard let renewed else { throw GatehouseError(.internal, "no host certificate") }
                            try self.paths.write(self.paths.hostKey + "-cert.pub", Data((renewed.hostCertificate + "\n").utf8))
                            state.validBefore = renewed.validBefore
                            try self.paths.saveState(state)
                        }
                    } catch {
                        // Say so: a host on an old revocation list lets revoked certificates in.
                        FileHandle.standardError.write(
                            Data("gatehouse agent: could not refresh (the revocation list on disk is from the last success): \(error)\n".utf8))
                        if self.once { throw error }
                    }
                    if self.once { return }
                    try await Task.sleep(for: .seconds(max(1, self.interval)))
                }
            } catch {
                throw fail(error)
            }
        }
    }

    /// The agent's private network options (on when --wg-endpoint is given).
    struct NetworkOptions: ParsableArguments {
        @Option(
            name: .customLong("wg-endpoint"),
            help: "HOST:PORT where other hosts and devices reach this host's WireGuard; turns the private network on.")
        var endpoint: String?
        @Option(name: .customLong("wg-interface"), help: "The WireGuard interface the agent manages.") var interface = "gatehouse0"
        @Option(name: .customLong("wg-port"), help: "The WireGuard listen port.") var port = 51820
        @Option(
            name: .customLong("metrics-file"),
            help: "Write the ruleset's and the isolation program's counters here (Prometheus text, node_exporter textfile style).")
        var metricsFile: String?

        func applier(_ paths: Paths) throws -> HostNetworkApplier {
            try HostNetworkApplier(
                options: .init(interface: self.interface, listenPort: self.port, stateDirectory: URL(fileURLWithPath: paths.stateDir)))
        }

        /// Registers the host's key, then applies every configuration the server sends, as soon
        /// as it sends it (a long poll over mutual TLS). A configuration that fails its checks or
        /// its application is reported and the host keeps what it had.
        func run(paths: Paths, state: Paths.State, endpoint: String, once: Bool) async throws {
            let applier = try self.applier(paths)
            let key = try applier.publicKey()
            var version: String? = nil
            var registered = false
            var lastMetrics = Date.distantPast
            while true {
                do {
                    // The identity is re-read for every request: renewals take effect at once.
                    let config = try await paths.withMTLS(state) { client in
                        registered
                            ? try await client.hostNetwork(after: version, wait: 25)
                            : try await client.registerHostNetwork(publicKey: key, endpoint: endpoint)
                    }
                    guard let config else {
                        throw GatehouseError(
                            .invalidInput, "the private network needs the agent's mutual-TLS identity (join a server started with --mtls-listen)")
                    }
                    registered = true
                    // Applied on every answer, changed or not: an unchanged plan re-checks that
                    // the table, the program and the interface are still in place.
                    let started = Date()
                    let report = try await applier.applyInBackground(try HostNetworkPlan(config))
                    if config.version != version || report.fullRuleset {
                        version = config.version
                        let line =
                            "network \(config.version.prefix(12)) applied in \(Int(Date().timeIntervalSince(started) * 1000)) ms: \(report.peers) peers, \(report.elements) filter elements"
                            + (report.fullRuleset ? " (full ruleset)" : "") + "\n"
                        FileHandle.standardOutput.write(Data(line.utf8))
                    }
                } catch {
                    FileHandle.standardError.write(Data("gatehouse agent: network: \(error)\n".utf8))
                    if once { throw error }
                    try await Task.sleep(for: .seconds(1))
                }
                if let file = self.metricsFile, Date().timeIntervalSince(lastMetrics) >= 5 || once {
                    if let text = try? await HostNetworkApplier.inBackground({ applier.metrics() }) {
                        try? SecureFile.write(file, Data(text.utf8), mode: 0o644)
                    }
                    lastMetrics = Date()
                }
                if once { return }
            }
        }
    }

    struct Leave: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Take this host off the private network: tell the server, then remove the interface, ruleset, BPF program and key the agent installed."
        )
        @OptionGroup var paths: Paths
        @Option(name: .customLong("wg-interface"), help: "The WireGuard interface the agent manages.") var interface = "gatehouse0"

        func run() async throws {
            do {
                let applier = try HostNetworkApplier(
                    options: .init(interface: self.interface, stateDirectory: URL(fileURLWithPath: self.paths.stateDir)))
                if let state = try? self.paths.loadState() {
                    do {
                        _ = try await self.paths.withMTLS(state) { try await $0.leaveNetwork() }
                    } catch let error as GatehouseError where error.code == .notFound {
                        // Not registered: nothing to tell the server.
                    } catch {
                        FileHandle.standardError.write(
                            Data("gatehouse agent: the server was not told (\(error)); removing the local state anyway\n".utf8))
                    }
                }
                applier.leave()
                print("left the private network: \(self.interface), table inet \(NftablesRuleset.table) and the isolation program are gone.")
            } catch {
                throw fail(error)
            }
        }
    }

    static func isHostName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { b in (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D }
    }

    struct Cert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Keep a certificate for a local service renewed: key, certificate, chain and root in --out, a new key each time, renewed at two thirds of its life."
        )

        @OptionGroup var paths: Paths
        @Option(name: .customLong("spiffe-id"), help: "The SPIFFE ID the policy lets this host obtain (allow certificate ... in the policy).")
        var spiffeID: String
        @Option(help: "Directory for key.pem, cert.pem, chain.pem and bundle.pem.") var out: String
        @Option(name: .customLong("dns"), help: "A DNS name to include (repeatable; the policy's identity must list it).") var dnsNames: [String] = []
        @Option(help: "Lifetime in seconds (default: the authority's, 24 h; at most the policy's).") var lifetime: Int?
        @Option(name: .customLong("reload-cmd"), help: "A shell command run after each renewal (e.g. 'systemctl reload nginx').") var reloadCommand:
            String?
        @Flag(help: "Obtain one certificate and exit.") var once = false

        func run() async throws {
            do {
                let state = try self.paths.loadState()
                try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                while true {
                    var wait: TimeInterval = 30
                    do {
                        let notAfter = try await self.renew(state)
                        let now = Date()
                        wait = max(30, notAfter.timeIntervalSince(now) * 2 / 3)
                        print(
                            "certificate for \(self.spiffeID) in \(self.out) until \(ISO8601DateFormatter().string(from: notAfter)); next renewal in \(Int(wait)) s"
                        )
                    } catch {
                        FileHandle.standardError.write(Data("gatehouse agent cert: could not renew (retrying in 30 s): \(error)\n".utf8))
                        if self.once { throw error }
                    }
                    if self.once { return }
                    try await Task.sleep(for: .seconds(wait))
                }
            } catch {
                throw fail(error)
            }
        }

        func renew(_ state: Paths.State) async throws -> Date {
            let key = SigningKey.generate(.p256, using: SystemRandomSource())
            let csr = try SigningRequest.makePEM(key: key, spiffeID: self.spiffeID, dnsNames: self.dnsNames)
            guard let issued = try await self.paths.withMTLS(state, { try await $0.signCertificate(csr: csr, lifetime: self.lifetime) }) else {
                throw GatehouseError(.invalidInput, "this agent has no mutual-TLS identity; the server needs --mtls-listen, then join again")
            }
            func file(_ name: String) -> String { (self.out as NSString).appendingPathComponent(name) }
            let pinned = FileManager.default.contents(atPath: self.paths.path("ca.pem")).map { String(decoding: $0, as: UTF8.self) }
            guard pinned == issued.root else {
                throw GatehouseError(.internal, "the server answered with a different root than the one pinned at join; nothing was written")
            }
            try self.paths.write(file("key.pem"), Data(key.pkcs8PEM.utf8), mode: 0o600)
            try self.paths.write(file("cert.pem"), Data(issued.certificate.utf8))
            try self.paths.write(file("chain.pem"), Data(issued.chain.utf8))
            try self.paths.write(file("bundle.pem"), Data(issued.root.utf8))
            if let command = self.reloadCommand {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", command]
                try process.run()
                process.waitUntilExit()
                if process.terminationStatus != 0 {
                    FileHandle.standardError.write(Data("gatehouse agent cert: --reload-cmd exited with \(process.terminationStatus)\n".utf8))
                }
            }
            return issued.notAfter
        }
    }
}
