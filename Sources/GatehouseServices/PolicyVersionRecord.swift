public import Foundation

/// Facts about one applied policy version (without its text).
public struct PolicyVersionInfo: Sendable, Equatable, Codable {
    /// 1, 2, 3, ... in the order they were applied.
    public var version: Int64
    /// SHA-256 of the text, hex; the audit event of the apply records the same value.
    public var sha256: String
    public var appliedAt: Date
    public var appliedBy: String
    public var comment: String?
    public var ruleCount: Int

    public init(version: Int64, sha256: String, appliedAt: Date, appliedBy: String, comment: String?, ruleCount: Int) {
        self.version = version
        self.sha256 = sha256
        self.appliedAt = appliedAt
        self.appliedBy = appliedBy
        self.comment = comment
        self.ruleCount = ruleCount
    }

    enum CodingKeys: String, CodingKey {
        case version, sha256, comment
        case appliedAt = "applied_at"
        case appliedBy = "applied_by"
        case ruleCount = "rule_count"
    }
}

/// An applied policy version as stored: its facts and the exact text that was applied.
public struct PolicyVersionRecord: Sendable, Equatable {
    public var info: PolicyVersionInfo
    public var source: String

    public init(info: PolicyVersionInfo, source: String) {
        self.info = info
        self.source = source
    }
}
