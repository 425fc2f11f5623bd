import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehouseServices

/// `gatehouse sessions`: sessions through the SSH bastion, on the server's admin socket.
struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "SSH sessions through the bastion: list them, play or watch their recordings, end one.",
        subcommands: [List.self, Play.self, Watch.self, Kill.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sessions, newest first.")
        @OptionGroup var options: DataDirOption
        @Flag(help: "Only sessions still running.") var live = false
        @Option(help: "At most this many (1-10000).") var limit = 50
        @Flag(help: "JSON instead of a table.") var json = false

        func run() async throws {
            do {
                let sessions = try await AdminClient(dataDir: self.options.dataDir).bastionSessions(live: self.live, limit: self.limit)
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(sessions), as: UTF8.self))
                    return
                }
                guard !sessions.isEmpty else { return print(self.live ? "No live sessions." : "No sessions yet.") }
                let formatter = ISO8601DateFormatter()
                print("ID                                    USER        LOGIN@HOST                 STARTED               STATE")
                for s in sessions {
                    let state =
                        s.endedAt == nil ? "live" : s.exitSignal.map { "signal \($0)" } ?? s.exitStatus.map { "exit \($0)" } ?? (s.endedBy ?? "ended")
                    print(
                        "\(s.id)  \(s.username.padding(toLength: 10, withPad: " ", startingAt: 0))  \("\(s.login)@\(s.host)".padding(toLength: 25, withPad: " ", startingAt: 0))  \(formatter.string(from: s.startedAt))  \(state)"
                    )
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Play: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Plays a recording in this terminal (or prints it as asciicast v2 with --raw).")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The session ID.") var id: String
        @Option(help: "Playback speed (2 = twice as fast).") var speed = 1.0
        @Option(name: .customLong("max-idle"), help: "Longest pause between events, in seconds.") var maxIdle = 2.0
        @Flag(help: "Print the asciicast v2 file (for asciinema) instead of playing it.") var raw = false

        func validate() throws {
            guard self.speed > 0, self.speed <= 1000, self.maxIdle >= 0 else {
                throw ValidationError("--speed must be in (0, 1000] and --max-idle at least 0")
            }
        }

        func run() async throws {
            do {
                var player = Player(speed: self.speed, maxIdle: self.maxIdle, raw: self.raw)
                try await AdminClient(dataDir: self.options.dataDir).sessionRecording(id: self.id, follow: false) { try await player.line($0) }
                player.finish()
            } catch {
                throw fail(error)
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Watches a live session as it happens (from its recording), until it ends.")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The session ID.") var id: String
        @Flag(help: "Print asciicast v2 lines instead of the terminal output.") var raw = false

        func run() async throws {
            do {
                var player = Player(speed: .infinity, maxIdle: 0, raw: self.raw)
                try await AdminClient(dataDir: self.options.dataDir).sessionRecording(id: self.id, follow: true) { try await player.line($0) }
                player.finish()
            } catch {
                throw fail(error)
            }
        }
    }

    struct Kill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ends a live session now (the person is told; the recording is sealed).")
        @OptionGroup var options: DataDirOption
        @Argument(help: "The session ID.") var id: String
        @Option(help: "Why (recorded in the audit log and shown to the person).") var reason: String?

        func run() async throws {
            do {
                _ = try await AdminClient(dataDir: self.options.dataDir).killBastionSession(id: self.id, reason: self.reason)
                print("Ended session \(self.id).")
            } catch {
                throw fail(error)
            }
        }
    }
}

/// Writes asciicast lines as a terminal would have shown them, paced by their timestamps.
struct Player {
    let speed: Double
    let maxIdle: Double
    let raw: Bool
    private var last = 0.0
    private var sawHeader = false

    init(speed: Double, maxIdle: Double, raw: Bool) {
        self.speed = speed
        self.maxIdle = maxIdle
        self.raw = raw
    }

    mutating func line(_ text: String) async throws {
        if self.raw {
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            return
        }
        guard self.sawHeader else {
            self.sawHeader = true
            if let header = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let title = header["title"] as? String {
                FileHandle.standardError.write(Data("gatehouse: session \(title)\n".utf8))
            }
            return
        }
        guard let event = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any], event.count == 3,
            let time = (event[0] as? NSNumber)?.doubleValue, let kind = event[1] as? String, let data = event[2] as? String
        else { return }
        if self.speed.isFinite {
            let pause = min(max(0, time - self.last), self.maxIdle) / self.speed
            if pause > 0.001 { try await Task.sleep(for: .milliseconds(Int(pause * 1000))) }
        }
        self.last = time
        switch kind {
        case "o": FileHandle.standardOutput.write(Data(data.utf8))
        case "m": FileHandle.standardError.write(Data("\r\n[gatehouse: \(data)]\r\n".utf8))
        default: break
        }
    }

    func finish() {
        if !self.raw { FileHandle.standardError.write(Data("\r\n".utf8)) }
    }
}
