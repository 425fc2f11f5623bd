import ArgumentParser
import GatehouseGraphQL

/// `gatehouse graphql schema`: prints the API schema (checked in as `schema.graphql`).
struct GraphQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graphql",
        abstract: "GraphQL API tools.",
        subcommands: [Schema.self]
    )

    struct Schema: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the GraphQL schema (SDL).")

        @Flag(help: "The administrator's schema served on the admin socket (schema.admin.graphql).") var admin = false

        func run() async throws {
            do {
                print(try GatehouseSchema.printed(self.admin ? .admin : .public), terminator: "")
            } catch {
                throw fail(error)
            }
        }
    }
}
