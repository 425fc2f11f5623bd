import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehouseSSH

#if canImport(Glibc)
    import Glibc
#endif

/// `gatehouse ssh cert` and `gatehouse ssh [LOGIN@]HOST [COMMAND]`.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "SSH with a short-lived certificate: get one, or connect (renewing it when needed).",
        subcommands: [Cert.self, Connect.self],
        defaultSubcommand: Connect.self
    )

    /// Makes sure a certificate valid for at least `margin` seconds exists; returns its path.
    /// `wanted`: the login (`login@host`) this certificate is for, when known; if the policy
    /// would add it only after a fresh passkey check, the browser asks for one and it is retried.
    static func ensureCertificate(
        ttl: Int?, hosts: [String]?, margin: TimeInterval, force: Bool, file: String = "id_ed25519-cert.pub",
        wanted: String? = nil
    ) async throws -> (key: String, certificate: String, ServerClient.SSHCertificate?) {
        let config = CLIConfig()
        let key = config.path("id_ed25519")
        let certificate = config.path(file)
        // A certificate that still has time, and carries the login asked for, is used as is.
        if !force, let (remaining, principals) = Self.validity(certificate), remaining > margin, wanted.map(principals.contains) ?? true {
            return (key, certificate, nil)
        }
        let (token, credentials) = try await config.accessToken()
        if !FileManager.default.fileExists(atPath: key) {
            // The private key is made here and never leaves this machine.
            try config.prepare()
            let generate = Process()
            generate.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
            generate.arguments = ["-q", "-t", "ed25519", "-N", "", "-C", "gatehouse", "-f", key]
            try generate.run()
            generate.waitUntilExit()
            guard generate.terminationStatus == 0 else { throw GatehouseError(.internal, "ssh-keygen could not create \(key)") }
        }
        guard let publicKey = FileManager.default.contents(atPath: key + ".pub"), let server = URL(string: credentials.server) else {
            throw GatehouseError(.internal, "cannot read \(key).pub")
        }
        let line = String(decoding: publicKey, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        func request(_ token: String) async throws -> ServerClient.SSHCertificate {
            try await ServerClient(server: server).sshCertificate(
                publicKey: line, proof: try Self.prove(key: key, accessToken: token), hosts: hosts, lifetime: ttl, accessToken: token)
        }
        // When the rule's step_up window has passed since the sign-in, ask for the passkey again
        // (the browser asks even if it is signed in), then retry: once, whatever happens.
        var stepUpReason: String? = nil
        var issued: ServerClient.SSHCertificate? = nil
        do {
            let first = try await request(token)
            if let wanted, first.stepUpWouldAdd?.contains(wanted) == true {
                stepUpReason = "\(wanted) needs a recent passkey check (the policy's step_up)."
            } else {
                issued = first
            }
        } catch let error as GatehouseError where error.code == .stepUpRequired {
            stepUpReason = error.message
        }
        if let stepUpReason { issued = try await request(try await Login.stepUp(reason: stepUpReason)) }
        guard let issued else { throw GatehouseError(.internal, "no certificate was issued") }
        try config.write(file, Data((issued.certificate + "\n").utf8))
        return (key, certificate, issued)
    }

    /// Proof that this machine holds the key: OpenSSH signs the request's message (bound to the
    /// access token) with it, in the `gatehouse-ssh-certificate` namespace.
    static func prove(key: String, accessToken: String) throws -> String {
        let sign = Process()
        sign.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        sign.arguments = ["-q", "-Y", "sign", "-f", key, "-n", SSHKeyPossession.namespace]
        let input = Pipe()
        let output = Pipe()
        sign.standardInput = input
        sign.standardOutput = output
        sign.standardError = FileHandle.nullDevice
        try sign.run()
        input.fileHandleForWriting.write(Data(SSHKeyPossession.message(accessToken: accessToken)))
        try input.fileHandleForWriting.close()
        let signature = output.fileHandleForReading.readDataToEndOfFile()
        sign.waitUntilExit()
        guard sign.terminationStatus == 0, !signature.isEmpty else { throw GatehouseError(.internal, "ssh-keygen could not sign with \(key)") }
        return String(decoding: signature, as: UTF8.self)
    }

    /// Seconds left on the certificate at `path` and the principals it carries, read with
    /// `ssh-keygen -L`; nil when there is no readable certificate.
    static func validity(_ path: String) -> (remaining: TimeInterval, principals: [String])? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let show = Process()
        show.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        show.arguments = ["-L", "-f", path]
        let pipe = Pipe()
        show.standardOutput = pipe
        show.standardError = FileHandle.nullDevice
        guard (try? show.run()) != nil else { return nil }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        show.waitUntilExit()
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let line = lines.first(where: { $0.contains("Valid: from") }), let to = line.components(separatedBy: " to ").last else { return nil }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        formatter.timeZone = .current
        guard let end = formatter.date(from: to.trimmingCharacters(in: .whitespaces)) else { return nil }
        // "Principals:" is followed by one more deeply indented line per principal.
        var principals: [String] = []
        if let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "Principals:" }) {
            let indent = lines[start].prefix { $0 == " " }.count
            for next in lines[(start + 1)...] {
                guard next.prefix(while: { $0 == " " }).count > indent else { break }
                principals.append(next.trimmingCharacters(in: .whitespaces))
            }
        }
        return (end.timeIntervalSinceNow, principals)
    }

    static func parseDuration(_ text: String) throws -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let n = Int(text) {
            guard n > 0, n <= 366 * 86400 else { throw GatehouseError(.invalidInput, "that duration is out of range") }
            return n
        }
        guard text.utf8.count <= 16, let unit = text.last.flatMap({ units[$0] }), let n = Int(text.dropLast()), n > 0 else {
            throw GatehouseError(.invalidInput, "durations look like 90s, 30m or 8h")
        }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds <= 366 * 86400 else { throw GatehouseError(.invalidInput, "that duration is too long") }
        return seconds
    }

    struct Cert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Get a fresh SSH certificate for your logins (a new key is made locally the first time).")

        @Option(help: "Lifetime, e.g. 1h (at most what the policy allows; default 8h).") var ttl: String?
        @Option(name: .customLong("host"), help: "Only for these hosts (repeatable; default: every host you may reach).") var hosts: [String] = []

        func run() async throws {
            do {
                let ttl = try self.ttl.map(SSHCommand.parseDuration)
                let (_, path, issued) = try await SSHCommand.ensureCertificate(
                    ttl: ttl, hosts: self.hosts.isEmpty ? nil : self.hosts, margin: 0, force: true)
                guard let issued else { return }
                print(
                    "Certificate \(path) (serial \(issued.serial)) for \(issued.principals.joined(separator: ", ")), valid until \(ISO8601DateFormatter().string(from: issued.validBefore))."
                )
            } catch {
                throw fail(error)
            }
        }
    }

    struct Connect: AsyncParsableCommand {
        /// ssh's options that take a value (ssh(1)): the destination is the first word that is
        /// neither an option nor such a value. Returns the host part of `[LOGIN@]HOST`.
        static func destination(_ args: [String]) -> String? { Self.destinationWord(args).map(Self.host) }

        /// The destination word as given: `[LOGIN@]HOST`.
        static func destinationWord(_ args: [String]) -> String? {
            let withValue = Set("BbcDEeFIiJLlmOopQRSWw")
            var i = 0
            while i < args.count {
                let a = args[i]
                if a == "--" { return args.count > i + 1 ? args[i + 1] : nil }
                if a.hasPrefix("-") && a.count >= 2 {
                    // `-vp 22`: a value-taking flag last takes the next word; `-p22` carries it.
                    let flags = Array(a.dropFirst())
                    let valueAt = flags.firstIndex { withValue.contains($0) }
                    i += (valueAt == flags.count - 1) ? 2 : 1
                    continue
                }
                return a
            }
            return nil
        }

        /// The login asked for: `-l LOGIN`, or the part before the last `@` of the destination.
        static func login(_ args: [String]) -> String? {
            if let i = args.firstIndex(of: "-l"), i + 1 < args.count { return args[i + 1] }
            guard let destination = Self.destinationWord(args), let at = destination.lastIndex(of: "@") else { return nil }
            return String(destination[..<at])
        }

        static func host(_ destination: String) -> String {
            String(destination.split(separator: "@").last ?? Substring(destination))
        }

        static let configuration = CommandConfiguration(
            commandName: "connect",
            abstract: "Run OpenSSH's ssh with your certificate (renewed when it has under five minutes left); everything after the host goes to ssh."
        )

        @Argument(parsing: .captureForPassthrough, help: "[LOGIN@]HOST [COMMAND...], as for ssh.") var arguments: [String] = []

        func run() async throws {
            do {
                guard let target = Self.destination(self.arguments) else {
                    throw GatehouseError(.invalidInput, "name a host: gatehouse ssh [LOGIN@]HOST [COMMAND]")
                }
                // A certificate for this host alone (when it is one of the policy's), so a
                // connection never carries principals for every other server.
                let config = CLIConfig()
                let hosts =
                    (FileManager.default.contents(atPath: config.path("hosts.json")).flatMap {
                        try? JSONDecoder().decode([ServerClient.SSHHost].self, from: $0)
                    }) ?? []
                let listed = hosts.first { $0.name == target || $0.addresses.contains(target) }
                let host = listed?.name
                let file = host.map { "id_ed25519-\($0)-cert.pub" } ?? "id_ed25519-cert.pub"
                let login = Self.login(self.arguments)
                let (key, certificate, _) = try await SSHCommand.ensureCertificate(
                    ttl: nil, hosts: host.map { [$0] }, margin: 300, force: false, file: file,
                    wanted: login.flatMap { l in host.map { "\(l)@\($0)" } })
                var args = [
                    "ssh", "-i", key, "-o", "CertificateFile=\(certificate)", "-o", "IdentitiesOnly=yes", "-o",
                    "UserKnownHostsFile=\(config.path("known_hosts"))",
                    "-o", "StrictHostKeyChecking=yes",
                ]
                // A host named as in the policy: reach its address and sshd port, and check the
                // key its host certificate vouches for under its name. Options the person gave
                // (a port, a HostName) come first in the arguments and win.
                if let listed, listed.name == target {
                    let given = self.arguments.joined(separator: " ").lowercased()
                    if let address = listed.addresses.first, !given.contains("hostname=") { args += ["-o", "HostName=\(address)"] }
                    if !self.arguments.contains(where: { $0.hasPrefix("-p") }) && !given.contains("port=") {
                        args += ["-o", "Port=\(listed.port ?? 22)"]
                    }
                    args += ["-o", "HostKeyAlias=\(listed.name)"]
                }
                args += self.arguments
                let cArgs = args.map { strdup($0) } + [nil]
                execvp("ssh", cArgs)
                throw GatehouseError(.internal, "cannot run ssh: \(String(cString: strerror(errno)))")
            } catch {
                throw fail(error)
            }
        }
    }
}
