import Foundation
import GatehouseCore
public import GraphQL
import Graphiti

/// Runs GraphQL requests with limits applied before any parsing or execution:
/// the body size, the bracket nesting of the document (so the recursive parser cannot be driven
/// into deep recursion), and the selection depth after fragments are expanded.
/// Every failure is a GraphQL error response, never a crash.
public struct GraphQLGateway: Sendable {
    public struct Limits: Sendable {
        /// Largest accepted request body (JSON) in bytes.
        public var maxBodyBytes = 64 * 1024
        /// Largest accepted query document in bytes.
        public var maxDocumentBytes = 32 * 1024
        /// Deepest selection nesting, counting fields through fragments.
        public var maxDepth = 12
        /// Deepest bracket nesting ({ [ ( together) in the raw document.
        public var maxNesting = 64
        /// Deepest selection under `__schema` or `__type`: the standard introspection query of
        /// GraphiQL, gql and graphql-js is 13 to 15 levels of `ofType`.
        public var maxIntrospectionDepth = 20
        /// How many list-valued introspection fields may nest (`types { fields { args } }` is 3):
        /// what multiplies introspection's work.
        public var maxIntrospectionLists = 3
        public static let `default` = Limits()
        public init() {}
    }

    /// A response ready to send: HTTP status and JSON body.
    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
    }

    let api: GatehouseAPI
    let limits: Limits

    public init(_ variant: SchemaVariant = .public, limits: Limits = .default) throws {
        self.api = try GatehouseSchema.makeAPI(variant)
        self.limits = limits
    }

    /// A GraphQL-over-HTTP request body.
    public struct Request: Decodable, Sendable {
        public var query: String
        public var variables: [String: Map]?
        public var operationName: String?
    }

    public func handle(body: [UInt8], context: GraphQLContext) async -> Response {
        let request: Request
        switch self.admit(body: body) {
        case .refused(let response): return response
        case .admitted(let admitted): request = admitted
        }
        do {
            let result = try await self.api.execute(
                request: request.query, context: context, variables: request.variables ?? [:], operationName: request.operationName
            )
            return Self.encode(200, result)
        } catch let error as GraphQLError {
            return Self.encode(200, GraphQLResult(errors: [error]))
        } catch {
            return Self.failure(500, "the query could not be executed", code: "INTERNAL")
        }
    }

    /// The outcome of the checks made before execution.
    public enum Admission: Sendable {
        case admitted(Request)
        case refused(Response)
    }

    /// Every check that runs before execution, in order: body size, JSON shape, document size,
    /// bracket nesting (before the recursive parser sees the document), syntax, and selection
    /// depth through fragments. Synchronous and total, so it can be fuzzed on its own.
    public func admit(body: [UInt8]) -> Admission {
        guard body.count <= self.limits.maxBodyBytes else {
            return .refused(Self.failure(413, "request body is larger than \(self.limits.maxBodyBytes) bytes", code: "REQUEST_TOO_LARGE"))
        }
        let request: Request
        do {
            request = try JSONDecoder().decode(Request.self, from: Data(body))
        } catch {
            return .refused(
                Self.failure(
                    400, "request body must be JSON: {\"query\": \"...\", \"variables\": {...}, \"operationName\": \"...\"}", code: "BAD_REQUEST"))
        }
        guard request.query.utf8.count <= self.limits.maxDocumentBytes else {
            return .refused(Self.failure(400, "query document is larger than \(self.limits.maxDocumentBytes) bytes", code: "QUERY_TOO_LARGE"))
        }
        guard QueryLimits.nesting(of: request.query) <= self.limits.maxNesting else {
            return .refused(Self.failure(400, "query document nests brackets more than \(self.limits.maxNesting) deep", code: "QUERY_TOO_DEEP"))
        }
        let document: Document
        do {
            document = try parse(source: request.query)
        } catch let error as GraphQLError {
            return .refused(Self.encode(200, GraphQLResult(errors: [Self.tagged(error, code: "GRAPHQL_PARSE_FAILED")])))
        } catch {
            return .refused(Self.failure(400, "query could not be parsed", code: "GRAPHQL_PARSE_FAILED"))
        }
        let depths = QueryLimits.depths(of: document, operationName: request.operationName)
        let depth = depths.fields
        guard depth <= self.limits.maxDepth else {
            return .refused(
                Self.failure(
                    400, "query is \(depth > 1000 ? "too many" : String(depth)) levels deep; the limit is \(self.limits.maxDepth)",
                    code: "QUERY_TOO_DEEP"))
        }
        guard depths.introspection <= self.limits.maxIntrospectionDepth, depths.introspectionLists <= self.limits.maxIntrospectionLists else {
            return .refused(
                Self.failure(
                    400,
                    "introspection is \(depths.introspection > 1000 ? "too many" : String(depths.introspection)) levels deep with \(min(depths.introspectionLists, 1001)) nested lists; "
                        + "the limits are \(self.limits.maxIntrospectionDepth) and \(self.limits.maxIntrospectionLists) (the standard introspection query fits)",
                    code: "QUERY_TOO_DEEP"))
        }
        return .admitted(request)
    }

    static func failure(_ status: Int, _ message: String, code: String) -> Response {
        Self.encode(status, GraphQLResult(errors: [GraphQLError(message: message, extensions: ["code": .string(code)])]))
    }

    static func tagged(_ error: GraphQLError, code: String) -> GraphQLError {
        GraphQLError(message: error.message, locations: error.locations, path: error.path, extensions: ["code": .string(code)])
    }

    static func encode(_ status: Int, _ result: GraphQLResult) -> Response {
        let encoder = GraphQLJSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(result)) ?? Data(#"{"errors":[{"message":"response could not be encoded"}]}"#.utf8)
        return Response(status: status, body: [UInt8](data))
    }
}
