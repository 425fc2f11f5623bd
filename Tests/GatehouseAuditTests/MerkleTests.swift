import GatehouseAudit
import GatehouseCore
import Testing

/// RFC 6962/9162 hashing and proofs, against the reference vectors used by Certificate
/// Transparency implementations (the eight leaves below; the roots and paths also match an
/// independent Python implementation run when these goldens were written).
@Suite("Merkle tree (RFC 9162)")
struct MerkleTests {
    static let leaves: [[UInt8]] = [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57], Array(0x60...0x6F),
    ]
    static let hashes = leaves.map(Merkle.leafHash)

    static let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    @Test func roots() {
        #expect(Hex.encode(Merkle.emptyRoot) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var accumulator = MerkleAccumulator()
        for n in 1...8 {
            #expect(Hex.encode(Merkle.root(Array(Self.hashes.prefix(n)))) == Self.roots[n - 1])
            accumulator.append(Self.hashes[n - 1])
            #expect(Hex.encode(accumulator.root) == Self.roots[n - 1])
        }
    }

    @Test func inclusionVectors() {
        let p0 = Merkle.inclusionProof(index: 0, leaves: Self.hashes[...]).map { Hex.encode($0) }
        #expect(
            p0 == [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ])
        let p5 = Merkle.inclusionProof(index: 5, leaves: Self.hashes[...]).map { Hex.encode($0) }
        #expect(
            p5 == [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ])
    }

    @Test func consistencyVectors() {
        #expect(
            Merkle.consistencyProof(oldSize: 6, leaves: Self.hashes[...]).map { Hex.encode($0) } == [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ])
        #expect(
            Merkle.consistencyProof(oldSize: 3, leaves: Self.hashes[..<7]).map { Hex.encode($0) } == [
                "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e",
            ])
    }

    @Test func levelsGiveTheSamePathsAsTheRecursiveDefinition() {
        let leaves = (0..<70).map { Merkle.leafHash([UInt8($0)]) }
        for n in 1...70 {
            let levels = MerkleLevels(leaves: Array(leaves.prefix(n)))
            #expect(levels.root == Merkle.root(Array(leaves.prefix(n))))
            for i in 0..<n {
                #expect(levels.inclusionProof(index: i) == Merkle.inclusionProof(index: i, leaves: leaves[..<n]), "\(i) of \(n)")
            }
        }
    }

    /// Every proof for every (index, size) and (old, new) up to 40 leaves verifies, and fails
    /// when any input is changed.
    @Test func allProofsUpTo40Leaves() {
        let leaves = (0..<40).map { Merkle.leafHash([UInt8($0)]) }
        let roots = (0...40).map { Merkle.root(Array(leaves.prefix($0))) }
        for n in 1...40 {
            for i in 0..<n {
                let proof = Merkle.inclusionProof(index: i, leaves: leaves[..<n])
                #expect(Merkle.verifyInclusion(leaf: leaves[i], index: i, size: n, proof: proof, root: roots[n]))
                #expect(!Merkle.verifyInclusion(leaf: leaves[(i + 1) % 40], index: i, size: n, proof: proof, root: roots[n]))
                if n < 40 { #expect(!Merkle.verifyInclusion(leaf: leaves[i], index: i, size: n + 1, proof: proof, root: roots[n + 1])) }
                if !proof.isEmpty {
                    var bad = proof
                    bad[0][0] ^= 1
                    #expect(!Merkle.verifyInclusion(leaf: leaves[i], index: i, size: n, proof: bad, root: roots[n]))
                    #expect(!Merkle.verifyInclusion(leaf: leaves[i], index: i, size: n, proof: proof + [leaves[0]], root: roots[n]))
                }
            }
            for m in 0...n {
                let proof = Merkle.consistencyProof(oldSize: m, leaves: leaves[..<n])
                #expect(Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: roots[m], newRoot: roots[n], proof: proof), "\(m)->\(n)")
                if m > 0 && m < n {
                    #expect(!Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: roots[m - 1], newRoot: roots[n], proof: proof))
                    #expect(!Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: roots[m], newRoot: roots[n - 1], proof: proof))
                    var bad = proof
                    bad[bad.count - 1][31] ^= 1
                    #expect(!Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: roots[m], newRoot: roots[n], proof: bad))
                }
            }
        }
        #expect(!Merkle.verifyInclusion(leaf: leaves[0], index: -1, size: 4, proof: [], root: roots[4]))
        #expect(!Merkle.verifyConsistency(oldSize: 5, newSize: 4, oldRoot: roots[5], newRoot: roots[4], proof: []))
    }
}
