import Foundation
import GatehouseCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes a file atomically with its permissions from the first byte: a temporary file created
/// with `O_EXCL|O_NOFOLLOW` and `mode`, written, synced, then renamed over the target. A private
/// key is never readable by others, not even for a moment.
enum SecureFile {
    static func write(_ path: String, _ data: Data, mode: Int) throws {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw GatehouseError(.invalidInput, "cannot write \(path): \(String(cString: strerror(errno)))") }
        var ok = fchmod(fd, mode_t(mode)) == 0  // the umask does not narrow what was asked for
        data.withUnsafeBytes { buffer in
            var offset = 0
            while ok && offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { ok = false } else { offset += n }
            }
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw GatehouseError(.invalidInput, "cannot write \(path)")
        }
    }
}
