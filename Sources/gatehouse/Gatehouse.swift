import ArgumentParser
import Foundation
import GatehouseAudit
import GatehouseCore

/// `gatehouse`: the server, the agent and every client command in one executable.
@main
struct Gatehouse: AsyncParsableCommand {
    static let version = "0.1.0-dev"

    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "One access-control plane: passkey sign-on, SSH certificates, WireGuard, mTLS, one policy, one audit log.",
        version: Gatehouse.version,
        subcommands: [
            Serve.self, Login.self, Logout.self, Status.self, SSHCommand.self, Agent.self, Admin.self, PolicyCommand.self, Audit.self,
            GraphQLCommand.self, PKICommand.self, WGCommand.self, SessionsCommand.self,
        ]
    )

    /// With `GATEHOUSE_CHECK_ARGS=1`, the arguments are parsed and nothing is run: it prints the
    /// command they select and exits 0, or the parse error and exits 64. The documentation test
    /// checks every `gatehouse` command written in README.md and docs/ this way.
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if ProcessInfo.processInfo.environment["GATEHOUSE_CHECK_ARGS"] == "1" {
                print("parsed: \(type(of: command)._commandName)")
                return
            }
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// Shared `--data-dir` option: where the server keeps its state and admin socket.
struct DataDirOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Data directory (default: $GATEHOUSE_DATA_DIR, else \(ServerSettings.defaultDataDir)).")
    var explicitDataDir: String?

    /// `--data-dir`, else `GATEHOUSE_DATA_DIR`, else `./gatehouse-data`: every command finds the
    /// server's directory the same way.
    var dataDir: String { self.explicitDataDir ?? Self.fromEnvironment ?? ServerSettings.defaultDataDir }

    static var fromEnvironment: String? {
        ProcessInfo.processInfo.environment["GATEHOUSE_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Prints a user-facing error as one line on standard error and exits with status 1.
func fail(_ error: any Error) -> ExitCode {
    let message: String
    if let error = error as? GatehouseError {
        message = error.message
    } else if let error = error as? ConfigError {
        message = error.description
    } else if let error = error as? CheckpointError {
        message = error.description
    } else {
        message = "\(error)"
    }
    FileHandle.standardError.write(Data("gatehouse: error: \(message)\n".utf8))
    return ExitCode(1)
}
