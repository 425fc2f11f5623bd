/// Where a connection to the bastion wants to go, read from its SSH user name.
///
/// Forms: `LOGIN@HOST` (for example `ssh -p 2222 root@web-1@bastion`: OpenSSH splits the
/// destination at its last `@`, so the user name is `root@web-1`), or `HOST` alone, which logs
/// in as the Gatehouse user's own name. The ssh_config that `gatehouse login` writes uses the
/// second form (`User web-1` under `Host web-1`), so `ssh web-1` just works. `LOGIN%HOST` is
/// accepted too, for tools that do not allow `@` in a user name.
public struct BastionTarget: Sendable, Equatable {
    public let login: String?
    public let host: String

    public init(login: String?, host: String) {
        self.login = login
        self.host = host
    }

    /// Parses a user name; nil when it names no valid login and host.
    public init?(userName: String) {
        guard userName.utf8.count <= 200 else { return nil }
        let separator = userName.lastIndex(of: "@") ?? userName.lastIndex(of: "%")
        let login = separator.map { String(userName[..<$0]) }
        let host = separator.map { String(userName[userName.index(after: $0)...]) } ?? userName
        guard Self.isHostName(host) else { return nil }
        if let login { guard Self.isLogin(login) else { return nil } }
        self.login = login
        self.host = host
    }

    /// POSIX-portable login names: a letter or `_` first, then letters, digits, `._-`, at most 32.
    public static func isLogin(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard let first = u.first, u.count <= 32, first == 0x5F || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return false }
        return u.allSatisfy { ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    /// Policy host names: letters, digits, `.`, `_`, `-`, at most 64, not starting with `-`.
    public static func isHostName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 64, u[0] != 0x2D else { return false }
        return u.allSatisfy { ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }
}
