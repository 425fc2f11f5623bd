import ArgumentParser
import Foundation
import GatehouseClient
import GatehouseCore

/// `gatehouse admin oidc-client add|list|remove`: OAuth clients registered in the store.
/// (Public clients can also be declared in the policy file with `redirect_uris`.)
struct OIDCClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oidc-client",
        abstract: "Register, list and remove OpenID Connect clients.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a client. A confidential client gets a secret, printed once; only its hash is stored."
        )

        @OptionGroup var options: DataDirOption
        @Argument(help: "Client id: a-z, 0-9, '.', '_' or '-'.") var id: String
        @Option(name: .customLong("redirect-uri"), help: "A redirect URI, exactly as the client will send it (repeatable).") var redirectURIs:
            [String] = []
        @Option(name: .customLong("post-logout-redirect-uri"), help: "Where the client may send users after logout (repeatable).")
        var postLogoutRedirectURIs: [String] = []
        @Option(help: "Display name on consent and error pages.") var name: String?
        @Flag(name: .customLong("public"), help: "A public client (CLI, single-page app): no secret, PKCE only.") var isPublic = false
        @Flag(name: .customLong("third-party"), help: "Ask users for consent before signing them in to this client.") var thirdParty = false
        @Option(name: .customLong("jwks-file"), help: "A JWK Set file: the client authenticates with private_key_jwt instead of a secret.")
        var jwksFile: String?
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() async throws {
            do {
                var jwks: [String: [[String: String]]]? = nil
                if let path = self.jwksFile {
                    guard let data = FileManager.default.contents(atPath: path), data.count <= 16_384,
                        let parsed = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let keys = parsed["keys"] as? [[String: Any]]
                    else {
                        throw GatehouseError(.invalidInput, "\(path) is not a JWK Set ({\"keys\": [...]}) of at most 16 KiB")
                    }
                    jwks = ["keys": keys.map { $0.compactMapValues { $0 as? String } }]
                }
                let listing = try await AdminClient(dataDir: self.options.dataDir).addOIDCClient(
                    .init(
                        id: self.id, name: self.name, kind: self.isPublic ? "public" : "confidential", redirectURIs: self.redirectURIs,
                        postLogoutRedirectURIs: self.postLogoutRedirectURIs, firstParty: !self.thirdParty, jwks: jwks
                    ))
                if self.json { return printJSON(listing) }
                print("Registered \(listing.kind) client \(listing.id) (\(listing.authMethods.joined(separator: ", "))).")
                if let secret = listing.secret {
                    print("Its secret, shown this once (only a hash is kept):")
                    print("")
                    print("    \(secret)")
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List clients (registered and declared in the policy).")

        @OptionGroup var options: DataDirOption
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() async throws {
            do {
                let clients = try await AdminClient(dataDir: self.options.dataDir).oidcClients()
                if self.json { return printJSON(clients) }
                if clients.isEmpty { print("No clients.") }
                for c in clients {
                    print(
                        "\(c.id)\t\(c.kind)\t\(c.source)\t\(c.firstParty ? "first-party" : "third-party")\t\(c.redirectURIs.joined(separator: " "))")
                }
            } catch {
                throw fail(error)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a registered client and revoke every token it holds.")

        @OptionGroup var options: DataDirOption
        @Argument(help: "Client id.") var id: String

        func run() async throws {
            do {
                let result = try await AdminClient(dataDir: self.options.dataDir).removeOIDCClient(id: self.id)
                print("Removed \(self.id); revoked \(result["grants_revoked"] ?? "0") grants.")
            } catch {
                throw fail(error)
            }
        }
    }
}

/// `gatehouse admin oidc-key rotate`: a new token-signing key; the old one stays published for a day.
struct OIDCKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "oidc-key", abstract: "Manage the token-signing key.", subcommands: [Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign new tokens with a new key; the previous key stays in the JWKS for 24 hours so tokens it signed keep verifying."
        )

        @OptionGroup var options: DataDirOption
        @Option(help: "ecdsa-p256 (ES256, default) or ed25519 (EdDSA).") var algorithm = "ecdsa-p256"

        func run() async throws {
            do {
                let result = try await AdminClient(dataDir: self.options.dataDir).rotateOIDCKey(algorithm: self.algorithm)
                print("Signing with \(result["algorithm"] ?? "") key \(result["kid"] ?? "") from now on.")
            } catch {
                throw fail(error)
            }
        }
    }
}

func printJSON(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self))
}
