public import Foundation

/// One session through the SSH bastion, as the store keeps it: who, as whom, where, when, how it
/// ended, and the SHA-256 of its sealed recording (also in the audit log).
public struct BastionSessionRecord: Sendable, Equatable, Codable {
    public var id: String
    public var userID: String
    public var username: String
    public var login: String
    public var host: String
    public var source: String?
    /// `shell`, `exec` or `subsystem`.
    public var mode: String
    /// The command (`exec`) or subsystem name.
    public var command: String?
    public var startedAt: Date
    public var endedAt: Date?
    public var exitStatus: Int?
    public var exitSignal: String?
    /// Set when Gatehouse ended the session (`killed by admin-socket`, `user offboarded`, `recording failed: ...`).
    public var endedBy: String?
    public var recordingSHA256: String?
    public var recordingBytes: Int64?
    public var bytesIn: Int64
    public var bytesOut: Int64
    /// The server process running the session (random per process), and when it last said so
    /// (every few seconds while the session is live).
    public var replica: String?
    public var heartbeatAt: Date?

    public init(
        id: String, userID: String, username: String, login: String, host: String, source: String?, mode: String, command: String?, startedAt: Date,
        endedAt: Date? = nil, exitStatus: Int? = nil, exitSignal: String? = nil, endedBy: String? = nil, recordingSHA256: String? = nil,
        recordingBytes: Int64? = nil, bytesIn: Int64 = 0, bytesOut: Int64 = 0, replica: String? = nil, heartbeatAt: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.username = username
        self.login = login
        self.host = host
        self.source = source
        self.mode = mode
        self.command = command
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.endedBy = endedBy
        self.recordingSHA256 = recordingSHA256
        self.recordingBytes = recordingBytes
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.replica = replica
        self.heartbeatAt = heartbeatAt
    }

    enum CodingKeys: String, CodingKey {
        case id, username, login, host, source, mode, command
        case userID = "user_id"
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case exitStatus = "exit_status"
        case exitSignal = "exit_signal"
        case endedBy = "ended_by"
        case recordingSHA256 = "recording_sha256"
        case recordingBytes = "recording_bytes"
        case bytesIn = "bytes_in"
        case bytesOut = "bytes_out"
        case replica
        case heartbeatAt = "heartbeat_at"
    }
}
