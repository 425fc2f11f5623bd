import Foundation
import GatehouseAudit
public import GatehouseCore
public import GatehouseServices
import GraphQL
import Graphiti

/// One audit entry as GraphQL shows it. `sequence` is a string: sequence numbers are 64-bit and
/// GraphQL's Int is 32. `canonical` is the exact text hashed into the Merkle tree.
public struct AuditEventNode: Codable, Sendable {
    public struct Detail: Codable, Sendable {
        public let key: String
        public let value: String
    }

    public let sequence: String
    public let code: String
    public let actor: String
    public let subject: String
    public let outcome: String
    public let reason: String?
    public let requestId: String?
    public let sourceAddress: String?
    public let time: String
    public let details: [Detail]
    public let canonical: String

    init(_ record: AuditRecord) {
        let e = record.event
        self.sequence = String(record.sequence)
        self.code = e.code.rawValue
        self.actor = e.actor
        self.subject = e.subject
        self.outcome = e.outcome.rawValue
        self.reason = e.reason
        self.requestId = e.requestID
        self.sourceAddress = e.sourceAddress
        self.time = CanonicalEntry.timestamp(e.time)
        self.details = e.details.keys.sorted().map { Detail(key: $0, value: e.details[$0]!) }
        self.canonical = String(decoding: CanonicalEntry.encode(sequence: record.sequence, event: e), as: UTF8.self)
    }
}

/// A page of audit events. `endCursor` is the last sequence number examined: pass it as
/// `after` for the next page. `hasNextPage` is false once the end of the log was reached.
public struct AuditEventPage: Codable, Sendable {
    public let events: [AuditEventNode]
    public let endCursor: String?
    public let hasNextPage: Bool
}

struct AuditEventsArguments: Codable, Sendable {
    let first: Int?
    let after: String?
    let code: String?
    let actor: String?
}

/// The `auditEvents` query: filtered, cursor-paginated reads of the audit log. Bounded: at most
/// `maxPage` events returned and `maxScan` entries examined per request, so a filter that
/// matches nothing cannot make one request read the whole log.
enum AuditEventsQuery {
    static let maxPage = 500
    static let maxScan = 10_000

    static func run(_ arguments: AuditEventsArguments, log: AuditLog) async throws -> AuditEventPage {
        let first = arguments.first ?? 50
        guard (1...Self.maxPage).contains(first) else {
            throw GraphQLError(message: "first must be 1 to \(Self.maxPage)", extensions: ["code": .string("BAD_USER_INPUT")])
        }
        var cursor: Int64 = 0
        if let after = arguments.after {
            guard after.utf8.count <= 19, after.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(after) else {
                throw GraphQLError(message: "after must be a cursor returned as endCursor", extensions: ["code": .string("BAD_USER_INPUT")])
            }
            cursor = value
        }
        if let code = arguments.code, AuditCode(rawValue: code) == nil {
            throw GraphQLError(message: "unknown event code", extensions: ["code": .string("BAD_USER_INPUT")])
        }
        var events: [AuditEventNode] = []
        var scanned = 0
        var reachedEnd = false
        while events.count < first && scanned < Self.maxScan {
            let page = try await log.records(after: cursor, limit: min(500, Self.maxScan - scanned))
            guard !page.isEmpty else {
                reachedEnd = true
                break
            }
            for record in page {
                scanned += 1
                cursor = record.sequence
                if (arguments.code == nil || record.event.code.rawValue == arguments.code)
                    && (arguments.actor == nil || record.event.actor == arguments.actor)
                {
                    events.append(AuditEventNode(record))
                    if events.count == first { break }
                }
            }
        }
        if !reachedEnd {
            reachedEnd = try await log.records(after: cursor, limit: 1).isEmpty
        }
        return AuditEventPage(events: events, endCursor: scanned > 0 || arguments.after != nil ? String(cursor) : nil, hasNextPage: !reachedEnd)
    }
}
