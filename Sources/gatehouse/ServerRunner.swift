import Foundation
import GatehouseBastion
import GatehouseCore
import GatehouseHTTP
import GatehousePKI
import GatehouseServices
import GatehouseStorage
import GatehouseWebAuthn
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import X509

/// Builds and runs the server: the composition root of `gatehouse serve`.
///
/// Order matters for the refusals docs/architecture.md promises (its startup order): settings were checked before this runs;
/// then the data dir and its lock, the store, the root key and the key material,
/// each failing with one clear line before anything is listening.
struct ServerRunner {
    let settings: ServerSettings
    let version: String
    let logger = Logger(label: "gatehouse")

    func run() async throws {
        let time = SystemTimeSource()
        let random = SystemRandomSource()
        umask(0o077)

        let dataDir = try DataDirectory.prepare(self.settings.dataDir)
        if dataDir.isGroupOrWorldAccessible {
            self.logger.warning("data dir is readable by group or others; chmod 700 it", metadata: ["path": "\(dataDir.path)"])
        }
        // Held until this function returns: the process owns the data dir while it serves.
        let lock = try DataDirectoryLock.acquire(dataDir)
        defer { withExtendedLifetime(lock) {} }
        try AdminSocket.prepare(dataDir.adminSocketPath)
        let tlsConfiguration = try self.settings.tls.map(Self.loadTLS)

        let store: SQLStore
        var databaseLock: DataDirectoryLock? = nil
        defer { withExtendedLifetime(databaseLock) {} }
        switch self.settings.database {
        case .sqlite(let path):
            databaseLock = try DataDirectoryLock.acquire(sqliteDatabase: path)
            store = try await SQLStore.openSQLite(path: path, logger: Logger(label: "gatehouse.store"), time: time)
        case .postgres(let url):
            store = try await SQLStore.openPostgres(url: url, logger: Logger(label: "gatehouse.store"), time: time)
        }
        do {
            try await self.serve(store: store, dataDir: dataDir, tls: tlsConfiguration, time: time, random: random)
            try? await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    private func serve(store: SQLStore, dataDir: DataDirectory, tls: TLSConfiguration?, time: SystemTimeSource, random: SystemRandomSource)
        async throws
    {
        let environment = ServiceEnvironment(store: store, time: time, random: random)
        let rootKeyPath = dataDir.rootKeyPath(environment: ProcessInfo.processInfo.environment)
        let rootKey: RootKey
        if let existing = try DataDirectory.readRootKey(at: rootKeyPath) {
            rootKey = existing
        } else if try await KeyBootstrap.storeHasKeyMaterial(store) {
            throw GatehouseError(
                .rootKeyMissing,
                "root key file \(rootKeyPath) is missing but the store holds sealed keys; restore it (or set GATEHOUSE_ROOT_KEY_FILE). Refusing to create a new one"
            )
        } else {
            rootKey = try DataDirectory.createRootKey(at: rootKeyPath, random: random)
            self.logger.notice("created root key file", metadata: ["path": "\(rootKeyPath)"])
        }
        let keys = try await KeyBootstrap(environment: environment, rootKey: rootKey).loadOrCreate()
        self.logger.info("key material unsealed", metadata: ["ssh_user_ca": "\(keys[.sshUserCA].fingerprint.prefix(16))"])

        let bootstrap = try await InvitationService(environment: environment, publicURL: self.settings.publicURL).ensureBootstrapInvitation(
            username: self.settings.adminName)

        let headPath = dataDir.auditHeadPath
        let auditLog = try await AuditLog(
            environment: environment, keys: keys,
            trustedHead: { FileManager.default.contents(atPath: headPath).map { String(decoding: $0, as: UTF8.self) } },
            onPublish: { checkpoint in try CheckpointPublisher.writeAtomically(checkpoint.note, to: headPath) }
        )
        let policy = PolicyService(environment: environment, addressing: self.settings.addressing)
        let active = try await policy.refresh()
        if let error = active.loadError {
            self.logger.error(
                "the stored policy does not compile; everything is denied until a valid one is applied", metadata: ["error": "\(error)"])
        } else {
            self.logger.info(
                "policy loaded", metadata: ["version": "\(active.info?.version.description ?? "none")", "rules": "\(active.policy.rules.count)"])
        }
        let failures = FailureAudit()
        var deps = HTTPDependencies(
            environment: environment, publicURL: self.settings.publicURL, version: self.version, startedAt: time.now(), auditLog: auditLog,
            policy: policy,
            passkeys: PasskeyService(
                environment: environment,
                relyingParty: RelyingParty(
                    id: self.settings.publicURL.relyingPartyID, name: "Gatehouse", origins: [self.settings.publicURL.origin],
                    attestation: try Self.attestationPolicy(self.settings.passkeys)
                ),
                ceremonies: CeremonyStore(time: time, random: random), decoySecret: rootKey.derive(label: "gatehouse/webauthn-decoy/v1"),
                failures: failures
            )
        )
        let oidc = OIDCService(environment: environment, policy: policy, rootKey: rootKey, issuer: self.settings.publicURL.origin)
        try await oidc.prepareKeys(initial: keys[.tokenSigning])
        deps.oidc = oidc
        deps.proxyTicketKey = rootKey.derive(label: "gatehouse/proxy-ticket/v1")
        let ssh = SSHCertificateService(environment: environment, policy: policy, userCA: keys[.sshUserCA], hostCA: keys[.sshHostCA])
        deps.ssh = ssh
        let pki = try PKIService(
            environment: environment, policy: policy, rootKey: keys[.x509Root], sealer: KeySealer(rootKey: rootKey),
            settings: .init(
                trustDomain: self.settings.trustDomain, crlURL: self.settings.publicURL.origin + "/api/pki/crl",
                serverDNSNames: [self.settings.publicURL.host],
                serverIPAddresses: self.settings.mtlsListen.flatMap { try? IPPrefix(parsing: $0.bindHost) }.map { [$0] } ?? [],
                algorithm: PKIKeyAlgorithm(rawValue: self.settings.pkiAlgorithm) ?? .p256)
        )
        try await pki.start()
        let authorityReady = (try? pki.current()) != nil
        if !authorityReady {
            self.logger.warning(
                "the X.509 authority waits for an intermediate from the offline root (gatehouse admin pki import-intermediate); no certificates are issued until then"
            )
        }
        deps.pki = pki
        let hosts = HostEnrollmentService(environment: environment, policy: policy, ssh: ssh, pki: pki, failures: failures)
        deps.hosts = hosts
        let network = NetworkService(environment: environment, policy: policy)
        deps.network = network
        let registry = BastionSessionRegistry(replica: Identifier.make(using: environment.random))
        let bastionService = BastionService(
            environment: environment, policy: policy, ssh: ssh, sealer: KeySealer(rootKey: rootKey), registry: registry)
        deps.bastion = bastionService
        deps.recordingsDirectory = dataDir.recordingsPath
        deps.extraOffboardingHooks = [BastionOffboardingHook(registry: registry)]
        var bastionServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let listen = self.settings.sshListen {
            let server = try BastionServer(
                configuration: .init(host: listen.bindHost, port: listen.port, recordingsDirectory: dataDir.recordingsPath),
                service: bastionService, hostKey: keys[.sshBastionHost].rawPrivate, logger: Logger(label: "gatehouse.bastion"))
            bastionServices = [.init(service: BastionListener(server: server, listen: listen, logger: self.logger))]
            deps.bastionSSH = (self.settings.publicURL.host, listen.port, server.hostKeyLine)
        }
        var mtlsServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let mtls = self.settings.mtlsListen {
            // The certificate names every way agents are told to reach it: the public host, the
            // bound address, and the host of mtls_public_url.
            let advertised = (self.settings.mtlsPublicURL.flatMap { URLComponents(string: $0)?.host } ?? "").trimmingCharacters(
                in: CharacterSet(charactersIn: "[]"))
            let addresses = [mtls.bindHost, advertised].compactMap { try? IPPrefix(parsing: $0) }.filter(\.isSingleAddress)
            let names =
                [self.settings.publicURL.host]
                + (advertised.isEmpty || (try? IPPrefix(parsing: advertised)) != nil || advertised == self.settings.publicURL.host
                    ? [] : [advertised])
            let identity = MTLSServerIdentity(pki: pki, dnsNames: names, ipAddresses: Array(Set(addresses)))
            try await identity.prepare()
            deps.mtlsURL = self.settings.mtlsPublicURL
            let mtlsLogger = self.logger
            let app = Application(
                router: MTLSListener.makeRouter(pki: pki, hosts: hosts, network: network, random: random, time: environment.time),
                server: try .tls(
                    .http1(configuration: Self.http1Configuration), configuration: try MTLSListener.tlsConfiguration(identity: identity, pki: pki)),
                configuration: .init(address: .hostname(mtls.bindHost, port: mtls.port), serverName: nil),
                onServerRunning: { _ in
                    mtlsLogger.notice("mutual-TLS listener ready", metadata: ["address": "\(mtls)", "trust_domain": "\(pki.trustDomain)"])
                },
                logger: Logger(label: "gatehouse.mtls")
            )
            mtlsServices = [.init(service: identity), .init(service: app)]
        }
        deps.signInRatePerMinute = self.settings.signInRatePerMinute
        deps.trustedProxies = self.settings.trustedProxies
        let publisher = CheckpointPublisher(
            log: auditLog, store: store, logger: Logger(label: "gatehouse.audit")
        )
        let listen = self.settings.listen
        let publicURL = self.settings.publicURL
        let logger = self.logger
        let proxy = PublicRoutes.proxy(deps)  // one proxy: its routes, its WebSocket upgrades
        let publicApp = Application(
            router: try PublicRoutes.makeResponder(deps, proxy: proxy),
            // Idle connections are closed after 60 s, so slow or silent clients cannot pin sockets.
            server: try tls.map { try .tls(PublicRoutes.httpServer(deps, proxy: proxy, http1: Self.http1Configuration), tlsConfiguration: $0) }
                ?? PublicRoutes.httpServer(deps, proxy: proxy, http1: Self.http1Configuration),
            configuration: .init(address: .hostname(listen.bindHost, port: listen.port), serverName: nil),
            onServerRunning: { _ in
                logger.notice("listening", metadata: ["address": "\(listen)", "public_url": "\(publicURL)", "store": "\(store.kind)"])
                if let bootstrap {
                    // Printed, never logged: the link carries a secret.
                    let text = """

                        No administrator is enrolled yet. Open this one-time link within 24 hours to enroll the first one, \(bootstrap.invitation.username) (--admin-name to choose another name):

                            \(bootstrap.enrollmentURL)


                        """
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            },
            logger: Logger(label: "gatehouse.http")
        )
        let socketPath = dataDir.adminSocketPath
        let adminApp = Application(
            router: AdminRoutes.makeRouter(deps),
            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: nil),
            onServerRunning: { _ in
                chmod(socketPath, 0o600)
                logger.info("admin socket ready", metadata: ["path": "\(socketPath)"])
            },
            logger: Logger(label: "gatehouse.admin")
        )
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the listeners stop first, the publisher signs last.
                services: [
                    .init(service: publisher), .init(service: PolicyRefresher(policy: policy, logger: Logger(label: "gatehouse.policy"))),
                    .init(
                        service: FailureAuditFlusher(
                            failures: failures, store: environment.store, time: time, logger: Logger(label: "gatehouse.audit"))),
                    .init(service: publicApp), .init(service: adminApp),
                ] + mtlsServices + bastionServices,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "gatehouse.lifecycle")
            )
        )
        do {
            try await group.run()
        } catch {
            unlink(socketPath)
            throw GatehouseError(.internal, "server stopped: \(Self.describe(error, listen: listen))")
        }
        unlink(socketPath)
        logger.notice("stopped")
    }

    /// Hardware-only mode: the vendors' roots from a PEM file, and the allowed models.
    static func attestationPolicy(_ passkeys: ServerSettings.Passkeys) throws -> AttestationPolicy {
        guard passkeys.requireAttestation, let path = passkeys.trustAnchorsPath else { return .anyAuthenticator }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw GatehouseError(.configInvalid, "webauthn.trust_anchors: cannot read \(path)")
        }
        let anchors: [Certificate]
        do {
            anchors = try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
        } catch {
            throw GatehouseError(.configInvalid, "webauthn.trust_anchors: \(path) holds something that is not a PEM certificate")
        }
        guard !anchors.isEmpty else { throw GatehouseError(.configInvalid, "webauthn.trust_anchors: \(path) holds no certificate") }
        return AttestationPolicy(mode: .attested, trustAnchors: anchors, allowedAAGUIDs: passkeys.allowedAAGUIDs.map(Set.init))
    }

    static var http1Configuration: HTTP1Channel.Configuration { .init(idleTimeout: .seconds(60)) }

    static func describe(_ error: any Error, listen: ListenAddress) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("EADDRINUSE") {
            return "cannot listen on \(listen): address already in use"
        }
        return text
    }

    static func loadTLS(_ files: ServerSettings.TLSFiles) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
        } catch {
            throw GatehouseError(.configInvalid, "tls.cert: cannot read a PEM certificate chain from \(files.certificatePath)")
        }
        guard !chain.isEmpty else { throw GatehouseError(.configInvalid, "tls.cert: \(files.certificatePath) holds no certificate") }
        do {
            key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
        } catch {
            throw GatehouseError(.configInvalid, "tls.key: cannot read a PEM private key from \(files.privateKeyPath)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}
