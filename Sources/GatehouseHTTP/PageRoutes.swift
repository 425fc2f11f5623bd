import Foundation
import GatehouseCore
import GatehouseServices
import GatehouseWebAuthn
import Hummingbird
import Mustache

/// The server-rendered pages: enroll, sign in, account, and an error page. Each sets a CSP that
/// allows only this origin's own script and stylesheet.
enum PageRoutes {
    static let csp =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in [
            ("layout", PageTemplates.layout), ("enroll", PageTemplates.enroll), ("signin", PageTemplates.signIn),
            ("account", PageTemplates.account), ("error", PageTemplates.error),
            ("notice", PageTemplates.notice), ("consent", PageTemplates.consent), ("device-entry", PageTemplates.deviceEntry),
            ("device-confirm", PageTemplates.deviceConfirm), ("logout-confirm", PageTemplates.logoutConfirm), ("denied", PageTemplates.denied),
        ] {
            try library.register(text, named: name)
        }
        return library
    }

    /// The templates, compiled once for the routes outside this file (the proxy's refusal page).
    /// They are constants checked by the page tests, so a failure here is a programming error.
    static let shared: MustacheLibrary = {
        do { return try Self.library() } catch { fatalError("the page templates do not compile: \(error)") }
    }()

    /// Renders `template` inside the layout. Mustache escapes every `{{value}}`; only the
    /// layout's `{{{body}}}` (our own rendered template) is inserted raw.
    /// `formTargets`: origins a form on this page may end up at through a redirect (the
    /// client's redirect URI after consent), which CSP `form-action` must allow as well.
    static func render(
        _ library: MustacheLibrary, _ template: String, title: String, _ values: [String: any Sendable], status: HTTPResponse.Status,
        formTargets: [String] = []
    ) -> Response {
        let body = library.render(values, withTemplate: template) ?? ""
        let html = library.render(["title": title, "body": body], withTemplate: "layout") ?? ""
        var response = JSONResponse.raw(status, Array(html.utf8), contentType: "text/html; charset=utf-8")
        let extra = formTargets.compactMap(Self.origin).map { " " + $0 }.joined()
        response.headers[.init("Content-Security-Policy")!] =
            extra.isEmpty ? Self.csp : Self.csp.replacingOccurrences(of: "form-action 'self'", with: "form-action 'self'" + extra)
        return response
    }

    /// `scheme://host[:port]` of an http(s) URL, or nil (so nothing odd reaches the header).
    static func origin(_ url: String) -> String? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = c.host?.lowercased(),
            !host.isEmpty,
            host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "'") })
        else { return nil }
        return "\(scheme)://\(host)" + (c.port.map { ":\($0)" } ?? "")
    }

    /// `membership`: the groups and roles the policy gives a user, for their account page.
    static func add(
        to router: Router<GatehouseRequestContext>, passkeys: PasskeyService, secure: Bool, publicURL: String,
        membership: @escaping @Sendable (String) -> (groups: [String], roles: [String])
    ) throws {
        let library = try Self.library()
        @Sendable func page(_ template: String, title: String, _ values: [String: any Sendable], status: HTTPResponse.Status = .ok) -> Response {
            Self.render(library, template, title: title, values, status: status)
        }
        @Sendable func day(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle().year().month().day()) }

        router.get("/assets/gatehouse.js") { _, _ in
            var r = JSONResponse.raw(.ok, Array(PageAssets.script.utf8), contentType: "text/javascript; charset=utf-8")
            r.headers[.cacheControl] = "no-cache"
            return r
        }
        router.get("/assets/gatehouse.css") { _, _ in
            var r = JSONResponse.raw(.ok, Array(PageAssets.stylesheet.utf8), contentType: "text/css; charset=utf-8")
            r.headers[.cacheControl] = "no-cache"
            return r
        }
        // The front door: your account, or sign-in first.
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/account"]) }
        router.get("/enroll") { _, _ in page("enroll", title: "Create your passkey", [:]) }
        router.get("/signin") { _, _ in page("signin", title: "Sign in", [:]) }
        router.get("/account") { request, _ in
            do {
                guard let token = WebAuthnRoutes.cookie(request, secure: secure),
                    let (user, current) = try await passkeys.authenticate(sessionToken: token)
                else {
                    return Response(status: .seeOther, headers: [.location: "/signin"])
                }
                let stored = try await passkeys.passkeys(of: user)
                let keys = stored.map { k -> [String: any Sendable] in
                    // Its owner's name, else its model's, else what it is.
                    let model = AuthenticatorModels.name(aaguid: k.aaguid)
                    var v: [String: any Sendable] = [
                        "id": Base64URL.encode(k.id), "created": day(k.createdAt), "backedUp": k.backedUp,
                        "name": k.name ?? model ?? "Passkey (\(COSEKey.Algorithm(rawValue: k.algorithm)?.name ?? "unknown"))",
                        "removable": stored.count > 1,
                    ]
                    if k.name != nil, let model { v["model"] = model }
                    if let used = k.lastUsedAt { v["lastUsed"] = day(used) }
                    return v
                }
                let sessions = try await passkeys.liveSessions(of: user).map { s -> [String: any Sendable] in
                    var v: [String: any Sendable] = [
                        "id": PasskeyService.sessionID(s), "created": day(s.createdAt), "lastSeen": day(s.lastSeenAt),
                        "current": s.tokenHash == current.tokenHash, "browser": s.userAgent ?? "A browser",
                    ]
                    if let address = s.sourceAddress { v["address"] = address }
                    return v
                }
                let (groups, roles) = membership(user.username.rawValue)
                let named = groups.map { "group \($0)" } + roles.map { "role \($0)" }
                var values: [String: any Sendable] = [
                    "username": user.username.rawValue, "passkeys": keys, "sessions": sessions, "publicURL": publicURL,
                    "administrator": user.role == .admin, "onlyOne": stored.count == 1,
                ]
                if !named.isEmpty { values["membership"] = named.joined(separator: ", ") }
                return page("account", title: user.username.rawValue, values)
            } catch {
                return page(
                    "error", title: "Unavailable",
                    ["heading": "Something went wrong", "message": "Your account cannot be shown right now. Try again in a moment."],
                    status: .serviceUnavailable)
            }
        }
    }
}
