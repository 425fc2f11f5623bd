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

        func run() async throws {
            do {
                print(try GatehouseSchema.printed(), terminator: "")
            } catch {
                throw fail(error)
            }
        }
    }
}
