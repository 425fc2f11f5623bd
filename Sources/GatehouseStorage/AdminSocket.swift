import Foundation
public import GatehouseCore

#if canImport(Glibc)
import Glibc
#endif

/// Checks for the admin socket before a server binds it: a live socket means another server
/// owns this data dir; a dead one is left over from a crash and is removed.
public enum AdminSocket {
    /// Longest usable `sun_path` on Linux, minus the terminating NUL.
    public static let maxPathBytes = 107

    public static func claim(_ path: String) throws(GatehouseError) {
        guard path.utf8.count <= Self.maxPathBytes else {
            throw GatehouseError(.dataDirUnusable, "admin socket path \(path) is longer than \(Self.maxPathBytes) bytes; use a shorter data dir path")
        }
        guard FileManager.default.fileExists(atPath: path) else { return }
        if Self.isLive(path) {
            throw GatehouseError(.serverAlreadyRunning, "another gatehouse server is already running with this data dir (socket \(path) answers)")
        }
        unlink(path)
    }

    static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }
}
