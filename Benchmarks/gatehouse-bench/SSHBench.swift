import Crypto
import Foundation
import GatehouseCore
import GatehouseSSH

/// SSH certificate issuance on one core: ours (validate, encode, Ed25519-sign a user
/// certificate) next to the Ed25519 signature alone, and next to OpenSSH's `ssh-keygen -s`
/// signing many keys in one process (the figure: ~2,000/s here).
enum SSHBench {
    static func run() throws {
        let ca = SigningKey.ed25519(Curve25519.Signing.PrivateKey())
        let keys = (0..<64).map { _ in SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey) }
        let nonce = [UInt8](repeating: 7, count: 32)
        func certificate(_ i: Int) -> SSHCertificate {
            SSHCertificate(
                kind: .user, publicKey: keys[i % keys.count], serial: UInt64(i + 1), keyID: "alice serial:\(i + 1) request:bench",
                principals: ["alice@web-1", "root@web-1"],
                validAfter: 1_800_000_000, validBefore: 1_800_028_800, extensions: ["permit-pty"])
        }
        func rate(_ n: Int, _ body: (Int) throws -> Void) rethrows -> Double { try Bench.bestRate(n, body) }
        let ours = try rate(20_000) { i in _ = try certificate(i).signed(by: ca, nonce: nonce) }
        guard case .ed25519(let raw) = ca else { return }
        let message = [UInt8](repeating: 1, count: 300)
        let signatureOnly = try rate(20_000) { _ in _ = try raw.signature(for: message) }
        print("")
        print("SSH user certificates, one core")
        print(
            String(
                format: "  issue (validate, encode, sign) %10.0f/s   Ed25519 signature alone %10.0f/s   ratio %.2fx", ours, signatureOnly,
                ours / signatureOnly))
        if let keygen = try? Self.sshKeygenRate() {
            print(String(format: "  ssh-keygen -s, 500 keys in one process %10.0f/s   ours is %.1fx", keygen, ours / keygen))
        }
    }

    /// `ssh-keygen -s CA -I id -n p KEY...` over 500 public keys in one run.
    static func sshKeygenRate() throws -> Double {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gh-sshbench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
        }
        try run(["-q", "-t", "ed25519", "-N", "", "-f", dir + "/ca"])
        var files: [String] = []
        for i in 0..<500 {
            let path = dir + "/k\(i).pub"
            try (SSHPublicKey(Curve25519.Signing.PrivateKey().publicKey).authorizedKey + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            files.append(path)
        }
        let start = ContinuousClock.now
        try run(["-q", "-s", dir + "/ca", "-I", "bench", "-n", "alice@web-1,root@web-1", "-V", "+8h"] + files)
        let elapsed = ContinuousClock.now - start
        return 500 / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
