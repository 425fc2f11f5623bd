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

    /// How deep a document's selections go, through fragments, measured three ways: the depth
    /// of its ordinary fields (an introspection root counts as one level), the depth under an
    /// introspection root (`__schema`, `__type`), and how many list-valued introspection fields
    /// (`types`, `fields`, `args`, ...) nest there. Introspection walks a finite schema, and the
    /// standard query tools send (`types { fields { args { type { ofType ... } } } }`) is 13 to 15
    /// levels of mostly one-to-one `ofType` steps; what multiplies its work is the nesting of the
    /// list fields, so that is what is bounded. Capped at `cap`; a fragment cycle counts as over.
    struct Depths: Equatable {
        var fields = 0
        var introspection = 0
        var introspectionLists = 0
    }

    static func depth(of document: Document, operationName: String?, cap: Int = 1000) -> Int {
        self.depths(of: document, operationName: operationName, cap: cap).fields
    }

    static func depths(of document: Document, operationName: String?, cap: Int = 1000) -> Depths {
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
        var out = Depths()
        for operation in operations {
            out.fields = max(out.fields, walker.depth(operation.selectionSet, .ordinary))
        }
        out.introspection = walker.introspection
        out.introspectionLists = walker.introspectionLists
        return out
    }
}

private struct DepthWalker {
    /// Where a selection set sits: among ordinary fields, or under an introspection root with
    /// this many list-valued fields above it.
    enum Place: Hashable {
        case ordinary
        case introspection(lists: Int)
    }

    static let introspectionRoots: Set<String> = ["__schema", "__type"]
    static let introspectionLists: Set<String> = [
        "types", "fields", "args", "inputFields", "interfaces", "possibleTypes", "enumValues", "directives",
    ]

    let cap: Int
    var fragments: [String: SelectionSet] = [:]
    var memo: [String: Int] = [:]
    var visiting: Set<String> = []
    /// The deepest introspection subtree and list nesting seen anywhere.
    var introspection = 0
    var introspectionLists = 0

    init(cap: Int) { self.cap = cap }

    mutating func depth(_ set: SelectionSet, _ place: Place) -> Int {
        var deepest = 0
        for selection in set.selections {
            let d: Int
            if let field = selection as? Field {
                switch place {
                case .ordinary where Self.introspectionRoots.contains(field.name.value):
                    let below = field.selectionSet.map { self.depth($0, .introspection(lists: 0)) } ?? 0
                    self.introspection = min(max(self.introspection, 1 + below), self.cap + 1)
                    d = 1
                case .ordinary:
                    d = 1 + (field.selectionSet.map { self.depth($0, .ordinary) } ?? 0)
                case .introspection(let lists):
                    let nested = lists + (Self.introspectionLists.contains(field.name.value) ? 1 : 0)
                    self.introspectionLists = min(max(self.introspectionLists, nested), self.cap + 1)
                    d = 1 + (field.selectionSet.map { self.depth($0, nested > self.cap ? place : .introspection(lists: nested)) } ?? 0)
                }
            } else if let inline = selection as? InlineFragment {
                d = self.depth(inline.selectionSet, place)
            } else if let spread = selection as? FragmentSpread {
                d = self.fragmentDepth(spread.name.value, place)
            } else {
                d = 0
            }
            deepest = min(max(deepest, d), self.cap + 1)
        }
        return deepest
    }

    mutating func fragmentDepth(_ name: String, _ place: Place) -> Int {
        let key = "\(name)|\(place)"
        if let known = self.memo[key] { return known }
        guard let target = self.fragments[name] else { return 0 }  // unknown: validation reports it
        guard !self.visiting.contains(name) else {  // cycle
            if case .introspection = place { self.introspection = self.cap + 1 }
            return self.cap + 1
        }
        self.visiting.insert(name)
        let d = self.depth(target, place)
        self.visiting.remove(name)
        self.memo[key] = d
        return d
    }
}
