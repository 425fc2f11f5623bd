import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServices
import GatehouseTesting
import GatehouseWebAuthn
import Hummingbird
import HummingbirdTesting
import NIOCore

enum HTTPTestSupport {
    /// Dependencies over `store`, with keys bootstrapped into it (which appends the
    /// `system.initialized` and five `key.generated` events).
    static func dependencies(_ store: any Store = InMemoryStore()) async throws -> HTTPDependencies {
        let environment = ServiceEnvironment(store: store, time: SystemTimeSource(), random: SystemRandomSource())
        let keys = try await KeyBootstrap(environment: environment, rootKey: try RootKey(bytes: Array(repeating: 1, count: 32))).loadOrCreate()
        return HTTPDependencies(
            environment: environment, publicURL: try PublicURL(parsing: "http://localhost:8080"), version: "test",
            startedAt: Date(timeIntervalSince1970: 1_800_000_000), auditLog: try await AuditLog(environment: environment, keys: keys),
            policy: PolicyService(environment: environment),
            passkeys: PasskeyService(
                environment: environment, relyingParty: RelyingParty(id: "localhost", name: "Gatehouse", origins: ["http://localhost:8080"]),
                ceremonies: CeremonyStore(time: environment.time, random: environment.random), decoySecret: Array(repeating: 9, count: 32)
            )
        )
    }

    /// ``dependencies(_:)`` with the OIDC provider, the SSH authority and host enrollment on
    /// (deterministic keys), and, when asked, the private network.
    static func withControls(_ store: any Store = InMemoryStore(), network: Bool = false) async throws -> HTTPDependencies {
        var deps = try await Self.dependencies(store)
        let oidc = OIDCService(
            environment: deps.environment, policy: deps.policy, rootKey: try RootKey(bytes: Array(repeating: 1, count: 32)),
            issuer: "http://localhost:8080")
        try await oidc.prepareKeys(initial: SigningKey.generate(.p256, using: SeededRandomSource(seed: 1)))
        let ssh = SSHCertificateService(
            environment: deps.environment, policy: deps.policy, userCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 2)),
            hostCA: SigningKey.generate(.ed25519, using: SeededRandomSource(seed: 3)))
        deps.oidc = oidc
        deps.ssh = ssh
        deps.hosts = HostEnrollmentService(environment: deps.environment, policy: deps.policy, ssh: ssh)
        if network { deps.network = NetworkService(environment: deps.environment, policy: deps.policy) }
        return deps
    }

    static let bootstrapEvents: Int64 = 7

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func errorCode(_ buffer: ByteBuffer) -> String? {
        if let errors = object(buffer)["errors"] as? [[String: Any]] {
            return (errors.first?["extensions"] as? [String: Any])?["code"] as? String
        }
        return (object(buffer)["error"] as? [String: Any])?["code"] as? String
    }
}
