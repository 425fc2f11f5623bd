/// What changes between two policies, as lines of their access tables (see
/// ``CompiledPolicy/accessTable()``): each line names the enforcement point, the target, the
/// principal it is for, and the rule. Lines only in the new policy are granted; lines only in the
/// old one are taken away.
public struct PolicyDiff: Sendable, Equatable {
    public var added: [String]
    public var removed: [String]

    public init(from old: CompiledPolicy?, to new: CompiledPolicy) {
        let before = Set(old?.accessTable() ?? [])
        let after = Set(new.accessTable())
        self.added = after.subtracting(before).sorted()
        self.removed = before.subtracting(after).sorted()
    }

    public var isEmpty: Bool { self.added.isEmpty && self.removed.isEmpty }

    /// `+ line` / `- line`, ordered by the line so the change to one target reads together.
    public var text: String {
        let lines = self.removed.map { (String($0), "- ") } + self.added.map { (String($0), "+ ") }
        if lines.isEmpty { return "no change in access" }
        return lines.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { $0.1 + $0.0 }.joined(separator: "\n")
    }
}
