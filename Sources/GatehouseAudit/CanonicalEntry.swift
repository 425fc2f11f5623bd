public import Foundation
public import GatehouseCore

/// The canonical, deterministic encoding of one audit log entry (version 1): the bytes that are
/// hashed into the Merkle tree. Golden tests pin them; they never change for a released version.
///
/// A JSON object with keys in byte order and no whitespace:
/// `{"actor":…,"code":…,"details":{…},"outcome":…,"reason":…,"request_id":…,"seq":N,"source":…,"subject":…,"time":"…","v":1}`.
/// Optional fields that are absent are omitted (never `null`); `details` keys are sorted;
/// `time` is UTC with milliseconds (`2026-11-29T05:00:00.000Z`); strings escape only `"`, `\`
/// and control characters (as `\b \t \n \f \r` or `\u00xx`), everything else is literal UTF-8.
/// The sequence number is inside the entry, so moving an entry changes its hash.
public enum CanonicalEntry {
    public static let version = 1

    public static func encode(sequence: Int64, event: AuditEvent) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        func key(_ name: String, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        key("actor", first: true)
        appendString(event.actor, to: &out)
        key("code")
        appendString(event.code.rawValue, to: &out)
        key("details")
        out.append(contentsOf: CanonicalJSON.object(event.details))
        key("outcome")
        appendString(event.outcome.rawValue, to: &out)
        if let reason = event.reason {
            key("reason")
            appendString(reason, to: &out)
        }
        if let requestID = event.requestID {
            key("request_id")
            appendString(requestID, to: &out)
        }
        key("seq")
        out.append(contentsOf: String(sequence).utf8)
        if let source = event.sourceAddress {
            key("source")
            appendString(source, to: &out)
        }
        key("subject")
        appendString(event.subject, to: &out)
        key("time")
        appendString(Self.timestamp(event.time), to: &out)
        key("v")
        out.append(contentsOf: String(Self.version).utf8)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Whole milliseconds since 1970, rounded to nearest: the precision stores keep. Rounding
    /// (not truncation) makes `Date(ms / 1000)` map back to exactly `ms`, which the
    /// floating-point division does not guarantee under truncation.
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.toNearestOrAwayFromZero))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC, at ``milliseconds(_:)`` precision.
    public static func timestamp(_ date: Date) -> String {
        let millis = Self.milliseconds(date)
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let ms = Int(millis - seconds * 1000)
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(Int64(secondOfDay / 3600), 2)):\(pad(Int64(secondOfDay % 3600 / 60), 2)):\(pad(Int64(secondOfDay % 60), 2)).\(pad(Int64(ms), 3))Z"
    }

    /// Parses what ``timestamp(_:)`` writes; nil for anything else.
    public static func parseTimestamp(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x2E, b[23] == 0x5A else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in range {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
            let mi = number(14..<16), let s = number(17..<19), let ms = number(20..<23),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 60
        else { return nil }
        // Days from civil (inverse of the conversion in timestamp(_:)).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let millis = ((days * 86400 + h * 3600 + mi * 60 + s) * 1000) + ms
        let date = Date(timeIntervalSince1970: Double(millis) / 1000)
        return Self.timestamp(date) == text ? date : nil
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        CanonicalJSON.appendString(text, to: &out)
    }
}
