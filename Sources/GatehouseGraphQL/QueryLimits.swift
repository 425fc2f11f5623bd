import GraphQL

/// Cheap, total measurements of a GraphQL document, used before execution.
enum QueryLimits {
    /// The deepest nesting of `{`, `[` and `(` outside strings and comments, by a single scan
    /// with no recursion. Unbalanced input still returns a number; the parser reports the syntax.
    static func nesting(of source: String) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var inComment = false
        var escaped = false
        for byte in source.utf8 {
            if inComment {
                if byte == 0x0A || byte == 0x0D { inComment = false }
                continue
            }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == 0x5C {
                    escaped = true
                } else if byte == 0x22 || byte == 0x0A {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x23: inComment = true
            case 0x22: inString = true
            case 0x7B, 0x5B, 0x28:
                depth += 1
                deepest = max(deepest, depth)
            case 0x7D, 0x5D, 0x29:
                depth = max(0, depth - 1)
            default: break
            }
        }
        return deepest
    }

    /// The deepest field nesting of the operation(s) in `document`, following fragment spreads.
    /// A fragment already on the current path counts as infinitely deep (a cycle), and the walk
    /// stops as soon as the result exceeds `cap`, so its cost is bounded.
    static func depth(of document: Document, operationName: String?, cap: Int = 1000) -> Int {
        var fragments: [String: SelectionSet] = [:]
        var operations: [OperationDefinition] = []
        for definition in document.definitions {
            if let fragment = definition as? FragmentDefinition {
                fragments[fragment.name.value] = fragment.selectionSet
            } else if let operation = definition as? OperationDefinition {
                if operationName == nil || operation.name?.value == operationName {
                    operations.append(operation)
                }
            }
        }
        var deepest = 0
        for operation in operations {
            deepest = max(deepest, Self.depth(operation.selectionSet, fragments: fragments, path: [], cap: cap))
            if deepest > cap { break }
        }
        return deepest
    }

    private static func depth(_ set: SelectionSet, fragments: [String: SelectionSet], path: Set<String>, cap: Int) -> Int {
        var deepest = 0
        for selection in set.selections {
            let d: Int
            if let field = selection as? Field {
                d = 1 + (field.selectionSet.map { Self.depth($0, fragments: fragments, path: path, cap: cap - 1) } ?? 0)
            } else if let inline = selection as? InlineFragment {
                d = Self.depth(inline.selectionSet, fragments: fragments, path: path, cap: cap)
            } else if let spread = selection as? FragmentSpread {
                let name = spread.name.value
                if path.contains(name) || cap <= 0 {
                    d = cap + 1
                } else if let target = fragments[name] {
                    d = Self.depth(target, fragments: fragments, path: path.union([name]), cap: cap)
                } else {
                    d = 0  // unknown fragment: validation reports it
                }
            } else {
                d = 0
            }
            deepest = max(deepest, d)
            if deepest > cap { return deepest }
        }
        return deepest
    }
}
