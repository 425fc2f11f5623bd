public import GatehouseCore
public import Hummingbird
public import Logging

/// Turns whatever a route throws into its answer, in one place: a ``CodedError`` becomes its
/// status, code and message (and `Retry-After` or `WWW-Authenticate` when it carries them);
/// Hummingbird's own errors (an unknown path, a wrong method) pass through for the layers that
/// render them; anything else is logged and answered 503, "try again". A server-side failure's
/// own words (5xx) are logged, never sent. Routes throw; none catches to translate.
public struct CodedErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    /// Whether a server-side failure's own words reach the caller: only on the admin socket.
    let revealServerErrors: Bool

    public init(logger: Logger = Logger(label: "gatehouse.http"), revealServerErrors: Bool = false) {
        self.logger = logger
        self.revealServerErrors = revealServerErrors
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any CodedError {
            if error.httpStatus >= 500 {
                // The caller hears "try again"; the words go to the log.
                self.logger.error(
                    "request failed",
                    metadata: ["path": "\(request.uri.path)", "code": "\(error.stableCode)", "error": "\(error.message.prefix(500))"])
            }
            return JSONResponse.error(error, revealing: self.revealServerErrors)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            self.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error).prefix(500))"])
            return JSONResponse.error(GatehouseError(.storeFailure, JSONResponse.unavailable))
        }
    }
}
