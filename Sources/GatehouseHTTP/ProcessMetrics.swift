import Foundation

/// Process metrics in Prometheus text format, read from `/proc/self` at scrape time
/// (the standard `process_*` names, so existing dashboards work).
enum ProcessMetrics {
    static func render() -> String {
        var out = ""
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let vsize = Double(fields[0]), let rss = Double(fields[1]) {
                out += Self.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss * pageSize)
                out += Self.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize * pageSize)
            }
        }
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name; utime and stime are fields 14 and 15, starttime 22.
            let rest = stat[stat.index(after: close)...].split(separator: " ")
            if rest.count > 20, let utime = Double(rest[11]), let stime = Double(rest[12]), let start = Double(rest[19]) {
                out += "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                out += "# TYPE process_cpu_seconds_total counter\n"
                out += "process_cpu_seconds_total \((utime + stime) / ticks)\n"
                if let boot = Self.bootTime() {
                    out += Self.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", boot + start / ticks)
                }
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            out += Self.gauge("process_open_fds", "Number of open file descriptors.", Double(fds.count))
        }
        return out
    }

    private static func gauge(_ name: String, _ help: String, _ value: Double) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
    }

    private static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }
}
