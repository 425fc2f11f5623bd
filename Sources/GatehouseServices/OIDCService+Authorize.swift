public import Foundation
public import GatehouseCore
public import GatehouseOIDC
import GatehousePolicy

/// The browser side of the provider: the authorization endpoint, the consent page and the
/// device-code approval page. Each returns what the route must do; nothing here speaks HTTP.
extension OIDCService {
    /// The browser's signed-in user and session, as the route found them from the cookie.
    public struct SignedIn: Sendable {
        public let user: User
        public let session: SessionRecord
        public init(user: User, session: SessionRecord) {
            self.user = user
            self.session = session
        }
    }

    public struct ConsentPrompt: Sendable, Equatable {
        public let clientID: String
        public let clientName: String
        public let scopes: [String]
        /// The authorization request's query, to post back with the answer.
        public let query: String
    }

    public enum AuthorizationOutcome: Sendable, Equatable {
        /// Show this error on a page; never redirect (unknown client or redirect URI).
        case show(OAuthError)
        /// Redirect the browser to the client (with a code, or an error).
        case redirect(String)
        /// Send the browser to sign in, then back to `returnTo` (a path on this server).
        case signIn(returnTo: String)
        case consent(ConsentPrompt)
        /// The policy refuses this user the client: a page says so (audited).
        case denied(clientName: String, reason: String)
    }

