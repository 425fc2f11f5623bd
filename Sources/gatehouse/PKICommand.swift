import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehousePKI
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// `gatehouse admin pki ...`: the X.509 inventory, revocation, and an offline root's intermediate.
struct PKIAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "The X.509 authority: list and revoke certificates, bring in an intermediate from an offline root.",
        subcommands: [List.self, Revoke.self, RequestIntermediate.self, ImportIntermediate.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issued certificates (unexpired; --all for every one): serial, SPIFFE ID, names, requester, expiry.")
        @OptionGroup var options: DataDirOption
        @Flag(help: "Include expired certificates.") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            do {
                let list = try await AdminClient(dataDir: self.options.dataDir).pkiCertificates(all: self.all)
                let iso = ISO8601DateFormatter()
                if self.json {
                    let rows = list.map { c -> [String: Any] in
                        [
                            "serial": c.serial, "spiffe_id": c.spiffeID, "dns_names": c.dnsNames, "ip_addresses": c.ipAddresses,
                            "requester": c.requester,
                            "not_after": iso.string(from: c.notAfter), "revoked": c.revokedAt != nil,
                        ]
                    }
                    print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self))
                    return
                }
                for c in list {
                    let names = (c.dnsNames + c.ipAddresses).joined(separator: ",")
                    print(
                        "\(c.serial)  \(c.spiffeID)  \(names.isEmpty ? "-" : names)  \(c.requester)  until \(iso.string(from: c.notAfter))\(c.revokedAt != nil ? "  REVOKED" : "")"
                    )
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate: it goes on the CRL and every mutual-TLS listener refuses it at once.")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The serial, as pki list shows it.") var serial: String
        @Option(help: "Why (recorded in the audit log).") var reason: String?

        func run() async throws {
            do {
                _ = try await AdminClient(dataDir: self.options.dataDir).revokePKICertificate(serial: self.serial, reason: self.reason)
                print("Revoked \(self.serial.lowercased()).")
            } catch {
                throw fail(error)
            }
        }
    }

    struct RequestIntermediate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "request-intermediate",
            abstract:
                "Make the intermediate's key on the server (sealed; it never leaves) and print its CSR for the offline root to sign (gatehouse pki sign-intermediate)."
        )
        @OptionGroup var options: DataDirOption
        @Option(help: "Write the CSR here instead of standard output.") var out: String?

        func run() async throws {
            do {
                let answer = try await AdminClient(dataDir: self.options.dataDir).requestIntermediate()
                let csr = answer["csr"] ?? ""
                if let out = self.out {
                    guard FileManager.default.createFile(atPath: out, contents: Data(csr.utf8)) else {
                        throw GatehouseError(.invalidInput, "cannot write \(out)")
                    }
                    print("Intermediate CSR for \(answer["trust_domain"] ?? "?") written to \(out).")
                } else {
                    print(csr, terminator: "")
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct ImportIntermediate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-intermediate",
            abstract: "Bring in the intermediate signed by the offline root (PEM: the intermediate, then the root)."
        )
        @OptionGroup var options: DataDirOption
        @Argument(help: "The PEM file gatehouse pki sign-intermediate wrote.") var file: String

        func run() async throws {
            do {
                guard let data = FileManager.default.contents(atPath: self.file), data.count <= 64 * 1024 else {
                    throw GatehouseError(.invalidInput, "cannot read \(self.file) (or it is over 64 KiB)")
                }
                let answer = try await AdminClient(dataDir: self.options.dataDir).importIntermediate(pem: String(decoding: data, as: UTF8.self))
                print(
                    "The authority for \(answer["trust_domain"] ?? "?") issues with the imported intermediate until \(answer["not_after"] ?? "?"). The mutual-TLS listener moves to it within seconds."
                )
            } catch {
                throw fail(error)
            }
        }
    }
}

