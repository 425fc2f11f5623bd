import GraphQL

/// Cheap, total measurements of a GraphQL document, used before execution.
enum QueryLimits {
    /// The deepest nesting of `{`, `[` and `(` outside strings and comments, by a single scan
    /// with no recursion. It follows the GraphQL lexical grammar for what is *not* a bracket:
    /// `#` comments to the end of the line, `"…"` strings with `\` escapes (ended by a line
    /// break as well, where the lexer would fail), and `"""…"""` block strings, where only
    /// `\"""` escapes. Unbalanced input still returns a number; the parser reports the syntax.
    static func nesting(of source: String) -> Int {
        let b = Array(source.utf8)
        let n = b.count
        func at(_ i: Int) -> UInt8 { i < n ? b[i] : 0 }
        var depth = 0
        var deepest = 0
        var i = 0
        while i < n {
            switch b[i] {
            case 0x23:  // # comment
                while i < n && b[i] != 0x0A && b[i] != 0x0D { i += 1 }
            case 0x22 where at(i + 1) == 0x22 && at(i + 2) == 0x22:  // """ block string
                i += 3
                while i < n {
                    if b[i] == 0x5C && at(i + 1) == 0x22 && at(i + 2) == 0x22 && at(i + 3) == 0x22 {
                        i += 4
                    } else if b[i] == 0x22 && at(i + 1) == 0x22 && at(i + 2) == 0x22 {
                        i += 3
                        break
                    } else {
                        i += 1
                    }
                }
                continue
            case 0x22:  // "string"
                i += 1
                while i < n {
                    if b[i] == 0x5C {
                        i += 2
                    } else if b[i] == 0x22 {
                        i += 1
                        break
                    } else if b[i] == 0x0A || b[i] == 0x0D {
                        break
                    } else {
                        i += 1
                    }
                }
                continue
            case 0x7B, 0x5B, 0x28:
                depth += 1
                deepest = max(deepest, depth)
            case 0x7D, 0x5D, 0x29:
                depth = max(0, depth - 1)
            default:
                break
            }
            i += 1
        }
        return deepest
    }

    /// The deepest field nesting of the operation(s) in `document`, following fragment spreads.
    /// Each fragment's depth is computed once (memoized), so shared fragments cannot make the
    /// walk exponential; a fragment that reaches itself counts as deeper than `cap` (a cycle).
    /// Cost is linear in the size of the document.
    static func depth(of document: Document, operationName: String?, cap: Int = 1000) -> Int {
        var walker = DepthWalker(cap: cap)
        var operations: [OperationDefinition] = []
        for definition in document.definitions {
            if let fragment = definition as? FragmentDefinition {
                walker.fragments[fragment.name.value] = fragment.selectionSet
            } else if let operation = definition as? OperationDefinition {
                if operationName == nil || operation.name?.value == operationName {
                    operations.append(operation)
                }
            }
        }
        var deepest = 0
        for operation in operations {
            deepest = max(deepest, walker.depth(operation.selectionSet))
        }
        return deepest
    }
}

private struct DepthWalker {
    let cap: Int
    var fragments: [String: SelectionSet] = [:]
    var memo: [String: Int] = [:]
    var visiting: Set<String> = []

    init(cap: Int) { self.cap = cap }

    mutating func depth(_ set: SelectionSet) -> Int {
        var deepest = 0
        for selection in set.selections {
            let d: Int
            if let field = selection as? Field {
                d = 1 + (field.selectionSet.map { self.depth($0) } ?? 0)
            } else if let inline = selection as? InlineFragment {
                d = self.depth(inline.selectionSet)
            } else if let spread = selection as? FragmentSpread {
                d = self.fragmentDepth(spread.name.value)
            } else {
                d = 0
            }
            deepest = min(max(deepest, d), self.cap + 1)
        }
        return deepest
    }

    mutating func fragmentDepth(_ name: String) -> Int {
        if let known = self.memo[name] { return known }
        guard let target = self.fragments[name] else { return 0 }  // unknown: validation reports it
        guard !self.visiting.contains(name) else { return self.cap + 1 }  // cycle
        self.visiting.insert(name)
        let d = self.depth(target)
        self.visiting.remove(name)
        self.memo[name] = d
        return d
    }
}