    public func authorize(query: String, signedIn: SignedIn?, requestID: String? = nil, sourceAddress: String? = nil, source: UInt128? = nil)
        async throws -> AuthorizationOutcome
    {
        let params: FormParameters
        let client: OIDCClient
        var request: AuthorizationRequest
        switch try await self.parse(query) {
        case .refused(let outcome): return outcome
        case .valid(let p, let r, let c): (params, request, client) = (p, r, c)
        }
        let now = self.environment.time.now()
        request.loginAfter = LoginAfter.verify(request.loginAfterToken, key: self.loginAfterKey, now: now)
        var denial: PolicyDenial? = nil
        var consentGiven = false
        if let signedIn {
            denial = self.policyDenial(user: signedIn.user, clientID: client.id, sourceAddress: source, lastStepUp: signedIn.session.steppedUpAt)
            if !client.firstParty {
                // Consent exists (even for no scopes at all) and covers every scope asked for.
                let userID = signedIn.user.id
                let clientID = client.id
                let consent = try await self.environment.store.read { tx in try await tx.oidcConsent(userID: userID, clientID: clientID) }
                if let stored = consent {
                    let approved = Set(stored.split(separator: " ").map(String.init))
                    consentGiven = request.scopes.allSatisfy { approved.contains($0.rawValue) }
                }
            }
        }
        var step = AuthorizationStep.decide(
            request, session: signedIn.map { .init(authTime: $0.session.steppedUpAt) }, policyDenial: denial?.description,
            consentGiven: consentGiven, firstParty: client.firstParty, now: now
        )
        // An app rule with `step_up`: a fresh passkey sign-in satisfies it.
        if case .denied = step, case .stepUpRequired = denial?.reason {
            step =
                request.prompt.contains(.none)
                ? .error(OAuthError(.interactionRequired, "this app needs a fresh passkey check"))
                : .signIn(loginAfter: Int(now.timeIntervalSince1970))
            if request.loginAfter != nil {
                step = .denied(reason: denial!.description)  // they just signed in and it still is not enough
            }
        }
        switch step {
        case .signIn(let loginAfter):
            var values = params.values
            if let loginAfter { values["login_after"] = LoginAfter.encode(loginAfter, key: self.loginAfterKey) }
            return .signIn(returnTo: "/oauth2/authorize?" + FormParameters.encode(values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        case .error(let e):
            return .redirect(AuthorizationRequest.errorRedirect(e, redirectURI: request.redirectURI, state: request.state, issuer: self.issuer))
        case .denied(let reason):
            let user = signedIn!.user
            try await self.environment.store.commit { _ in
                Change(
                    (),
                    event: AuditEvent(
                        code: .oidcDenied, time: now, actor: .user(user.username), subject: .client(client.id), outcome: .denied,
                        reason: reason, requestID: requestID, sourceAddress: sourceAddress))
            }
            return .denied(clientName: client.name, reason: reason)
        case .consent:
            return .consent(
                ConsentPrompt(
                    clientID: client.id, clientName: client.name, scopes: Scope.format(request.scopes).split(separator: " ").map(String.init),
                    query: query))
        case .issueCode:
            return .redirect(
                try await self.issueCode(request, client: client, signedIn: signedIn!, requestID: requestID, sourceAddress: sourceAddress))
        }
    }

    /// A query parsed and validated against its client, or what to answer instead.
    enum ParsedRequest {
        case valid(FormParameters, AuthorizationRequest, OIDCClient)
        case refused(AuthorizationOutcome)
    }

    func parse(_ query: String) async throws -> ParsedRequest {
        let params: FormParameters
        do { params = try FormParameters(parsing: query) } catch { return .refused(.show(error)) }
        let client = try await params.nonEmpty("client_id").asyncFlatMap { try await self.client(id: $0) }
        do {
            let request = try AuthorizationRequest.validate(params, client: client)
            guard let client else { return .refused(.show(OAuthError(.invalidClient, "unknown client"))) }
            do {
                try self.checkGatehouseScopes(request.scopes, clientID: client.id)
            } catch {
                return .refused(
                    .redirect(AuthorizationRequest.errorRedirect(error, redirectURI: request.redirectURI, state: request.state, issuer: self.issuer)))
            }
            return .valid(params, request, client)
        } catch {
            switch error {
            case .show(let e): return .refused(.show(e))
            case .redirect(let e, let uri, let state):
                return .refused(.redirect(AuthorizationRequest.errorRedirect(e, redirectURI: uri, state: state, issuer: self.issuer)))
            }
        }
    }

    /// The user's answer on the consent page. Approval is remembered for this client and scopes.
    public func consent(
        query: String, approve: Bool, signedIn: SignedIn, requestID: String? = nil, sourceAddress: String? = nil, source: UInt128? = nil
    ) async throws -> AuthorizationOutcome {
        let params: FormParameters
        let request: AuthorizationRequest
        switch try await self.parse(query) {
        case .refused(let outcome): return outcome
        case .valid(let p, let r, _): (params, request) = (p, r)
        }
        guard approve else {
            return .redirect(
                AuthorizationRequest.errorRedirect(
                    OAuthError(.accessDenied, "the user declined"), redirectURI: request.redirectURI, state: request.state, issuer: self.issuer))
        }
        let env = self.environment
        let scope = Scope.format(request.scopes)
        let user = signedIn.user
        try await env.store.commit { tx in
            let now = env.time.now()
            try await tx.saveOIDCConsent(userID: user.id, clientID: request.clientID, scope: scope, at: now)
            return Change(
                (),
                event: AuditEvent(
                    code: .oidcConsentGiven, time: now, actor: .user(user.username), subject: .client(request.clientID),
                    requestID: requestID, sourceAddress: sourceAddress, details: ["scope": scope]))
        }
        // Carry on as the authorization endpoint would, without forcing the consent page again.
        var values = params.values
        if let prompt = values["prompt"] { values["prompt"] = prompt.split(separator: " ").filter { $0 != "consent" }.joined(separator: " ") }
        return try await self.authorize(
            query: FormParameters.encode(values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }), signedIn: signedIn,
            requestID: requestID, sourceAddress: sourceAddress, source: source)
    }

    /// Opens a grant and issues its one-minute, single-use code.
    func issueCode(_ request: AuthorizationRequest, client: OIDCClient, signedIn: SignedIn, requestID: String?, sourceAddress: String?) async throws
        -> String
    {
        let env = self.environment
        let code = OIDCTokenKind.authorizationCode.generate(using: env.random)
        let grantID = Identifier.make(using: env.random)
        let lifetimes = self.lifetimes
        let user = signedIn.user
        let session = signedIn.session
        try await env.store.commit { tx in
            let now = env.time.now()
            guard try await tx.user(id: user.id)?.status == .active, try await tx.session(tokenHash: session.tokenHash)?.isLive(at: now) == true
            else {
                throw GatehouseError(.unauthenticated, "your session ended; sign in again")
            }
            let backedUp = try await tx.credential(id: session.credentialID)?.backedUp ?? true
            let context = IDTokenClaims.authenticationContext(passkeyBackedUp: backedUp)
            let grant = OIDCGrantRecord(
                id: grantID, userID: user.id, clientID: client.id, scope: Scope.format(request.scopes), nonce: request.nonce,
                authTime: session.steppedUpAt, amr: context.amr, acr: context.acr, sessionHash: session.tokenHash,
                createdAt: now, expiresAt: now.addingTimeInterval(lifetimes.grant))
            try await tx.insertOIDCGrant(grant)
            try await tx.insertOIDCToken(
                OIDCTokenRecord(
                    hash: InvitationToken.hash(of: code), kind: .authorizationCode, grantID: grantID, createdAt: now,
                    expiresAt: now.addingTimeInterval(lifetimes.code), redirectURI: request.redirectURI, codeChallenge: request.codeChallenge))
            return Change(
                (),
                event: AuditEvent(
                    code: .oidcAuthorized, time: now, actor: .user(user.username), subject: .client(client.id),
                    requestID: requestID, sourceAddress: sourceAddress, details: ["grant": grantID, "scope": grant.scope]))
        }
        var params: [(String, String)] = [("code", code)]
        if let state = request.state { params.append(("state", state)) }
        params.append(("iss", self.issuer))
        return AuthorizationRequest.redirectURL(request.redirectURI, params)
    }

    // MARK: device authorization (RFC 8628)

    public struct DeviceAuthorization: Sendable, Encodable {
        public let deviceCode: String
        public let userCode: String
        public let verificationURI: String
        public let verificationURIComplete: String
        public let expiresIn: Int
        public let interval: Int

        enum CodingKeys: String, CodingKey {
            case deviceCode = "device_code"
            case userCode = "user_code"
            case verificationURI = "verification_uri"
            case verificationURIComplete = "verification_uri_complete"
            case expiresIn = "expires_in"
            case interval
        }
    }

    /// Starts a device authorization for an authenticated client.
    public func startDeviceAuthorization(client: OIDCClient, scope: String?, sourceAddress: String? = nil) async throws -> DeviceAuthorization {
        let scopes = try Scope.parse(scope)
        try self.checkGatehouseScopes(scopes, clientID: client.id, deviceFlow: true)
        let env = self.environment
        let deviceCode = OIDCTokenKind.deviceCode.generate(using: env.random)
        let lifetimes = self.lifetimes
        for _ in 0..<3 {
            let userCode = UserCode.generate(using: env.random)
            let now = env.time.now()
            let record = DeviceAuthorizationRecord(
                deviceCodeHash: InvitationToken.hash(of: deviceCode), userCode: userCode, clientID: client.id, scope: Scope.format(scopes),
                createdAt: now, expiresAt: now.addingTimeInterval(lifetimes.deviceCode), interval: lifetimes.deviceInterval,
                sourceAddress: sourceAddress)
            do {
                try await env.store.commit { tx in
                    try await tx.insertDeviceAuthorization(record)
                    return Change(
                        (),
                        event: AuditEvent(
                            code: .oidcDeviceStarted, time: now, actor: .client(client.id), subject: .client(client.id),
                            sourceAddress: sourceAddress, details: ["scope": record.scope, "user_code": UserCode.display(userCode)]))
                }
            } catch let error as GatehouseError where error.code == .conflict {
                continue  // a user code collision: draw another
            }
            let uri = self.issuer + "/device"
            return DeviceAuthorization(
                deviceCode: deviceCode, userCode: UserCode.display(userCode), verificationURI: uri,
                verificationURIComplete: uri + "?user_code=" + UserCode.display(userCode), expiresIn: Int(lifetimes.deviceCode),
                interval: lifetimes.deviceInterval)
        }
        throw OAuthError(.temporarilyUnavailable, "could not allocate a user code; try again")
    }

    /// What the device page shows for a typed user code: the client and scopes, or nothing.
    public func pendingDevice(userCode typed: String) async throws -> (record: DeviceAuthorizationRecord, client: OIDCClient)? {
        guard let code = UserCode.normalize(typed) else { return nil }
        let now = self.environment.time.now()
        guard let record = try await self.environment.store.read({ tx in try await tx.deviceAuthorization(userCode: code) }),
            record.status == .pending, now < record.expiresAt, let client = try await self.client(id: record.clientID)
        else { return nil }
        return (record, client)
    }

    public enum DeviceDecision: Sendable, Equatable {
        case approved(clientName: String)
        case declined
        case denied(reason: String)
        case invalidCode
    }

    /// The signed-in user approves or declines a device. The policy decides as for the code flow.
    public func decideDevice(
        userCode typed: String, approve: Bool, signedIn: SignedIn, requestID: String? = nil, sourceAddress: String? = nil, source: UInt128? = nil
    ) async throws -> DeviceDecision {
        guard let (record, client) = try await self.pendingDevice(userCode: typed) else { return .invalidCode }
        let env = self.environment
        let user = signedIn.user
        let session = signedIn.session
        let denial = self.policyDenial(user: user, clientID: client.id, sourceAddress: source, lastStepUp: session.steppedUpAt)
        // The policy may have taken a scope out of the device flow since the code was started.
        do {
            try self.checkGatehouseScopes(try Scope.parse(record.scope), clientID: client.id, deviceFlow: true)
        } catch {
            return .denied(reason: "device sign-in no longer allows what this device asks for (\(error.description)); start again on the device")
        }
        let lifetimes = self.lifetimes
        let grantID = Identifier.make(using: env.random)
        return try await env.store.commit { tx in
            let now = env.time.now()
            guard var current = try await tx.deviceAuthorization(deviceCodeHash: record.deviceCodeHash), current.status == .pending,
                now < current.expiresAt
            else {
                throw GatehouseError(.notFound, "this code has expired or was already used")
            }
            guard approve, denial == nil else {
                current.status = .denied
                try await tx.updateDeviceAuthorization(current)
                let reason = denial?.description ?? "declined by the user"
                return Change(
                    denial == nil ? .declined : .denied(reason: reason),
                    event: AuditEvent(
                        code: .oidcDeviceDenied, time: now, actor: .user(user.username), subject: .client(client.id), outcome: .denied,
                        reason: reason,
                        requestID: requestID, sourceAddress: sourceAddress))
            }
            guard try await tx.user(id: user.id)?.status == .active, try await tx.session(tokenHash: session.tokenHash)?.isLive(at: now) == true
            else {
                throw GatehouseError(.unauthenticated, "your session ended; sign in again")
            }
            let backedUp = try await tx.credential(id: session.credentialID)?.backedUp ?? true
            let context = IDTokenClaims.authenticationContext(passkeyBackedUp: backedUp)
            try await tx.insertOIDCGrant(
                OIDCGrantRecord(
                    id: grantID, userID: user.id, clientID: client.id, scope: current.scope, nonce: nil, authTime: session.steppedUpAt,
                    amr: context.amr, acr: context.acr, sessionHash: session.tokenHash, createdAt: now,
                    expiresAt: now.addingTimeInterval(lifetimes.grant)))
            current.status = .approved
            current.grantID = grantID
            try await tx.updateDeviceAuthorization(current)
            return Change(
                .approved(clientName: client.name),
                event: AuditEvent(
                    code: .oidcDeviceApproved, time: now, actor: .user(user.username), subject: .client(client.id), requestID: requestID,
                    sourceAddress: sourceAddress, details: ["grant": grantID, "scope": current.scope]))
        }
    }
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
