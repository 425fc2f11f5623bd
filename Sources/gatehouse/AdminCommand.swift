import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore

/// `gatehouse admin ...`: administration through the running server's local socket.
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer a running server through its local admin socket.",
        subcommands: [
            Status.self, Invite.self, Invitations.self, Recover.self, Offboard.self, Lock.self, Unlock.self, OIDCClientCommand.self,
            OIDCKeyCommand.self, HostCommand.self, PKIAdminCommand.self, NetworkAdminCommand.self,
        ]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the running server's status.")

        @OptionGroup var options: DataDirOption
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() async throws {
            do {
                let status = try await AdminClient(dataDir: self.options.dataDir).status()
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(status), as: UTF8.self))
                    return
                }
                print(
                    """
                    gatehouse \(status.version)
                    public url:           \(status.publicURL)
                    store:                \(status.storeKind)
                    started:              \(ISO8601DateFormatter().string(from: status.startedAt))
                    users:                \(status.users) (\(status.administrators) \(status.administrators == 1 ? "administrator" : "administrators"))
                    pending invitations:  \(status.pendingInvitations)
                    audit events:         \(status.auditEvents)
                    policy version:       \(status.policyVersion.map(String.init) ?? "none applied (everything is denied)")
                    """)
            } catch {
                throw fail(error)
            }
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Invite a person: prints a one-time enrollment URL, valid for 72 hours."
        )

        @OptionGroup var options: DataDirOption
        @Argument(help: "Username: a-z, 0-9, '.', '_' and '-', starting with a letter.") var username: String
        @Option(help: "E-mail address.") var email: String
        @Option(
            help:
                "The account's role in Gatehouse itself: admin or member (default: member). What they may reach comes from the policy's groups and roles."
        ) var role: String?

        /// Words that name what to do with invitations, not people: `admin invite revoke` was read
        /// as inviting someone called "revoke".
        static let reserved: Set<String> = ["list", "revoke", "resend", "ls", "rm"]

        func run() async throws {
            do {
                if Self.reserved.contains(self.username) {
                    throw GatehouseError(
                        .invalidInput,
                        "\(self.username) is not a user name here; did you mean gatehouse admin invitations \(self.username == "ls" ? "list" : self.username == "rm" ? "revoke" : self.username) ...?"
                    )
                }
                // Check locally first so a typo gets the same clear message without a round trip.
                _ = try Username(validating: self.username)
                _ = try EmailAddress(validating: self.email)
                if let role = self.role { _ = try RoleName(validating: role) }
                let issued = try await AdminClient(dataDir: self.options.dataDir).invite(
                    username: self.username, email: self.email, role: self.role
                )
                print("Invited \(issued.username) (role \(issued.role)); the link expires \(ISO8601DateFormatter().string(from: issued.expiresAt)).")
                print("Send them this one-time enrollment URL:")
                print("")
                print("    \(issued.enrollmentURL)")
            } catch {
                throw fail(error)
            }
        }
    }

    struct Invitations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pending enrollment and recovery links: list them, revoke one, or send a new one in its place.",
            subcommands: [List.self, Revoke.self, Resend.self], defaultSubcommand: List.self
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every link not yet used or revoked (expired ones say so).")
            @OptionGroup var options: DataDirOption
            @Flag(help: "JSON output.") var json = false

            func run() async throws {
                do {
                    let list = try await AdminClient(dataDir: self.options.dataDir).invitations()
                    if self.json {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys]
                        encoder.dateEncodingStrategy = .iso8601
                        print(
                            String(
                                decoding: try encoder.encode(
                                    list.map {
                                        [
                                            "id": $0.id, "kind": $0.kind, "username": $0.username, "email": $0.email ?? "", "role": $0.role,
                                            "state": $0.state, "expires_at": ISO8601DateFormatter().string(from: $0.expiresAt),
                                            "created_by": $0.createdBy,
                                        ]
                                    }), as: UTF8.self))
                        return
                    }
                    guard !list.isEmpty else { return print("No pending invitations.") }
                    for i in list {
                        print(
                            "\(i.username)\t\(i.kind)\t\(i.state)\texpires \(ISO8601DateFormatter().string(from: i.expiresAt))\tby \(i.createdBy)\t\(i.email ?? "")"
                        )
                    }
                } catch {
                    throw fail(error)
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "End a person's pending link (a lost or mistaken invitation); audited.")
            @OptionGroup var account: AccountChange

            func run() async throws {
                do {
                    _ = try Username(validating: self.account.username)
                    let revoked = try await AdminClient(dataDir: self.account.options.dataDir).revokeInvitation(
                        username: self.account.username, reason: self.account.reason)
                    print("Revoked the \(revoked.kind) link of \(revoked.username); it no longer works.")
                } catch {
                    throw fail(error)
                }
            }
        }

        struct Resend: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A new link in place of a person's pending or expired one (same kind, e-mail and role); the old one stops working.")
            @OptionGroup var options: DataDirOption
            @Argument(help: "Username.") var username: String

            func run() async throws {
                do {
                    _ = try Username(validating: self.username)
                    let issued = try await AdminClient(dataDir: self.options.dataDir).resendInvitation(username: self.username)
                    print(
                        "New link for \(issued.username) (role \(issued.role)); it expires \(ISO8601DateFormatter().string(from: issued.expiresAt)). The previous one no longer works."
                    )
                    print("")
                    print("    \(issued.enrollmentURL)")
                } catch {
                    throw fail(error)
                }
            }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Issue a recovery link for someone who lost their passkeys: valid 24 hours, once. At once, their passkeys are removed and everything they hold ends; the link lets them enroll a new passkey."
        )

        @OptionGroup var options: DataDirOption
        @Argument(help: "Username.") var username: String

        func run() async throws {
            do {
                _ = try Username(validating: self.username)
                let issued = try await AdminClient(dataDir: self.options.dataDir).recover(username: self.username)
                print("Recovery link for \(issued.username); it expires \(ISO8601DateFormatter().string(from: issued.expiresAt)).")
                print(
                    "Their passkeys are removed and everything they held (sessions, tokens, certificates, devices) has ended; the link replaces every passkey of \(issued.username) with a new one. Send it over a channel you trust:"
                )
                print("")
                print("    \(issued.enrollmentURL)")
            } catch {
                throw fail(error)
            }
        }
    }

    /// What offboard, lock and unlock take: a person and why.
    struct AccountChange: ParsableArguments {
        @OptionGroup var options: DataDirOption
        @Argument(help: "Username.") var username: String
        @Option(help: "Why: recorded in the audit log.") var reason: String?

        /// Checks the name, runs `change` against the server, prints its line; errors as usual.
        func run(_ change: (AdminClient, String, String?) async throws -> String) async throws {
            do {
                _ = try Username(validating: self.username)
                print(try await change(AdminClient(dataDir: self.options.dataDir), self.username, self.reason))
            } catch {
                throw fail(error)
            }
        }

        static func ended(_ revoked: [String: Int]) -> String {
            let ended = revoked.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            return ended.isEmpty ? "nothing else" : ended
        }
    }

    struct Offboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Offboard a person: disable the account and end everything it holds (sessions, tokens, certificates, bastion sessions, devices), at once and audited."
        )
        @OptionGroup var account: AccountChange

        func run() async throws {
            try await self.account.run { client, name, reason in
                let result = try await client.offboard(username: name, reason: reason)
                return "Offboarded \(result.username): account disabled; ended \(AccountChange.ended(result.revoked))."
            }
        }
    }

    struct Lock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Lock an account: end everything it holds, as offboarding does, but keep it (and its passkeys) so that `unlock` lets the person sign in again."
        )
        @OptionGroup var account: AccountChange

        func run() async throws {
            try await self.account.run { client, name, reason in
                let result = try await client.lock(username: name, reason: reason)
                return "Locked \(result.username): no sign-in until unlocked; ended \(AccountChange.ended(result.revoked))."
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unlock a locked account: the person may sign in again (nothing they held comes back).")
        @OptionGroup var account: AccountChange

        func run() async throws {
            try await self.account.run { client, name, reason in
                "Unlocked \(try await client.unlock(username: name, reason: reason).username): they may sign in again."
            }
        }
    }
}

