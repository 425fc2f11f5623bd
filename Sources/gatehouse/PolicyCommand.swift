import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore
import GatehousePolicy
import GatehouseServices

/// `gatehouse policy ...`: check a policy file offline, and diff, apply, show and explain it
/// against the running server through its admin socket.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, diff, apply and explain the one policy (docs/policy.md).",
        subcommands: [Check.self, Diff.self, Apply.self, Show.self, History.self, Explain.self]
    )

    /// Reads a policy file (or `-` for standard input), refusing anything over the size limit.
    static func read(_ path: String) throws -> (text: String, name: String) {
        let limit = PolicyService.maxSourceBytes
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else { throw GatehouseError(.invalidInput, "cannot read \(path)") }
            handle = h
        }
        let data = (try? handle.read(upToCount: limit + 1)) ?? Data()
        guard data.count <= limit else { throw GatehouseError(.inputTooLarge, "\(path) is larger than \(limit) bytes") }
        guard let text = String(data: data, encoding: .utf8) else { throw GatehouseError(.invalidInput, "\(path) is not UTF-8 text") }
        return (text, path == "-" ? "stdin" : (path as NSString).lastPathComponent)
    }

    static func printLines(_ added: [String], _ removed: [String]) {
        let lines = removed.map { ($0, "- ") } + added.map { ($0, "+ ") }
        for (line, sign) in lines.sorted(by: { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }) { print(sign + line) }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse, compile and run the tests block of a policy file. Needs no server; exits 1 on any problem."
        )

        @Argument(help: "Policy file, or - for standard input.") var file: String
        @Flag(help: "Print every test, not only failures.") var verbose = false

        func run() async throws {
            do {
                let (text, name) = try PolicyCommand.read(self.file)
                let service = PolicyService(
                    environment: ServiceEnvironment(store: InMemoryStore(), time: SystemTimeSource(), random: SystemRandomSource()))
                let check = service.check(source: text, fileName: name)
                for d in check.diagnostics { print(d) }
                for t in check.tests where self.verbose || !t.passed { print(t) }
                if let refusal = check.refusal {
                    throw GatehouseError(
                        refusal.code,
                        check.diagnostics.isEmpty
                            ? "\(check.failedTests.count) of \(check.tests.count) tests failed" : "\(check.diagnostics.count) problem(s) in \(name)")
                }
                print("\(name): valid, \(check.policy!.rules.count) rules, \(check.tests.count) tests passed (sha256 \(check.sha256.prefix(16)))")
            } catch {
                throw fail(error)
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what a policy file would grant (+) and revoke (-) against the active version.")

        @OptionGroup var options: DataDirOption
        @Argument(help: "Policy file, or - for standard input.") var file: String

        func run() async throws {
            do {
                let (text, name) = try PolicyCommand.read(self.file)
                let diff = try await AdminClient(dataDir: self.options.dataDir).policyDiff(source: text, fileName: name)
                let against = diff.activeVersion.map { "version \($0)" } ?? "no policy (everything denied)"
                if diff.added.isEmpty && diff.removed.isEmpty {
                    print("no change in access against \(against)")
                } else {
                    print("against \(against): \(diff.added.count) granted, \(diff.removed.count) revoked")
                    PolicyCommand.printLines(diff.added, diff.removed)
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a policy file as the next version: atomic, audited, refused if it has problems or a test fails."
        )

        @OptionGroup var options: DataDirOption
        @Argument(help: "Policy file, or - for standard input.") var file: String
        @Option(name: .customLong("expect-version"), help: "Refuse unless the active version is this one (what you diffed against).")
        var expectVersion: Int64?
        @Option(help: "Why: recorded with the version and in the audit log.") var comment: String?

        func run() async throws {
            do {
                let (text, name) = try PolicyCommand.read(self.file)
                let result = try await AdminClient(dataDir: self.options.dataDir).policyApply(
                    source: text, fileName: name, expectedVersion: self.expectVersion, comment: self.comment
                )
                if result.unchanged {
                    print("unchanged: \(name) is already version \(result.version.version)")
                } else {
                    print(
                        "applied \(name) as version \(result.version.version): \(result.version.ruleCount) rules, \(result.tests) tests passed, \(result.added.count) granted, \(result.removed.count) revoked"
                    )
                    PolicyCommand.printLines(result.added, result.removed)
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the text of the active policy, or of an older version.")

        @OptionGroup var options: DataDirOption
        @Option(help: "Version to show (default: the active one).") var version: Int64?

        func run() async throws {
            do {
                let result = try await AdminClient(dataDir: self.options.dataDir).policyVersion(self.version)
                FileHandle.standardOutput.write(Data(result.source.utf8))
            } catch {
                throw fail(error)
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied policy versions, newest first.")

        @OptionGroup var options: DataDirOption
        @Option(help: "How many versions to list.") var limit = 20

        func run() async throws {
            do {
                let versions = try await AdminClient(dataDir: self.options.dataDir).policyHistory(limit: self.limit)
                if versions.isEmpty { print("no policy has been applied yet; everything is denied") }
                let format = ISO8601DateFormatter()
                for v in versions {
                    print(
                        "v\(v.version)  \(format.string(from: v.appliedAt))  \(v.appliedBy)  \(v.ruleCount) rules  sha256:\(v.sha256.prefix(16))"
                            + (v.comment.map { "  \($0)" } ?? ""))
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain the active policy's decision for one request: which rule allows it, or why it is denied."
        )

        @OptionGroup var options: DataDirOption
        @Option(help: "The user asking (or host:NAME).") var user: String
        @Option(help: "LOGIN@HOST") var ssh: String?
        @Option(help: "HOST:PORT, ADDRESS:PORT or [IPv6]:PORT, with /tcp or /udp") var reach: String?
        @Option(help: "An app name.") var app: String?
        @Option(help: "A role to request.") var request: String?
        @Option(help: "A SPIFFE ID.") var obtain: String?
        @Option(help: "Source address of the request.") var from: String?
        @Option(name: .customLong("stepped-up"), help: "Seconds since the user's last passkey check (default: none).")
        var steppedUp: Int64?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            do {
                let given: [(PolicyQuery.Kind, String?)] = [
                    (.ssh, self.ssh), (.reach, self.reach), (.app, self.app), (.request, self.request), (.obtain, self.obtain),
                ]
                let chosen = given.compactMap { k, v in v.map { (k, $0) } }
                guard chosen.count == 1 else { throw GatehouseError(.invalidInput, "give exactly one of --ssh, --reach, --app, --request, --obtain") }
                let query = PolicyAPI.ExplainQuery(
                    user: self.user, kind: chosen[0].0, value: chosen[0].1, from: self.from, stepUpAgeSeconds: self.steppedUp)
                let result = try await AdminClient(dataDir: self.options.dataDir).policyExplain(query)
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(result), as: UTF8.self))
                } else {
                    print("policy:     " + (result.activeVersion.map { "version \($0)" } ?? "none applied"))
                    print(result.text)
                }
                if !result.allowed { throw ExitCode(2) }
            } catch let code as ExitCode {
                throw code
            } catch {
                throw fail(error)
            }
        }
    }
}
