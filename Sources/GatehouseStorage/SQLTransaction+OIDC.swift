import Foundation
import GatehouseCore
import GatehouseOIDC
import GatehouseServices
import SQLKit

/// The OpenID Connect queries of ``SQLTransaction`` (migration 5). Lists of strings are stored
/// newline-separated; client keys as a JWK Set in JSON.
extension SQLTransaction {
    private static let clientColumns = "id, name, kind, redirect_uris, post_logout_redirect_uris, secret_hash, jwks, first_party, created_at"

    func oidcClient(id: String) async throws -> OIDCClient? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.clientColumns) FROM oidc_clients WHERE id = \(bind: id)").all().first.map(Self.client)
    }

    func oidcClients() async throws -> [OIDCClient] {
        try await self.db.raw("SELECT \(unsafeRaw: Self.clientColumns) FROM oidc_clients ORDER BY id").all().map(Self.client)
    }

    private static func lines(_ text: String) -> [String] { text.isEmpty ? [] : text.split(separator: "\n").map(String.init) }

    private static func client(_ row: any SQLRow) throws -> OIDCClient {
        guard let kind = OIDCClient.Kind(rawValue: try row.decode(column: "kind", as: String.self)),
            let jwks = try? JSONDecoder().decode(JWKSet.self, from: Data(try row.decode(column: "jwks", as: String.self).utf8))
        else {
            throw GatehouseError(.storeFailure, "stored OIDC client is malformed")
        }
        return OIDCClient(
            id: try row.decode(column: "id", as: String.self), name: try row.decode(column: "name", as: String.self), kind: kind,
            redirectURIs: Self.lines(try row.decode(column: "redirect_uris", as: String.self)),
            postLogoutRedirectURIs: Self.lines(try row.decode(column: "post_logout_redirect_uris", as: String.self)),
            secretHash: try row.decode(column: "secret_hash", as: String?.self), jwks: jwks.keys,
            firstParty: try row.decode(column: "first_party", as: Bool.self), source: .registered,
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self))
        )
    }

    func insertOIDCClient(_ c: OIDCClient) async throws {
        let jwks = String(decoding: OIDCJSON.encode(JWKSet(keys: c.jwks)), as: UTF8.self)
        let rows = try await self.db.raw(
            """
            INSERT INTO oidc_clients (\(unsafeRaw: Self.clientColumns))
            VALUES (\(bind: c.id), \(bind: c.name), \(bind: c.kind.rawValue), \(bind: c.redirectURIs.joined(separator: "\n")),
                    \(bind: c.postLogoutRedirectURIs.joined(separator: "\n")), \(bind: c.secretHash), \(bind: jwks), \(bind: c.firstParty),
                    \(bind: Self.millis(c.createdAt)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "client \(c.id) already exists") }
    }

    func deleteOIDCClient(id: String) async throws -> Bool {
        !(try await self.db.raw("DELETE FROM oidc_clients WHERE id = \(bind: id) RETURNING id").all().isEmpty)
    }

    // MARK: signing keys

    func oidcSigningKeys() async throws -> [OIDCSigningKeyRecord] {
        let rows = try await self.db.raw(
            """
            SELECT kid, algorithm, public_key, sealed_private_key, created_at, retire_at FROM oidc_signing_keys ORDER BY created_at, kid
            """
        ).all()
        return try rows.map { row in
            guard let algorithm = KeyAlgorithm(rawValue: try row.decode(column: "algorithm", as: String.self)),
                let publicKey = Base64URL.decode(try row.decode(column: "public_key", as: String.self)),
                let sealed = Base64URL.decode(try row.decode(column: "sealed_private_key", as: String.self))
            else {
                throw GatehouseError(.keyMaterialCorrupted, "a stored token-signing key is malformed")
            }
            return OIDCSigningKeyRecord(
                kid: try row.decode(column: "kid", as: String.self), algorithm: algorithm, publicKey: publicKey, sealedPrivateKey: sealed,
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                retireAt: try row.decode(column: "retire_at", as: Int64?.self).map(Self.date)
            )
        }
    }

    func insertOIDCSigningKey(_ r: OIDCSigningKeyRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO oidc_signing_keys (kid, algorithm, public_key, sealed_private_key, created_at, retire_at)
            VALUES (\(bind: r.kid), \(bind: r.algorithm.rawValue), \(bind: Base64URL.encode(r.publicKey)), \(bind: Base64URL.encode(r.sealedPrivateKey)),
                    \(bind: Self.millis(r.createdAt)), \(bind: r.retireAt.map(Self.millis)))
            ON CONFLICT DO NOTHING RETURNING kid
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "signing key \(r.kid) already exists") }
    }

    func retireOIDCSigningKeys(keeping kid: String, at time: Date) async throws {
        try await self.db.raw(
            """
            UPDATE oidc_signing_keys SET retire_at = \(bind: Self.millis(time)) WHERE kid <> \(bind: kid) AND retire_at IS NULL
            """
        ).run()
    }

    // MARK: grants and tokens

    private static let grantColumns =
        "id, user_id, client_id, scope, nonce, auth_time, amr, acr, session_hash, created_at, expires_at, revoked_at, revoked_reason"

    func oidcGrant(id: String) async throws -> OIDCGrantRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.grantColumns) FROM oidc_grants WHERE id = \(bind: id)").all().first.map(Self.grant)
    }

    private static func grant(_ row: any SQLRow) throws -> OIDCGrantRecord {
        OIDCGrantRecord(
            id: try row.decode(column: "id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            clientID: try row.decode(column: "client_id", as: String.self), scope: try row.decode(column: "scope", as: String.self),
            nonce: try row.decode(column: "nonce", as: String?.self), authTime: Self.date(try row.decode(column: "auth_time", as: Int64.self)),
            amr: try row.decode(column: "amr", as: String.self).split(separator: " ").map(String.init),
            acr: try row.decode(column: "acr", as: String.self),
            sessionHash: try row.decode(column: "session_hash", as: String?.self),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "expires_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Self.date),
            revokedReason: try row.decode(column: "revoked_reason", as: String?.self)
        )
    }

    func insertOIDCGrant(_ g: OIDCGrantRecord) async throws {
        try await self.db.raw(
            """
            INSERT INTO oidc_grants (\(unsafeRaw: Self.grantColumns))
            VALUES (\(bind: g.id), \(bind: g.userID), \(bind: g.clientID), \(bind: g.scope), \(bind: g.nonce), \(bind: Self.millis(g.authTime)),
                    \(bind: g.amr.joined(separator: " ")), \(bind: g.acr), \(bind: g.sessionHash), \(bind: Self.millis(g.createdAt)),
                    \(bind: Self.millis(g.expiresAt)), \(bind: g.revokedAt.map(Self.millis)), \(bind: g.revokedReason))
            """
        ).run()
    }

    func revokeOIDCGrant(id: String, reason: String, at time: Date) async throws -> Bool {
        try await self.revokeGrants(reason: reason, at: time, "id = \(bind: id)") == 1
    }

    func revokeOIDCGrants(userID: String, reason: String, at time: Date) async throws -> Int {
        try await self.revokeGrants(reason: reason, at: time, "user_id = \(bind: userID)")
    }

    func revokeOIDCGrants(sessionHash: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String]) {
        let revoked = try await self.revokeGrants(reason: reason, at: time, "session_hash = \(bind: sessionHash)")
        let all = try await self.db.raw("SELECT id FROM oidc_grants WHERE session_hash = \(bind: sessionHash) ORDER BY id").all()
            .map { try $0.decode(column: "id", as: String.self) }
        return (revoked, all)
    }

    func revokeOIDCGrants(clientID: String, reason: String, at time: Date) async throws -> (revoked: Int, all: [String]) {
        let revoked = try await self.revokeGrants(reason: reason, at: time, "client_id = \(bind: clientID)")
        let all = try await self.db.raw("SELECT id FROM oidc_grants WHERE client_id = \(bind: clientID) ORDER BY id").all()
            .map { try $0.decode(column: "id", as: String.self) }
        return (revoked, all)
    }

    private func revokeGrants(reason: String, at time: Date, _ condition: SQLQueryString) async throws -> Int {
        var query: SQLQueryString =
            "UPDATE oidc_grants SET revoked_at = \(bind: Self.millis(time)), revoked_reason = \(bind: reason) WHERE revoked_at IS NULL AND "
        query.appendInterpolation(condition)
        query.appendLiteral(" RETURNING id")
        return try await self.db.raw(query).all().count
    }

    private static let tokenColumns = "hash, kind, grant_id, created_at, expires_at, used_at, revoked_at, redirect_uri, code_challenge, scope"

    /// One query for the token, its grant and the grant's user (introspection and every
    /// exchange read it), columns prefixed per table.
    func oidcToken(hash: String) async throws -> OIDCTokenView? {
        guard
            let row = try await self.db.raw(
                """
                SELECT t.kind AS t_kind, t.grant_id AS t_grant_id, t.created_at AS t_created_at, t.expires_at AS t_expires_at, t.used_at AS t_used_at,
                       t.revoked_at AS t_revoked_at, t.redirect_uri AS t_redirect_uri, t.code_challenge AS t_code_challenge, t.scope AS t_scope,
                       g.user_id AS g_user_id, g.client_id AS g_client_id, g.scope AS g_scope, g.nonce AS g_nonce, g.auth_time AS g_auth_time, g.amr AS g_amr,
                       g.acr AS g_acr, g.session_hash AS g_session_hash, g.created_at AS g_created_at, g.expires_at AS g_expires_at,
                       g.revoked_at AS g_revoked_at, g.revoked_reason AS g_revoked_reason,
                       u.username AS u_username, u.email AS u_email, u.role AS u_role, u.status AS u_status, u.created_at AS u_created_at
                FROM oidc_tokens t JOIN oidc_grants g ON g.id = t.grant_id JOIN users u ON u.id = g.user_id
                WHERE t.hash = \(bind: hash)
                """
            ).all().first
        else { return nil }
        guard let kind = OIDCTokenKind(rawValue: try row.decode(column: "t_kind", as: String.self)),
            let status = User.Status(rawValue: try row.decode(column: "u_status", as: String.self))
        else {
            throw GatehouseError(.storeFailure, "stored token has an unknown kind or user status")
        }
        let grantID = try row.decode(column: "t_grant_id", as: String.self)
        let userID = try row.decode(column: "g_user_id", as: String.self)
        let token = OIDCTokenRecord(
            hash: hash, kind: kind, grantID: grantID,
            createdAt: Self.date(try row.decode(column: "t_created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "t_expires_at", as: Int64.self)),
            usedAt: try row.decode(column: "t_used_at", as: Int64?.self).map(Self.date),
            revokedAt: try row.decode(column: "t_revoked_at", as: Int64?.self).map(Self.date),
            redirectURI: try row.decode(column: "t_redirect_uri", as: String?.self),
            codeChallenge: try row.decode(column: "t_code_challenge", as: String?.self),
            scope: try row.decode(column: "t_scope", as: String?.self)
        )
        let grant = OIDCGrantRecord(
            id: grantID, userID: userID, clientID: try row.decode(column: "g_client_id", as: String.self),
            scope: try row.decode(column: "g_scope", as: String.self),
            nonce: try row.decode(column: "g_nonce", as: String?.self), authTime: Self.date(try row.decode(column: "g_auth_time", as: Int64.self)),
            amr: try row.decode(column: "g_amr", as: String.self).split(separator: " ").map(String.init),
            acr: try row.decode(column: "g_acr", as: String.self),
            sessionHash: try row.decode(column: "g_session_hash", as: String?.self),
            createdAt: Self.date(try row.decode(column: "g_created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "g_expires_at", as: Int64.self)),
            revokedAt: try row.decode(column: "g_revoked_at", as: Int64?.self).map(Self.date),
            revokedReason: try row.decode(column: "g_revoked_reason", as: String?.self)
        )
        let user = User(
            id: userID, username: Username(uncheckedStored: try row.decode(column: "u_username", as: String.self)),
            email: try row.decode(column: "u_email", as: String?.self).map(EmailAddress.init(uncheckedStored:)),
            role: RoleName(uncheckedStored: try row.decode(column: "u_role", as: String.self)), status: status,
            createdAt: Self.date(try row.decode(column: "u_created_at", as: Int64.self))
        )
        return OIDCTokenView(token: token, grant: grant, user: user)
    }

    func insertOIDCToken(_ t: OIDCTokenRecord) async throws {
        try await self.db.raw(
            """
            INSERT INTO oidc_tokens (\(unsafeRaw: Self.tokenColumns))
            VALUES (\(bind: t.hash), \(bind: t.kind.rawValue), \(bind: t.grantID), \(bind: Self.millis(t.createdAt)), \(bind: Self.millis(t.expiresAt)),
                    \(bind: t.usedAt.map(Self.millis)), \(bind: t.revokedAt.map(Self.millis)), \(bind: t.redirectURI), \(bind: t.codeChallenge), \(bind: t.scope))
            """
        ).run()
    }

    func insertOIDCTokens(_ records: [OIDCTokenRecord]) async throws {
        guard !records.isEmpty else { return }
        var query: SQLQueryString = "INSERT INTO oidc_tokens (\(unsafeRaw: Self.tokenColumns)) VALUES "
        for (i, t) in records.enumerated() {
            if i > 0 { query.appendLiteral(", ") }
            query.appendInterpolation(
                """
                (\(bind: t.hash), \(bind: t.kind.rawValue), \(bind: t.grantID), \(bind: Self.millis(t.createdAt)), \(bind: Self.millis(t.expiresAt)),
                 \(bind: t.usedAt.map(Self.millis)), \(bind: t.revokedAt.map(Self.millis)), \(bind: t.redirectURI), \(bind: t.codeChallenge), \(bind: t.scope))
                """ as SQLQueryString)
        }
        try await self.db.raw(query).run()
    }

    func consumeOIDCToken(hash: String, at time: Date) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE oidc_tokens SET used_at = \(bind: Self.millis(time)) WHERE hash = \(bind: hash) AND used_at IS NULL RETURNING hash
            """
        ).all().isEmpty)
    }

    func revokeOIDCToken(hash: String, at time: Date) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE oidc_tokens SET revoked_at = \(bind: Self.millis(time)) WHERE hash = \(bind: hash) AND revoked_at IS NULL RETURNING hash
            """
        ).all().isEmpty)
    }

    // MARK: consent and device authorizations

    func oidcConsent(userID: String, clientID: String) async throws -> String? {
        try await self.db.raw("SELECT scope FROM oidc_consents WHERE user_id = \(bind: userID) AND client_id = \(bind: clientID)").all()
            .first?.decode(column: "scope", as: String.self)
    }

    func saveOIDCConsent(userID: String, clientID: String, scope: String, at time: Date) async throws {
        try await self.db.raw(
            """
            INSERT INTO oidc_consents (user_id, client_id, scope, updated_at) VALUES (\(bind: userID), \(bind: clientID), \(bind: scope), \(bind: Self.millis(time)))
            ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at
            """
        ).run()
    }

    private static let deviceColumns =
        "device_code_hash, user_code, client_id, scope, created_at, expires_at, interval_s, last_polled_at, status, grant_id, source_address"

    func deviceAuthorization(deviceCodeHash: String) async throws -> DeviceAuthorizationRecord? {
        try await self.db.raw(
            "SELECT \(unsafeRaw: Self.deviceColumns) FROM oidc_device_authorizations WHERE device_code_hash = \(bind: deviceCodeHash)"
        )
        .all().first.map(Self.device)
    }

    func deviceAuthorization(userCode: String) async throws -> DeviceAuthorizationRecord? {
        try await self.db.raw("SELECT \(unsafeRaw: Self.deviceColumns) FROM oidc_device_authorizations WHERE user_code = \(bind: userCode)")
            .all().first.map(Self.device)
    }

    private static func device(_ row: any SQLRow) throws -> DeviceAuthorizationRecord {
        guard let status = DeviceAuthorizationRecord.Status(rawValue: try row.decode(column: "status", as: String.self)) else {
            throw GatehouseError(.storeFailure, "stored device authorization has an unknown status")
        }
        return DeviceAuthorizationRecord(
            deviceCodeHash: try row.decode(column: "device_code_hash", as: String.self),
            userCode: try row.decode(column: "user_code", as: String.self),
            clientID: try row.decode(column: "client_id", as: String.self), scope: try row.decode(column: "scope", as: String.self),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: Self.date(try row.decode(column: "expires_at", as: Int64.self)),
            interval: Int(try row.decode(column: "interval_s", as: Int64.self)),
            lastPolledAt: try row.decode(column: "last_polled_at", as: Int64?.self).map(Self.date), status: status,
            grantID: try row.decode(column: "grant_id", as: String?.self), sourceAddress: try row.decode(column: "source_address", as: String?.self)
        )
    }

    func insertDeviceAuthorization(_ r: DeviceAuthorizationRecord) async throws {
        let rows = try await self.db.raw(
            """
            INSERT INTO oidc_device_authorizations (\(unsafeRaw: Self.deviceColumns))
            VALUES (\(bind: r.deviceCodeHash), \(bind: r.userCode), \(bind: r.clientID), \(bind: r.scope), \(bind: Self.millis(r.createdAt)),
                    \(bind: Self.millis(r.expiresAt)), \(bind: Int64(r.interval)), \(bind: r.lastPolledAt.map(Self.millis)), \(bind: r.status.rawValue),
                    \(bind: r.grantID), \(bind: r.sourceAddress))
            ON CONFLICT DO NOTHING RETURNING device_code_hash
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.conflict, "device code exists") }
    }

    func consumeDeviceAuthorization(deviceCodeHash: String) async throws -> Bool {
        !(try await self.db.raw(
            """
            UPDATE oidc_device_authorizations SET status = 'used' WHERE device_code_hash = \(bind: deviceCodeHash) AND status = 'approved' RETURNING device_code_hash
            """
        ).all().isEmpty)
    }

    func updateDeviceAuthorization(_ r: DeviceAuthorizationRecord) async throws {
        let rows = try await self.db.raw(
            """
            UPDATE oidc_device_authorizations SET interval_s = \(bind: Int64(r.interval)), last_polled_at = \(bind: r.lastPolledAt.map(Self.millis)),
                status = \(bind: r.status.rawValue), grant_id = \(bind: r.grantID)
            WHERE device_code_hash = \(bind: r.deviceCodeHash) RETURNING device_code_hash
            """
        ).all()
        guard !rows.isEmpty else { throw GatehouseError(.notFound, "no such device authorization") }
    }
}
