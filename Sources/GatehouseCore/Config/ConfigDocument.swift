/// A parsed configuration file: dotted keys (`listen`, `tls.cert`) mapped to values, each
/// remembering the line it came from so later checks can point at it.
public struct ConfigDocument: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let value: ConfigValue
        public let line: Int
    }

    /// Keys in file order, as written (`tls.cert` for `cert` under `[tls]`).
    public private(set) var keys: [String] = []
    public private(set) var entries: [String: Entry] = [:]

    public init() {}

    mutating func insert(_ key: String, _ entry: Entry) -> Bool {
        guard self.entries[key] == nil else { return false }
        self.keys.append(key)
        self.entries[key] = entry
        return true
    }

    public subscript(key: String) -> Entry? { self.entries[key] }
}

/// A configuration value: the TOML scalars Gatehouse uses, and single-line arrays of them.
public enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([ConfigValue])

    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .boolean: "boolean"
        case .array: "array"
        }
    }
}

/// A configuration error with its position: `FILE:LINE:COLUMN: message`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let fileName: String
    public let line: Int
    public let column: Int?
    public let message: String

    public var description: String {
        if let column { return "\(self.fileName):\(self.line):\(column): \(self.message)" }
        return "\(self.fileName):\(self.line): \(self.message)"
    }
}
