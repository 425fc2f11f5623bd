public import Crypto

/// A SHA-256 hash in the Merkle tree.
public typealias TreeHash = [UInt8]

/// Merkle tree hashing and proofs exactly as RFC 9162 §2.1 defines them:
/// leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), the empty tree hashes
/// to SHA-256(""), and a tree of n > 1 leaves splits at the largest power of two below n.
public enum Merkle {
    public static func leafHash(_ entry: some Collection<UInt8>) -> TreeHash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: Array(entry))
        return Array(hasher.finalize())
    }

    public static func nodeHash(_ left: TreeHash, _ right: TreeHash) -> TreeHash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    public static let emptyRoot: TreeHash = Array(SHA256.hash(data: [UInt8]()))

    /// Largest power of two strictly below `n` (n > 1).
    static func split(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH over `leaves[range]` (leaf hashes).
    public static func root(_ leaves: ArraySlice<TreeHash>) -> TreeHash {
        switch leaves.count {
        case 0: return Self.emptyRoot
        case 1: return leaves.first!
        default:
            let k = Self.split(leaves.count)
            let mid = leaves.startIndex + k
            return Self.nodeHash(Self.root(leaves[leaves.startIndex..<mid]), Self.root(leaves[mid...]))
        }
    }

    public static func root(_ leaves: [TreeHash]) -> TreeHash { Self.root(leaves[...]) }

    /// PATH(m, D[n]): the audit path for leaf `index` in the tree of `leaves`.
    public static func inclusionProof(index: Int, leaves: ArraySlice<TreeHash>) -> [TreeHash] {
        precondition(index >= 0 && index < leaves.count, "index out of range")
        if leaves.count == 1 { return [] }
        let k = Self.split(leaves.count)
        let mid = leaves.startIndex + k
        if index < k {
            return Self.inclusionProof(index: index, leaves: leaves[leaves.startIndex..<mid]) + [Self.root(leaves[mid...])]
        }
        return Self.inclusionProof(index: index - k, leaves: leaves[mid...]) + [Self.root(leaves[leaves.startIndex..<mid])]
    }

    /// PROOF(m, D[n]): the consistency proof between the first `oldSize` leaves and all of them.
    public static func consistencyProof(oldSize: Int, leaves: ArraySlice<TreeHash>) -> [TreeHash] {
        precondition(oldSize >= 0 && oldSize <= leaves.count, "old size out of range")
        if oldSize == 0 || oldSize == leaves.count { return [] }
        return Self.subproof(oldSize, leaves, complete: true)
    }

    static func subproof(_ m: Int, _ leaves: ArraySlice<TreeHash>, complete: Bool) -> [TreeHash] {
        let n = leaves.count
        if m == n { return complete ? [] : [Self.root(leaves)] }
        let k = Self.split(n)
        let mid = leaves.startIndex + k
        if m <= k {
            return Self.subproof(m, leaves[leaves.startIndex..<mid], complete: complete) + [Self.root(leaves[mid...])]
        }
        return Self.subproof(m - k, leaves[mid...], complete: false) + [Self.root(leaves[leaves.startIndex..<mid])]
    }

    /// RFC 9162 §2.1.3.2: verifies that `leaf` is at `index` in the tree of `size` with `root`.
    public static func verifyInclusion(leaf: TreeHash, index: Int, size: Int, proof: [TreeHash], root: TreeHash) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = Self.nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = Self.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2: verifies that the tree of `oldSize` with `oldRoot` is a prefix of the
    /// tree of `newSize` with `newRoot`.
    public static func verifyConsistency(oldSize: Int, newSize: Int, oldRoot: TreeHash, newRoot: TreeHash, proof: [TreeHash]) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        var path = proof
        if oldSize & (oldSize - 1) == 0 {  // a power of two: the old root is itself the first node
            path.insert(oldRoot, at: 0)
        }
        guard !path.isEmpty else { return false }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = Self.nodeHash(c, fr)
                sr = Self.nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = Self.nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }
}

/// All levels of a tree, built once, for many audit paths in O(log n) each (instead of
/// O(n) per path with ``Merkle/inclusionProof(index:leaves:)``). Levels pair neighbours and
/// carry an unpaired last node up unchanged, which yields exactly RFC 9162's tree and paths.
public struct MerkleLevels: Sendable {
    private var levels: [[TreeHash]]

    public init(leaves: [TreeHash]) {
        var levels = [leaves]
        while let top = levels.last, top.count > 1 {
            var next: [TreeHash] = []
            next.reserveCapacity((top.count + 1) / 2)
            var i = 0
            while i + 1 < top.count {
                next.append(Merkle.nodeHash(top[i], top[i + 1]))
                i += 2
            }
            if i < top.count { next.append(top[i]) }
            levels.append(next)
        }
        self.levels = levels
    }

    public var size: Int { self.levels[0].count }

    public var root: TreeHash { self.levels.last?.first ?? Merkle.emptyRoot }

    /// The audit path of leaf `index`, equal to PATH(index, D[size]).
    public func inclusionProof(index: Int) -> [TreeHash] {
        precondition(index >= 0 && index < self.size, "index out of range")
        var proof: [TreeHash] = []
        var i = index
        for level in self.levels.dropLast() {
            let sibling = i ^ 1
            if sibling < level.count { proof.append(level[sibling]) }
            i >>= 1
        }
        return proof
    }
}

/// Computes the root of a growing tree in one pass: append leaf hashes, ask for the root at any
/// size. Keeps only the O(log n) perfect subtrees on the right edge (a compact range).
public struct MerkleAccumulator: Sendable {
    private var stack: [(height: Int, hash: TreeHash)] = []
    public private(set) var size = 0

    public init() {}

    public mutating func append(_ leaf: TreeHash) {
        var node = (height: 0, hash: leaf)
        while let top = self.stack.last, top.height == node.height {
            self.stack.removeLast()
            node = (height: node.height + 1, hash: Merkle.nodeHash(top.hash, node.hash))
        }
        self.stack.append(node)
        self.size += 1
    }

    /// MTH of everything appended so far.
    public var root: TreeHash {
        guard var hash = self.stack.last?.hash else { return Merkle.emptyRoot }
        for node in self.stack.dropLast().reversed() {
            hash = Merkle.nodeHash(node.hash, hash)
        }
        return hash
    }
}
