/// A place in a policy file: 1-based line and column (columns count bytes).
public struct PolicyLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(self.file):\(self.line):\(self.column)" }
}

/// One problem found in a policy, with where it is. Printed as `file:line:col: message`, the
/// form editors and CI annotators understand.
public struct PolicyDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var location: PolicyLocation
    public var message: String

    public init(_ location: PolicyLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(self.location): \(self.message)" }
}

/// A policy that cannot be used, with every problem found (up to a bound). Nothing of such a
/// policy is ever applied.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]

    public init(_ diagnostics: [PolicyDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public init(_ location: PolicyLocation, _ message: String) {
        self.diagnostics = [PolicyDiagnostic(location, message)]
    }

    public var description: String { self.diagnostics.map(\.description).joined(separator: "\n") }
}