/// `gatehouse admin host add NAME`: a one-time join token for a server the policy defines.
struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "host", abstract: "Enroll servers.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a one-time join token (24 hours) for a host the policy defines.")

        @OptionGroup var options: DataDirOption
        @Argument(help: "The host's name in the policy.") var name: String
        @Option(help: "Labels the host must carry in the policy, e.g. env=prod,role=web (a check against enrolling the wrong machine).") var labels:
            String?

        func run() async throws {
            do {
                var labels: [String: String] = [:]
                for pair in (self.labels ?? "").split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, !kv[0].isEmpty else { throw GatehouseError(.invalidInput, "--labels takes k=v,k=v") }
                    labels[String(kv[0])] = String(kv[1])
                }
                let result = try await AdminClient(dataDir: self.options.dataDir).addHost(name: self.name, labels: labels)
                // The token alone on standard output (`> web-1.token`, or piped to the host's
                // `agent join --token-file -`); the words around it on standard error.
                FileHandle.standardError.write(Data("Join token for \(self.name), valid until \(result["expires_at"] ?? "?"), once:\n".utf8))
                print(result["token"] ?? "")
                FileHandle.standardError.write(
                    Data(
                        ("On the host, as root: gatehouse agent join --server URL --token-file FILE (or - to read it from standard input),"
                            + " so it stays out of ps and shell history.\n").utf8))
            } catch {
                throw fail(error)
            }
        }
    }
}
