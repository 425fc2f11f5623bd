import Foundation
import GatehouseCore
import GatehouseServices
import SQLKit

/// The X.509 authority and its certificate inventory (migration 8).
extension SQLTransaction {
    private static let authorityColumns =
        "id, trust_domain, algorithm, root_der, intermediate_der, sealed_intermediate_key, root_offline, status, created_at"
    private static let certificateColumns =
        "serial, spiffe_id, dns_names, ip_addresses, key_fingerprint, requester, user_id, authority_id, not_before, not_after, created_at, revoked_at, revocation_reason, grant_id"

    private static func bytes(_ text: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw GatehouseError(.storeFailure, "stored certificate bytes are malformed") }
        return [UInt8](data)
    }

    private static func list(_ text: String) -> [String] { text.isEmpty ? [] : text.split(separator: ",").map(String.init) }

    private static func authority(_ row: any SQLRow) throws -> PKIAuthorityRecord {
        guard let algorithm = KeyAlgorithm(rawValue: try row.decode(column: "algorithm", as: String.self)),
            let status = PKIAuthorityRecord.Status(rawValue: try row.decode(column: "status", as: String.self))
        else {
            throw GatehouseError(.storeFailure, "stored authority record is malformed")
        }
        return PKIAuthorityRecord(
            id: try row.decode(column: "id", as: String.self), trustDomain: try row.decode(column: "trust_domain", as: String.self),
            algorithm: algorithm,
            rootDER: try Self.bytes(try row.decode(column: "root_der", as: String.self)),
            intermediateDER: try Self.bytes(try row.decode(column: "intermediate_der", as: String.self)),
            sealedIntermediateKey: try Self.bytes(try row.decode(column: "sealed_intermediate_key", as: String.self)),
            rootOffline: try row.decode(column: "root_offline", as: Int64.self) != 0, status: status,
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
        )
    }

    private static func certificate(_ row: any SQLRow) throws -> PKICertificateRecord {
        PKICertificateRecord(
            serial: try row.decode(column: "serial", as: String.self), spiffeID: try row.decode(column: "spiffe_id", as: String.self),
            dnsNames: Self.list(try row.decode(column: "dns_names", as: String.self)),
            ipAddresses: Self.list(try row.decode(column: "ip_addresses", as: String.self)),
            keyFingerprint: try row.decode(column: "key_fingerprint", as: String.self),
            requester: try row.decode(column: "requester", as: String.self),
            userID: try row.decode(column: "user_id", as: String?.self), authorityID: try row.decode(column: "authority_id", as: String.self),
            notBefore: Self.date(try row.decode(column: "not_before", as: Int64.self)),
            notAfter: Self.date(try row.decode(column: "not_after", as: Int64.self)),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date),
            revocationReason: try row.decode(column: "revocation_reason", as: String?.self),
            grantID: try row.decode(column: "grant_id", as: String?.self)
        )
    }

    func pkiAuthorities() async throws -> [PKIAuthorityRecord] {
        try await self.db.raw("SELECT \(unsafeRaw: Self.authorityColumns) FROM pki_authorities ORDER BY created_at DESC, id DESC").all().map(
            Self.authority)
    }

    func pkiCertificate(serial: String) async throws -> PKICertificateRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.certificateColumns) FROM pki_certificates WHERE serial = \(bind: serial)").all().first.map(
            Self.certificate)
    }

    func pkiCertificates(liveAt: Date?, limit: Int) async throws -> [PKICertificateRecord] {
        if let liveAt {
            return try await self.db.raw(
                """
                SELECT \(unsafeRaw: Self.certificateColumns) FROM pki_certificates WHERE not_after > \(bind: Self.millis(liveAt))
                ORDER BY created_at DESC, serial DESC LIMIT \(bind: limit)
                """
            ).all().map(Self.certificate)
        }
        return try await self.db.raw(
            "SELECT \(unsafeRaw: Self.certificateColumns) FROM pki_certificates ORDER BY created_at DESC, serial DESC LIMIT \(bind: limit)"
        )
        .all().map(Self.certificate)
    }

    func revokedPKICertificates(authorityID: String, at time: Date) async throws -> [PKICertificateRecord] {
        try await self.db.raw(
            """
            SELECT \(unsafeRaw: Self.certificateColumns) FROM pki_certificates
            WHERE authority_id = \(bind: authorityID) AND revoked_at IS NOT NULL AND not_after > \(bind: Self.millis(time)) ORDER BY serial
            """
        ).all().map(Self.certificate)
    }

    func insertPKIAuthority(_ r: PKIAuthorityRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO pki_authorities (\(unsafeRaw: Self.authorityColumns))
            VALUES (\(bind: r.id), \(bind: r.trustDomain), \(bind: r.algorithm.rawValue), \(bind: Data(r.rootDER).base64EncodedString()),
                    \(bind: Data(r.intermediateDER).base64EncodedString()), \(bind: Data(r.sealedIntermediateKey).base64EncodedString()),
                    \(bind: r.rootOffline ? 1 : 0), \(bind: r.status.rawValue), \(bind: Self.millis(r.createdAt)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "authority \(r.id) exists") }
    }

    func activatePKIAuthority(id: String, rootDER: [UInt8], intermediateDER: [UInt8]) async throws -> Bool {
        try await !self.db.raw(
            """
            UPDATE pki_authorities SET status = 'active', root_der = \(bind: Data(rootDER).base64EncodedString()), intermediate_der = \(bind: Data(intermediateDER).base64EncodedString())
            WHERE id = \(bind: id) AND status = 'pending' RETURNING id
            """
        ).all().isEmpty
    }

    func insertPKICertificate(_ r: PKICertificateRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO pki_certificates (\(unsafeRaw: Self.certificateColumns))
            VALUES (\(bind: r.serial), \(bind: r.spiffeID), \(bind: r.dnsNames.joined(separator: ",")), \(bind: r.ipAddresses.joined(separator: ",")), \(bind: r.keyFingerprint),
                    \(bind: r.requester), \(bind: r.userID), \(bind: r.authorityID), \(bind: Self.millis(r.notBefore)), \(bind: Self.millis(r.notAfter)), \(bind: Self.millis(r.createdAt)),
                    \(bind: r.revokedAt.map(Self.millis)), \(bind: r.revocationReason), \(bind: r.grantID))
            ON CONFLICT DO NOTHING RETURNING serial
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "certificate serial \(r.serial) exists") }
    }

    func revokePKICertificate(serial: String, reason: String, at time: Date) async throws -> Bool {
        try await !self.db.raw(
            """
            UPDATE pki_certificates SET revoked_at = \(bind: Self.millis(time)), revocation_reason = \(bind: reason)
            WHERE serial = \(bind: serial) AND revoked_at IS NULL RETURNING serial
            """
        ).all().isEmpty
    }

    func revokePKICertificates(userID: String?, requester: String?, reason: String, at time: Date) async throws -> Int {
        try await self.db.raw(
            """
            UPDATE pki_certificates SET revoked_at = \(bind: Self.millis(time)), revocation_reason = \(bind: reason)
            WHERE revoked_at IS NULL AND not_after > \(bind: Self.millis(time)) AND (user_id = \(bind: userID) OR requester = \(bind: requester)) RETURNING serial
            """
        ).all().count
    }
}
