import Foundation
public import GatehouseCore

#if canImport(Glibc)
    import Glibc
#endif

/// The server's data directory and the root key file, with the file-system rules of
/// `gatehouse serve`: the directory is created 0700, must be writable, and the root key file
/// is created 0600 exactly once and never overwritten.
public struct DataDirectory: Sendable {
    public let path: String

    /// Creates the directory (0700) if it does not exist and checks that it is writable.
    public static func prepare(_ path: String) throws(GatehouseError) -> DataDirectory {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw GatehouseError(.dataDirUnusable, "data dir \(path) exists and is not a directory")
            }
        } else {
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw GatehouseError(.dataDirUnusable, "cannot create data dir \(path): \(Self.reason(error))")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw GatehouseError(.dataDirUnusable, "cannot inspect data dir \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_uid == geteuid() else {
            throw GatehouseError(
                .dataDirUnusable, "data dir \(path) is owned by uid \(info.st_uid), not by this user (uid \(geteuid())); refusing to use it")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw GatehouseError(
                .dataDirUnusable,
                "data dir \(path) is writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 700 it"
            )
        }
        let probe = (path as NSString).appendingPathComponent(".gatehouse-write-check-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw GatehouseError(.dataDirUnusable, "data dir \(path) is not writable: \(String(cString: strerror(errno)))")
        }
        close(fd)
        unlink(probe)
        return DataDirectory(path: path)
    }

    /// True when group or others may read or enter it; the caller warns about it
    /// (write access for them is refused by ``prepare(_:)``).
    public var isGroupOrWorldAccessible: Bool {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: self.path))?[.posixPermissions] as? Int else { return false }
        return mode & 0o077 != 0
    }

    public var adminSocketPath: String { (self.path as NSString).appendingPathComponent("admin.sock") }

    /// The latest signed audit checkpoint, kept outside the database.
    public var auditHeadPath: String { Self.auditHeadPath(self.path) }

    public static func auditHeadPath(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("audit-head") }

    /// Sealed SSH session recordings, one `ID.ghrec` per session (0700).
    public var recordingsPath: String { Self.recordingsPath(self.path) }
    public static func recordingsPath(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("recordings") }

    /// `GATEHOUSE_ROOT_KEY_FILE` if set, else `DATA_DIR/root.key`.
    public func rootKeyPath(environment: [String: String]) -> String {
        if let override = environment["GATEHOUSE_ROOT_KEY_FILE"], !override.isEmpty { return override }
        return (self.path as NSString).appendingPathComponent("root.key")
    }

    /// Reads the root key if the file exists; `nil` if it does not. Like sshd with private keys,
    /// it refuses a key file that others could read or replace.
    public static func readRootKey(at path: String) throws(GatehouseError) -> RootKey? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) cannot be inspected: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw GatehouseError(
                .rootKeyInvalid,
                "root key file \(path) is accessible to group or others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it"
            )
        }
        guard info.st_uid == geteuid() else {
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) is owned by uid \(info.st_uid), not by this user; refusing to use it")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) cannot be read")
        }
        do {
            return try RootKey(bytes: [UInt8](data))
        } catch {
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) must hold exactly \(RootKey.byteCount) bytes, found \(data.count)")
        }
    }

    /// Creates a new root key file (0600) and returns its key, or returns the key already there.
    ///
    /// The key is written and synced to a private temporary file first and then `link(2)`ed into
    /// place, which fails if the name exists: an existing key file is never overwritten, and a
    /// replica starting at the same moment either wins or reads the winner's complete file.
    public static func createRootKey(at path: String, random: some RandomSource) throws(GatehouseError) -> RootKey {
        let (key, bytes) = RootKey.generate(using: random)
        let temporary = "\(path).tmp-\(getpid())-\(Hex.encode(random.bytes(4)))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw GatehouseError(.rootKeyInvalid, "cannot create root key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            throw GatehouseError(.rootKeyInvalid, "cannot write root key file \(path): \(String(cString: strerror(errno)))")
        }
        if link(temporary, path) != 0 {
            let reason = errno
            if reason == EEXIST, let existing = try Self.readRootKey(at: path) {
                return existing
            }
            throw GatehouseError(.rootKeyInvalid, "cannot create root key file \(path): \(String(cString: strerror(reason)))")
        }
        // Make the new directory entry durable too, before any key is sealed under this key.
        let directory = open(
            (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return key
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
