public import GatehouseCore

/// Durations in a policy: `90s`, `5m`, `8h`, `7d`, or sums like `1h30m`. Between 1 second and
/// 400 days; zero or negative lifetimes are always mistakes.
public enum PolicyDuration {
    public static func parse(_ text: String) throws(GatehouseError) -> Duration {
        var seconds: Int64 = 0
        var number: Int64? = nil
        var sawUnit = false
        for c in text.utf8 {
            if c >= 0x30 && c <= 0x39 {
                let (n, overflow) = (number ?? 0).multipliedReportingOverflow(by: 10)
                guard !overflow, n < 1_000_000_000 else { throw Self.error(text) }
                number = n + Int64(c - 0x30)
                continue
            }
            guard let n = number else { throw Self.error(text) }
            switch c {
            case UInt8(ascii: "s"): seconds += n
            case UInt8(ascii: "m"): seconds += n * 60
            case UInt8(ascii: "h"): seconds += n * 3600
            case UInt8(ascii: "d"): seconds += n * 86400
            default: throw Self.error(text)
            }
            number = nil
            sawUnit = true
            guard seconds <= 400 * 86400 else { throw GatehouseError(.invalidInput, "'\(text.prefix(64))' is longer than 400 days") }
        }
        guard number == nil, sawUnit, seconds >= 1 else { throw Self.error(text) }
        return .seconds(seconds)
    }

    /// An exact spelling: `8h`, `1h30m`, `45s`, `24h`; whole days from two days up (`7d`).
    public static func format(_ duration: Duration) -> String {
        var rest = duration.components.seconds
        var out = ""
        let units: [(String, Int64)] = rest >= 2 * 86400 ? [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] : [("h", 3600), ("m", 60), ("s", 1)]
        for (unit, size) in units where rest >= size {
            out += "\(rest / size)\(unit)"
            rest %= size
        }
        return out.isEmpty ? "0s" : out
    }

    private static func error(_ text: String) -> GatehouseError {
        GatehouseError(.invalidInput, "'\(text)' is not a duration; write e.g. 30s, 5m, 8h, 7d or 1h30m")
    }
}
