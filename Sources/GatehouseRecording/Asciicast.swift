public import Foundation

/// Renders a recording as an asciicast v2 file (what `asciinema play` reads): a header object
/// with the terminal size, start time, duration and Gatehouse's own fields (user, login, host,
/// times, exit status), then one event per line.
public enum Asciicast {
    public static func header(_ header: RecordingHeader, trailer: RecordingTrailer?, sealed: Bool) -> String {
        var gatehouse: [String: Any] = [
            "session": header.session, "user": header.user, "login": header.login, "host": header.host,
            "mode": header.mode, "started": header.started, "sealed": sealed,
        ]
        if let source = header.source { gatehouse["source"] = source }
        if let command = header.command { gatehouse["command"] = command }
        var object: [String: Any] = [
            "version": 2, "width": header.width, "height": header.height, "timestamp": Int(header.started),
            "title": "\(header.user) as \(header.login) on \(header.host)",
        ]
        if let term = header.term { object["env"] = ["TERM": term] }
        if let trailer {
            object["duration"] = max(0, trailer.ended - header.started)
            gatehouse["ended"] = trailer.ended
            gatehouse["bytes_in"] = trailer.bytesIn
            gatehouse["bytes_out"] = trailer.bytesOut
            if let status = trailer.exitStatus { gatehouse["exit_status"] = status }
            if let signal = trailer.exitSignal { gatehouse["exit_signal"] = signal }
            if let by = trailer.endedBy { gatehouse["ended_by"] = by }
        }
        object["gatehouse"] = gatehouse
        // Strings, numbers and booleans only: serialization cannot fail.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    public static func event(_ event: RecordingEvent) -> String {
        var bytes: [UInt8] = Array("[\(RecordingWriter.formatTime(event.time)),\"\(event.kind.rawValue)\",".utf8)
        RecordingWriter.appendJSONString(event.data, to: &bytes)
        bytes.append(0x5D)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A whole recording as asciicast v2 text.
    public static func render(header: RecordingHeader, events: [RecordingEvent], trailer: RecordingTrailer?, sealed: Bool) -> String {
        ([Self.header(header, trailer: trailer, sealed: sealed)] + events.map(Self.event)).joined(separator: "\n") + "\n"
    }
}
