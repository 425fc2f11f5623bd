import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
#if canImport(Glibc)
import Glibc
#endif

/// `gatehouse agent`: runs on each server. `join` enrolls it once with a one-time token; `run`
/// keeps the revocation list fresh and renews the host certificate before it expires.
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll this server with Gatehouse and keep its SSH trust current.",
        subcommands: [Join.self, Run.self]
    )

    struct Paths: ParsableArguments {
        @Option(name: .customLong("state-dir"), help: "Where the agent keeps its token, CA key and revocation list.") var stateDir = "/var/lib/gatehouse-agent"
        @Option(name: .customLong("host-key"), help: "The sshd host private key path; its .pub is certified, the certificate written beside it.")
        var hostKey = "/etc/ssh/ssh_host_ed25519_key"

        func path(_ name: String) -> String { (self.stateDir as NSString).appendingPathComponent(name) }

        func write(_ path: String, _ data: Data, mode: Int = 0o644) throws {
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: mode]), rename(temporary, path) == 0 else {
                throw GatehouseError(.invalidInput, "cannot write \(path)")
            }
        }

        func hostPublicKey() throws -> String {
            guard let data = FileManager.default.contents(atPath: self.hostKey + ".pub") else { throw GatehouseError(.invalidInput, "cannot read \(self.hostKey).pub") }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        struct State: Codable {
            var server: String
            var host: String
            var agentToken: String
            var validBefore: Date
        }

        func saveState(_ state: State) throws {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            try self.write(self.path("agent.json"), try encoder.encode(state), mode: 0o600)
        }

        func loadState() throws -> State {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            guard let data = FileManager.default.contents(atPath: self.path("agent.json")), let state = try? decoder.decode(State.self, from: data) else {
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
        @Option(help: "The one-time token from gatehouse admin host add (on the command line it shows in ps: prefer --token-file).") var token: String?
        @Option(name: .customLong("token-file"), help: "A file holding the one-time token (- for standard input).") var tokenFile: String?
        @Option(name: .customLong("sshd-config-dir"), help: "Where sshd includes drop-ins from.") var sshdConfigDir = "/etc/ssh/sshd_config.d"

        func run() async throws {
            do {
                let url = try serverURL(self.server)
                var token = self.token
                if let file = self.tokenFile {
                    let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                    token = data.map { String(decoding: $0.prefix(256), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
                }
                guard let token, !token.isEmpty else { throw GatehouseError(.invalidInput, "give the join token with --token-file FILE (or --token)") }
                let client = ServerClient(server: url)
                try FileManager.default.createDirectory(atPath: self.paths.stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let joined = try await client.joinHost(token: token, hostKey: try self.paths.hostPublicKey())
                guard let agentToken = joined.agentToken else { throw GatehouseError(.internal, "the server sent no agent token") }
                // What goes into a root-owned sshd file is checked here, not trusted from the answer.
                let nameOK = (1...64).contains(joined.host.utf8.count) && joined.host.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
                let ca = joined.userCA.split(separator: " ")
                guard nameOK, ca.count == 2, ["ssh-ed25519", "ecdsa-sha2-nistp256"].contains(String(ca[0])), Data(base64Encoded: String(ca[1])) != nil,
                      !joined.hostCertificate.contains("\n") else {
                    throw GatehouseError(.internal, "the server's answer is malformed; nothing was written")
                }
                try self.paths.write(self.paths.hostKey + "-cert.pub", Data((joined.hostCertificate + "\n").utf8))
                try self.paths.write(self.paths.path("user_ca.pub"), Data((joined.userCA + "\n").utf8))
                try self.paths.write(self.paths.path("revoked.krl"), try await client.revocationList())
                try self.paths.saveState(.init(server: url.absoluteString, host: joined.host, agentToken: agentToken, validBefore: joined.validBefore))
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
                print("Joined as \(joined.host): host certificate for \(joined.principals.joined(separator: ", ")) until \(ISO8601DateFormatter().string(from: joined.validBefore)).")
                print("Reload sshd to apply \((self.sshdConfigDir as NSString).appendingPathComponent("50-gatehouse.conf")); keep `gatehouse agent run` running.")
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

        func run() async throws {
            do {
                var state = try self.paths.loadState()
                guard let url = URL(string: state.server) else { throw GatehouseError(.invalidInput, "the agent state names no server") }
                let client = ServerClient(server: url)
                while true {
                    do {
                        try self.paths.write(self.paths.path("revoked.krl"), try await client.revocationList())
                        if state.validBefore.timeIntervalSinceNow < (7 * 24 * 3600) / 3 {
                            let renewed = try await client.renewHost(agentToken: state.agentToken, hostKey: try self.paths.hostPublicKey())
                            try self.paths.write(self.paths.hostKey + "-cert.pub", Data((renewed.hostCertificate + "\n").utf8))
                            state.validBefore = renewed.validBefore
                            try self.paths.saveState(state)
                        }
                    } catch {
                        // Say so: a host on an old revocation list lets revoked certificates in.
                        FileHandle.standardError.write(Data("gatehouse agent: could not refresh (the revocation list on disk is from the last success): \(error)\n".utf8))
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
}
