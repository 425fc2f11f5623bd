/// The generic syntax tree of a policy file, before any meaning is given to it.
///
/// The grammar is small on purpose (see docs/policy.md):
///
///     file      = statement*
///     statement = WORD "=" value NEWLINE          an attribute (several may share a line)
///               | WORD label* "{" statement* "}"  a block
///               | WORD word*  NEWLINE             a phrase (only inside `tests`)
///     value     = WORD | STRING | "[" value,* "]" | "{" (WORD "=" value),* "}"
///
/// ``PolicyCompiler`` turns the tree into typed definitions and reports anything it does not
/// know, with its location.
public enum PolicySyntax {
    /// A value on the right of `=`.
    public indirect enum Value: Sendable, Equatable {
        case word(String, PolicyLocation)
        case string(String, PolicyLocation)
        case list([Value], PolicyLocation)
        case map([(key: String, value: Value)], PolicyLocation)

        public var location: PolicyLocation {
            switch self {
            case .word(_, let l), .string(_, let l), .list(_, let l), .map(_, let l): return l
            }
        }

        public static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case let (.word(x, lx), .word(y, ly)), let (.string(x, lx), .string(y, ly)): return x == y && lx == ly
            case let (.list(x, lx), .list(y, ly)): return x == y && lx == ly
            case let (.map(x, lx), .map(y, ly)):
                return lx == ly && x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: return false
            }
        }
    }

    /// One statement inside a block or at the top of the file.
    public enum Statement: Sendable, Equatable {
        case attribute(name: String, value: Value, location: PolicyLocation)
        case block(Block)
        case phrase(words: [String], location: PolicyLocation)

        public var location: PolicyLocation {
            switch self {
            case .attribute(_, _, let l), .phrase(_, let l): return l
            case .block(let b): return b.location
            }
        }
    }

    /// `keyword label... { body }`, e.g. `allow ssh sre-prod { ... }`.
    public struct Block: Sendable, Equatable {
        public var keyword: String
        public var labels: [String]
        public var body: [Statement]
        public var location: PolicyLocation

        public init(keyword: String, labels: [String], body: [Statement], location: PolicyLocation) {
            self.keyword = keyword
            self.labels = labels
            self.body = body
            self.location = location
        }
    }
}
