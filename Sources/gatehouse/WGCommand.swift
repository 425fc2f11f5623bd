import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehouseHostNetwork

/// `gatehouse wg`: puts this device on the private network as the signed-in person. The
/// WireGuard key is made here with `wg genkey` and its private half never leaves the device; the
/// server learns the public key, hands out the device's address, and tells the gateways.
struct WGCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wg",
        abstract: "Join this device to the private network over WireGuard (as the signed-in person).",
        subcommands: [Up.self, Down.self, Devices.self, Remove.self]
    )

    struct Interface: ParsableArguments {
        @Option(help: "The WireGuard interface (and wg-quick configuration) name.") var interface = "gatehouse"

        func configPath(_ config: CLIConfig) -> String { config.path("\(self.interface).conf") }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a new key for this device and bring the tunnel up with wg-quick.")

        @OptionGroup var interface: Interface
        @Option(help: "A name for this device in gatehouse wg devices (default: the host name).") var name: String?
        @Option(name: .customLong("config-only"), help: "Write the wg-quick configuration to this file instead of bringing the interface up.")
        var configOnly: String?

        func run() async throws {
            do {
                try HostNetworkPlan.checkInterfaceName(self.interface.interface)
                let config = CLIConfig()
                let (token, credentials) = try await config.accessToken()
                guard let server = URL(string: credentials.server) else { throw GatehouseError(.invalidInput, "the sign-in names no server") }
                let privateKey = try Command.run("wg", ["genkey"]).trimmingCharacters(in: .whitespacesAndNewlines)
                let publicKey = try WireGuardKey(
                    base64: try Command.run("wg", ["pubkey"], input: privateKey + "\n").trimmingCharacters(in: .whitespacesAndNewlines))
                let deviceName = self.name ?? String(ProcessInfo.processInfo.hostName.prefix(64)).replacingOccurrences(of: " ", with: "-")
                let answer = try await ServerClient(server: server).registerDevice(publicKey: publicKey, name: deviceName, accessToken: token)
                // Checked before a line of it reaches a file that wg-quick runs as root.
                try HostNetworkPlan.checkDevice(answer)
                let text = WireGuardConfigFile.device(privateKey: privateKey, address: "\(answer.device.address)/128", peers: answer.peers)
                let path = self.configOnly ?? self.interface.configPath(config)
                try config.prepare()
                try SecureFile.write(path, Data(text.utf8), mode: 0o600)
                try SecureFile.write(config.path("\(self.interface.interface).device"), Data(answer.device.id.utf8), mode: 0o600)
                let expires = ISO8601DateFormatter().string(from: answer.device.expiresAt)
                if self.configOnly != nil {
                    print("Device \(answer.device.id) (\(answer.device.address)) registered until \(expires); configuration written to \(path).")
                    return
                }
                // wg-quick falls back to wireguard-go where the kernel has no WireGuard, which
                // stays in the background: started as a daemon is, so nothing waits for it.
                let log = URL(fileURLWithPath: config.path("\(self.interface.interface).log"))
                _ = try? Command.runDaemon("wg-quick", ["down", path], log: log)
                try Command.runDaemon("wg-quick", ["up", path], log: log)
                print(
                    "\(self.interface.interface) is up: \(answer.device.address) via \(answer.peers.map(\.label).joined(separator: ", ")), until \(expires)."
                )
            } catch {
                throw fail(error)
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring the tunnel down (the device stays registered until it expires or is removed).")
        @OptionGroup var interface: Interface

        func run() async throws {
            do {
                try HostNetworkPlan.checkInterfaceName(self.interface.interface)
                let config = CLIConfig()
                try Command.runDaemon(
                    "wg-quick", ["down", self.interface.configPath(config)], log: URL(fileURLWithPath: config.path("\(self.interface.interface).log"))
                )
                print("\(self.interface.interface) is down.")
            } catch {
                throw fail(error)
            }
        }
    }

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your devices on the private network.")
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            do {
                let config = CLIConfig()
                let (token, credentials) = try await config.accessToken()
                guard let server = URL(string: credentials.server) else { throw GatehouseError(.invalidInput, "the sign-in names no server") }
                let devices = try await ServerClient(server: server).networkDevices(accessToken: token)
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(devices), as: UTF8.self))
                    return
                }
                let now = Date()
                for d in devices {
                    let state =
                        d.revokedAt != nil
                        ? "removed" : d.expiresAt <= now ? "expired" : "live until \(ISO8601DateFormatter().string(from: d.expiresAt))"
                    print("\(d.id)  \(d.name)  \(d.address)  \(state)")
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a device from the private network (gateways drop it within a second).")
        @Argument(help: "The device id (gatehouse wg devices).") var id: String

        func run() async throws {
            do {
                let config = CLIConfig()
                let (token, credentials) = try await config.accessToken()
                guard let server = URL(string: credentials.server) else { throw GatehouseError(.invalidInput, "the sign-in names no server") }
                try await ServerClient(server: server).removeDevice(id: self.id, accessToken: token)
                print("Device \(self.id) removed.")
            } catch {
                throw fail(error)
            }
        }
    }
}

/// `gatehouse admin network`: every person's devices, removing any of them, and what a host's
/// agent is told to enforce.
struct NetworkAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "The private network: devices and hosts' configurations.",
        subcommands: [Devices.self, Remove.self, Show.self]
    )

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Live devices (--all for removed and expired ones too): id, person, name, address, expiry.")
        @OptionGroup var options: DataDirOption
        @Flag(help: "Include removed and expired devices.") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            do {
                let devices = try await AdminClient(dataDir: self.options.dataDir).networkDevices(all: self.all)
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(devices), as: UTF8.self))
                    return
                }
                let iso = ISO8601DateFormatter()
                for d in devices {
                    print(
                        "\(d.id)  \(d.username)  \(d.name)  \(d.address)  until \(iso.string(from: d.expiresAt))\(d.revokedAt != nil ? "  REMOVED" : "")"
                    )
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a device: gateways drop its peer within a second.")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The device id (gatehouse admin network devices).") var id: String

        func run() async throws {
            do {
                _ = try await AdminClient(dataDir: self.options.dataDir).removeNetworkDevice(id: self.id)
                print("Device \(self.id) removed.")
            } catch {
                throw fail(error)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The configuration a host's agent gets now (JSON): peers, allow classes, organizations.")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The host's name in the policy.") var host: String

        func run() async throws {
            do {
                let config = try await AdminClient(dataDir: self.options.dataDir).hostNetwork(host: self.host)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(config), as: UTF8.self))
            } catch {
                throw fail(error)
            }
        }
    }
}
