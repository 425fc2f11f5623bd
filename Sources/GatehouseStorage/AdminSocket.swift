import Foundation
public import GatehouseCore

#if canImport(Glibc)
    import Glibc
#endif

/// Exclusive ownership of a data directory for the life of a server process: an advisory
/// `flock` on `DATA_DIR/lock`. A second server on the same directory is refused at once, even
/// when both start at the same moment; the kernel drops the lock when the process dies, so a
/// crash never leaves the directory locked.
public final class DataDirectoryLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    public static func acquire(_ dataDir: DataDirectory) throws(GatehouseError) -> DataDirectoryLock {
        try Self.acquire(
            file: (dataDir.path as NSString).appendingPathComponent("lock"),
            held: "another gatehouse server is already running with this data dir (\(dataDir.path))")
    }

    /// The same lock on `DB.lock` beside a SQLite database, which `--database sqlite:PATH` may put
    /// outside the data dir: two servers with different data dirs must not share one database
    /// (each caches on the assumption that it is the only writer).
    public static func acquire(sqliteDatabase path: String) throws(GatehouseError) -> DataDirectoryLock {
        try Self.acquire(file: path + ".lock", held: "another gatehouse server is already using the SQLite database \(path)")
    }

    static func acquire(file path: String, held: String) throws(GatehouseError) -> DataDirectoryLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw GatehouseError(.dataDirUnusable, "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(fd)
            if reason == EWOULDBLOCK {
                throw GatehouseError(.serverAlreadyRunning, held)
            }
            throw GatehouseError(.dataDirUnusable, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        return DataDirectoryLock(fd: fd)
    }

    deinit { close(self.fd) }
}

/// The admin socket's path rules. Call ``prepare(_:)`` while holding the ``DataDirectoryLock``:
/// any socket file already there is then left over from a crash and is removed.
public enum AdminSocket {
    /// Longest usable `sun_path` on Linux, minus the terminating NUL.
    public static let maxPathBytes = 107

    public static func prepare(_ path: String) throws(GatehouseError) {
        guard path.utf8.count <= Self.maxPathBytes else {
            throw GatehouseError(.dataDirUnusable, "admin socket path \(path) is longer than \(Self.maxPathBytes) bytes; use a shorter data dir path")
        }
        unlink(path)
    }
}
