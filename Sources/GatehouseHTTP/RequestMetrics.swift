public import Hummingbird
import Prometheus

/// Counts requests and records their latency by route, method and status into a Prometheus
/// registry owned by the server (not the process-global metrics system, so several servers in
/// one test process do not mix their figures). Unmatched paths share one `route` label
/// (`NotFound`, as the router names them) so that scanning cannot blow up the number of series.
public struct RequestMetrics<Context: RequestContext>: RouterMiddleware {
    let registry: PrometheusCollectorRegistry

    static var buckets: [Duration] {
        [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            self.record(route: context.endpointPath, method: request.method.rawValue, status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            self.record(route: context.endpointPath, method: request.method.rawValue, status: status, since: start)
            throw error
        }
    }

    /// Every metric carries HELP and TYPE (`promtool check metrics` passes).
    static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "gatehouse", subsystem: "http", metricName: "requests", unitName: "total",
            helpText: "HTTP requests answered, by route pattern, method and status.")
    }
    static var duration: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "gatehouse", subsystem: "http", metricName: "request_duration", unitName: "seconds",
            helpText: "Time from a request's head to its response, by route pattern, method and status.")
    }

    private func record(route: String?, method: String, status: Int, since start: ContinuousClock.Instant) {
        let labels = [("route", route ?? "unmatched"), ("method", method), ("status", String(status))]
        self.registry.makeCounter(descriptor: Self.requests, labels: labels).increment()
        self.registry.makeDurationHistogram(descriptor: Self.duration, labels: labels, buckets: Self.buckets).record(ContinuousClock.now - start)
    }
}
