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
        let probe = (path as NSString).appendingPathComponent(".gatehouse-write-check-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw GatehouseError(.dataDirUnusable, "data dir \(path) is not writable: \(String(cString: strerror(errno)))")
        }
        close(fd)
        unlink(probe)
        return DataDirectory(path: path)
    }

    /// True when group or others have any access; the caller warns about it.
    public var isGroupOrWorldAccessible: Bool {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: self.path))?[.posixPermissions] as? Int else { return false }
        return mode & 0o077 != 0
    }

    public var adminSocketPath: String { (self.path as NSString).appendingPathComponent("admin.sock") }

    /// `GATEHOUSE_ROOT_KEY_FILE` if set, else `DATA_DIR/root.key`.
    public func rootKeyPath(environment: [String: String]) -> String {
        if let override = environment["GATEHOUSE_ROOT_KEY_FILE"], !override.isEmpty { return override }
        return (self.path as NSString).appendingPathComponent("root.key")
    }

    /// Reads the root key if the file exists; `nil` if it does not.
    public static func readRootKey(at path: String) throws(GatehouseError) -> RootKey? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) cannot be read")
        }
        do {
            return try RootKey(bytes: [UInt8](data))
        } catch {
            throw GatehouseError(.rootKeyInvalid, "root key file \(path) must hold exactly \(RootKey.byteCount) bytes, found \(data.count)")
        }
    }

    /// Creates a new root key file (0600, exclusive create: an existing file is never overwritten)
    /// and syncs it to disk before returning.
    public static func createRootKey(at path: String, random: some RandomSource) throws(GatehouseError) -> RootKey {
        let (key, bytes) = RootKey.generate(using: random)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw GatehouseError(.rootKeyInvalid, "cannot create root key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw GatehouseError(.rootKeyInvalid, "cannot write root key file \(path): \(String(cString: strerror(errno)))")
        }
        return key
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
