public import Foundation

/// One event of a session transcript, as asciicast v2 writes it: seconds since the session
/// started, a kind, and the text.
public struct RecordingEvent: Sendable, Equatable {
    /// Event kinds. Raw values are asciicast v2's codes and never change meaning.
    public enum Kind: String, Sendable, Equatable {
        /// Printed by the session (the target's stdout and stderr).
        case output = "o"
        /// Typed by the person (stdin as it reached the target).
        case input = "i"
        /// The terminal was resized: data is `COLSxROWS`.
        case resize = "r"
        /// A marker: something about the session that is not terminal data (a signal, EOF, a
        /// subsystem start), in words.
        case marker = "m"
    }

    public var time: Double
    public var kind: Kind
    public var data: String

    public init(time: Double, kind: Kind, data: String) {
        self.time = time
        self.kind = kind
        self.data = data
    }
}

/// What is known when a session starts: the first line of a recording.
public struct RecordingHeader: Sendable, Equatable, Codable {
    /// The session's identifier (also the recording's file name and audit subject).
    public var session: String
    /// The Gatehouse user, the login on the target and the target host.
    public var user: String
    public var login: String
    public var host: String
    /// Where the person connected from.
    public var source: String?
    /// `shell`, `exec`, `subsystem`.
    public var mode: String
    /// The command for `exec`, the subsystem's name for `subsystem`.
    public var command: String?
    /// The terminal, when a pty was requested.
    public var term: String?
    public var width: Int
    public var height: Int
    /// Unix time in seconds when the session started.
    public var started: Double

    public init(
        session: String, user: String, login: String, host: String, source: String?, mode: String, command: String?, term: String?, width: Int,
        height: Int, started: Double
    ) {
        self.session = session
        self.user = user
        self.login = login
        self.host = host
        self.source = source
        self.mode = mode
        self.command = command
        self.term = term
        self.width = width
        self.height = height
        self.started = started
    }
}

/// What is known when a session ends: the last line of a sealed recording.
public struct RecordingTrailer: Sendable, Equatable, Codable {
    /// Unix time in seconds.
    public var ended: Double
    public var exitStatus: Int?
    public var exitSignal: String?
    /// Why the session ended when the bastion ended it (`killed by admin`, `user offboarded`, ...).
    public var endedBy: String?
    /// Terminal bytes that went each way, counted before any transcript conversion.
    public var bytesIn: Int
    public var bytesOut: Int

    public init(ended: Double, exitStatus: Int?, exitSignal: String?, endedBy: String?, bytesIn: Int, bytesOut: Int) {
        self.ended = ended
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.endedBy = endedBy
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }

    enum CodingKeys: String, CodingKey {
        case ended
        case exitStatus = "exit_status"
        case exitSignal = "exit_signal"
        case endedBy = "ended_by"
        case bytesIn = "bytes_in"
        case bytesOut = "bytes_out"
    }
}