/// `gatehouse pki ...`: runs where the offline root lives, not on the server.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "An offline X.509 root: create it, and sign the server's intermediate with it.",
        subcommands: [InitRoot.self, SignIntermediate.self]
    )

    struct InitRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init-root", abstract: "Create a root key and self-signed root certificate in --out (keep the key offline).")
        @Option(help: "Directory for root.key.pem (mode 0600) and root.pem; must not hold a root already.") var out: String
        @Option(name: .customLong("trust-domain"), help: "The SPIFFE trust domain (as the server's --trust-domain).") var trustDomain: String
        @Option(help: "p256 (default) or ed25519.") var algorithm = "p256"

        func run() async throws {
            do {
                guard SPIFFEID.isValidTrustDomain(self.trustDomain) else {
                    throw GatehouseError(.invalidInput, "'\(self.trustDomain)' is not a SPIFFE trust domain")
                }
                guard let algorithm = PKIKeyAlgorithm(rawValue: self.algorithm) else {
                    throw GatehouseError(.invalidInput, "--algorithm is p256 or ed25519")
                }
                let keyPath = (self.out as NSString).appendingPathComponent("root.key.pem")
                let certPath = (self.out as NSString).appendingPathComponent("root.pem")
                guard !FileManager.default.fileExists(atPath: keyPath) else {
                    throw GatehouseError(.conflict, "\(keyPath) exists; refusing to overwrite a root")
                }
                try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let random = SystemRandomSource()
                let key = SigningKey.generate(algorithm.keyAlgorithm, using: random)
                let root = try Authority.root(key: key, trustDomain: self.trustDomain, serial: Authority.randomSerial(using: random), now: Date())
                try SecureFile.write(keyPath, Data(key.pkcs8PEM.utf8), mode: 0o600)
                try SecureFile.write(certPath, Data(try Authority.pem(root).utf8), mode: 0o644)
                print(
                    "Root for \(self.trustDomain): \(certPath) (key \(keyPath), keep it offline). Valid until \(ISO8601DateFormatter().string(from: root.notValidAfter))."
                )
            } catch {
                throw fail(error)
            }
        }
    }

    struct SignIntermediate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-intermediate",
            abstract: "Sign the server's intermediate CSR with the offline root: a CA limited by name constraints to the trust domain."
        )
        @Option(help: "The directory init-root wrote.") var root: String
        @Option(help: "The CSR from gatehouse admin pki request-intermediate.") var csr: String
        @Option(name: .customLong("trust-domain"), help: "The trust domain the intermediate may issue for.") var trustDomain: String
        @Option(help: "Where to write the intermediate and root (PEM) for import-intermediate.") var out: String

        func run() async throws {
            do {
                guard SPIFFEID.isValidTrustDomain(self.trustDomain) else {
                    throw GatehouseError(.invalidInput, "'\(self.trustDomain)' is not a SPIFFE trust domain")
                }
                func read(_ path: String) throws -> String {
                    guard let data = FileManager.default.contents(atPath: path), data.count <= 64 * 1024 else {
                        throw GatehouseError(.invalidInput, "cannot read \(path)")
                    }
                    return String(decoding: data, as: UTF8.self)
                }
                let key = try SigningKey(pkcs8PEM: try read((self.root as NSString).appendingPathComponent("root.key.pem")))
                let rootCertificate = try Certificate(
                    derEncoded: try PEM.decode(try read((self.root as NSString).appendingPathComponent("root.pem")), label: "CERTIFICATE"))
                guard rootCertificate.publicKey == key.certificatePrivateKey.publicKey else {
                    throw GatehouseError(.invalidInput, "root.key.pem does not belong to root.pem")
                }
                let request = try SigningRequest(pemOrDER: Array(try read(self.csr).utf8))
                let random = SystemRandomSource()
                let intermediate = try Authority.intermediate(
                    publicKey: request.publicKey, trustDomain: self.trustDomain, root: rootCertificate, rootKey: key,
                    serial: Authority.randomSerial(using: random), now: Date())
                guard
                    FileManager.default.createFile(
                        atPath: self.out, contents: Data((try Authority.pem(intermediate) + Authority.pem(rootCertificate)).utf8))
                else {
                    throw GatehouseError(.invalidInput, "cannot write \(self.out)")
                }
                print(
                    "Intermediate for \(self.trustDomain) until \(ISO8601DateFormatter().string(from: intermediate.notValidAfter)) written to \(self.out); on the server: gatehouse admin pki import-intermediate \(self.out)"
                )
            } catch {
                throw fail(error)
            }
        }
    }
}
