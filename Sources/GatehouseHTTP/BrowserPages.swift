import Foundation
import GatehouseCore
import Hummingbird
import Mustache

/// What a person's browser gets beyond the routes: a page visited under another host name than
/// the public URL's (say 127.0.0.1 when the relying party is `localhost`, where passkeys cannot
/// work) is sent to the public URL; and an unknown path gets a styled "not found" page instead
/// of an empty 404. Only browser navigations are touched (a GET or HEAD that accepts HTML);
/// API clients keep their answers.
struct BrowserPages<Context: RequestContext>: RouterMiddleware {
    let library: MustacheLibrary
    let publicURL: PublicURL
    /// The pages a person navigates to, which need the relying party's host for passkeys.
    static var pagePaths: Set<String> { ["/", "/signin", "/enroll", "/account", "/device"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let navigation =
            (request.method == .get || request.method == .head)
            && (request.headers[.accept] ?? "").lowercased().contains("text/html")
        if navigation, Self.pagePaths.contains(request.uri.path), let host = Self.host(request.head.authority),
            host != self.publicURL.host.lowercased()
        {
            // The public URL's origin, with the same path and query; never a host from the request.
            let target = self.publicURL.origin + request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return Response(status: .permanentRedirect, headers: [.location: target])
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && navigation {
            return PageRoutes.render(
                self.library, "error", title: "Not found",
                [
                    "heading": "There is no page here",
                    "message": "Check the address, or go to your account page.",
                ], status: .notFound)
        }
    }

    /// The host part of an authority (`host`, `host:port`, `[v6]:port`), lower-cased.
    static func host(_ authority: String?) -> String? {
        guard let authority = authority?.lowercased(), !authority.isEmpty else { return nil }
        if authority.hasPrefix("[") { return authority.split(separator: "]").first.map { String($0) + "]" } }
        return authority.split(separator: ":").first.map(String.init)
    }
}
