public import Foundation
public import GatehouseCore

/// Runs the host's side of the private network with the system's own tools: the WireGuard
/// interface (kernel WireGuard where present, `wireguard-go` otherwise) through `ip` and `wg`,
/// the default-deny ruleset through `nft -f`, and the mesh isolation program through `tc` and
/// `bpftool`. Everything it installs is named so that ``leave()`` can find and remove it.
// @unchecked: the mutable state (ruleset, maps, organizations, applied) is read and written only
// while `lock` is held (apply, isolationCounters, leave).
public final class HostNetworkApplier: @unchecked Sendable {
    public struct Options: Sendable {
        public var interface: String
        public var listenPort: Int
        /// Where the agent keeps the WireGuard private key (0600) and its bookkeeping.
        public var stateDirectory: URL
        public var wireguardGo: String

        public init(interface: String = "gatehouse0", listenPort: Int = 51820, stateDirectory: URL, wireguardGo: String = "wireguard-go") {
            self.interface = interface
            self.listenPort = listenPort
            self.stateDirectory = stateDirectory
            self.wireguardGo = wireguardGo
        }
    }

    /// What one ``apply(_:)`` did, for the agent's log and the benchmark.
    public struct Report: Sendable {
        public var changed: Bool
        public var fullRuleset: Bool
        public var peers: Int
        public var elements: Int
        public var organizationPrefixes: Int
        public var nftSeconds: Double
    }

    public let options: Options
    let lock = NSLock()
    var ruleset: NftablesRuleset.State? = nil
    var organizations: [IPPrefix: UInt32]? = nil
    var maps: (orgs: Int, stats: Int)? = nil
    var applied: String? = nil

    public init(options: Options) throws(GatehouseError) {
        try HostNetworkPlan.checkInterfaceName(options.interface)
        guard (1...65535).contains(options.listenPort) else {
            throw GatehouseError(.invalidInput, "listen port \(options.listenPort) is not 1–65535")
        }
        self.options = options
    }

    var keyFile: URL { self.options.stateDirectory.appendingPathComponent("wireguard.key") }

    // MARK: keys

    /// The host's WireGuard public key, making the private key on first use (it never leaves
    /// the host).
    public func publicKey() throws -> WireGuardKey {
        let path = self.keyFile.path
        if !FileManager.default.fileExists(atPath: path) {
            let key = try Command.run("wg", ["genkey"]).trimmingCharacters(in: .whitespacesAndNewlines)
            try Self.writePrivate(key + "\n", to: self.keyFile)
        }
        let privateKey = try String(contentsOf: self.keyFile, encoding: .utf8)
        return try WireGuardKey(base64: try Command.run("wg", ["pubkey"], input: privateKey).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Writes `text` to `url` readable by root alone, from the first byte.
    static func writePrivate(_ text: String, to url: URL) throws {
        let temp = url.path + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GatehouseError(.invalidInput, "cannot write \(temp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count, rename(temp, url.path) == 0 else { throw GatehouseError(.invalidInput, "cannot write \(url.path)") }
    }

    // MARK: apply

    /// Brings the host to `plan`: the ruleset and the isolation program first, then peers,
    /// address and link, so no packet crosses the interface before both guard it. The first
    /// call of a process (or after anything went missing or failed) loads the table and the
    /// program whole; later calls change only what differs. Calling it again with the same plan
    /// checks that everything is still in place (a `flush ruleset` elsewhere, a deleted
    /// filter) and puts it back.
    ///
    /// Fails closed: if the table or the program cannot be put in place, the link goes down.
    /// An update that fails leaves the previous table (nftables applies a file whole or not at
    /// all) and the next call reloads it whole.
    @discardableResult
    public func apply(_ plan: HostNetworkPlan) throws -> Report {
        self.lock.lock()
        defer { self.lock.unlock() }
        let config = plan.config
        let iface = self.options.interface
        try self.ensureInterface()
        self.checkInstalled()

        // The ruleset: whole on first apply, element changes after.
        let started = Date()
        var full = false
        let nftText: String?
        let newState: NftablesRuleset.State
        if let state = self.ruleset {
            (nftText, newState) = NftablesRuleset.update(from: state, to: config.allow)
        } else {
            // A random first generation: flows stamped by an earlier agent are judged afresh.
            let (text, state) = NftablesRuleset.full(
                interface: iface, mesh: plan.meshPrefix, allow: config.allow, generation: UInt32.random(in: 1...0x7FFF_FFFF))
            (nftText, newState, full) = (text, state, true)
        }
        do {
            if let nftText { try Command.run("nft", ["-f", "-"], input: nftText) }
        } catch {
            self.ruleset = nil
            if full { self.linkDown() }
            throw error
        }
        self.ruleset = newState
        let nftSeconds = Date().timeIntervalSince(started)
        do {
            try self.updateIsolation(plan)
        } catch {
            self.maps = nil
            self.organizations = nil
            self.linkDown()
            throw error
        }

        // Peers: `wg syncconf` adds, changes and removes peers to match the file, leaving live
        // sessions of unchanged peers alone.
        let privateKey = try String(contentsOf: self.keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let wgFile = self.options.stateDirectory.appendingPathComponent("wireguard.conf")
        try Self.writePrivate(WireGuardConfigFile.agent(privateKey: privateKey, listenPort: self.options.listenPort, peers: config.peers), to: wgFile)
        try Command.run("wg", ["syncconf", iface, wgFile.path])
        try Command.run("ip", ["-6", "address", "replace", "\(plan.address.description)/128", "dev", iface])
        if config.forwarding { try Command.run("sysctl", ["-q", "-w", "net.ipv6.conf.all.forwarding=1"]) }
        try Command.run("ip", ["link", "set", "dev", iface, "up"])
        try Command.run("ip", ["-6", "route", "replace", plan.meshPrefix.description, "dev", iface])

        let changed = self.applied != config.version
        self.applied = config.version
        return Report(
            changed: changed, fullRuleset: full, peers: config.peers.count, elements: newState.elementCount,
            organizationPrefixes: plan.organizations.count, nftSeconds: nftSeconds)
    }

    /// ``apply(_:)`` on a thread of its own: it waits for processes, which must not hold up the
    /// cooperative thread pool (two threads on a two-core host).
    public func applyInBackground(_ plan: HostNetworkPlan) async throws -> Report {
        try await Self.inBackground { try self.apply(plan) }
    }

    /// Runs blocking work (waiting for processes) on a dispatch thread, off the async pool.
    public static func inBackground<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Forgets what is not there any more, so that ``apply(_:)`` puts it back whole.
    func checkInstalled() {
        if self.ruleset != nil, !((try? Command.run("nft", ["list", "tables", "inet"])) ?? "").contains("table inet \(NftablesRuleset.table)\n") {
            self.ruleset = nil
        }
        if self.maps != nil,
            !((try? Command.run("tc", ["filter", "show", "dev", self.options.interface, "ingress"])) ?? "").contains("name gh_mesh_")
        {
            self.maps = nil
            self.organizations = nil
        }
    }

    func linkDown() {
        _ = try? Command.run("ip", ["link", "set", "dev", self.options.interface, "down"])
    }

    /// The interface exists, or is made: kernel WireGuard first, `wireguard-go` where the
    /// kernel has none.
    func ensureInterface() throws {
        let iface = self.options.interface
        if (try? Command.run("ip", ["link", "show", "dev", iface])) != nil { return }
        if (try? Command.run("ip", ["link", "add", "dev", iface, "type", "wireguard"])) != nil { return }
        // wireguard-go puts itself in the background once the interface exists; it stops when
        // the interface is deleted.
        try Command.runDaemon(self.options.wireguardGo, [iface], log: self.options.stateDirectory.appendingPathComponent("wireguard-go.log"))
        try Command.run("ip", ["link", "show", "dev", iface])
    }

    // MARK: BPF

    /// Loads the isolation program on the interface's ingress (once per process) and makes its
    /// organization map equal to the plan's.
    func updateIsolation(_ plan: HostNetworkPlan) throws {
        let iface = self.options.interface
        if self.maps == nil {
            let object = self.options.stateDirectory.appendingPathComponent("mesh_isolation.o")
            guard let bytes = Data(base64Encoded: meshIsolationObjectBase64) else {
                throw GatehouseError(.keyMaterialCorrupted, "the embedded BPF object is corrupt")
            }
            try bytes.write(to: object)
            _ = try? Command.run("tc", ["qdisc", "add", "dev", iface, "clsact"])
            try Command.run(
                "tc",
                ["filter", "replace", "dev", iface, "ingress", "pref", "10", "handle", "1", "bpf", "direct-action", "obj", object.path, "sec", "tc"])
            self.maps = try Self.mapIDs(interface: iface)
            self.organizations = [:]
        }
        guard let maps = self.maps else { return }
        let wanted = Dictionary(plan.organizations.map { ($0.prefix, $0.organization) }, uniquingKeysWith: { a, _ in a })
        let current = self.organizations ?? [:]
        var batch: [String] = []
        for (prefix, _) in current where wanted[prefix] == nil { batch.append("map delete id \(maps.orgs) key hex \(Self.lpmKey(prefix))") }
        for (prefix, org) in wanted.sorted(by: { $0.key < $1.key }) where current[prefix] != org {
            batch.append("map update id \(maps.orgs) key hex \(Self.lpmKey(prefix)) value hex \(Self.hex(littleEndian: org))")
        }
        if !batch.isEmpty {
            let file = self.options.stateDirectory.appendingPathComponent("bpf.batch")
            try (batch.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            try Command.run("bpftool", ["batch", "file", file.path])
        }
        self.organizations = wanted
    }

    /// The ids of the program's maps, from the filter on `interface`.
    static func mapIDs(interface: String) throws -> (orgs: Int, stats: Int) {
        let show = try Command.run("tc", ["filter", "show", "dev", interface, "ingress"])
        guard let range = show.range(of: #" id (\d+) name gh_mesh_"#, options: .regularExpression),
            let prog = Int(show[range].split(separator: " ")[1])
        else {
            throw GatehouseError(.storeFailure, "the isolation program is not attached to \(interface)")
        }
        let info =
            try JSONSerialization.jsonObject(with: Data(try Command.run("bpftool", ["-j", "prog", "show", "id", "\(prog)"]).utf8)) as? [String: Any]
        var orgs: Int? = nil
        var stats: Int? = nil
        for id in (info?["map_ids"] as? [Int]) ?? [] {
            let map =
                try JSONSerialization.jsonObject(with: Data(try Command.run("bpftool", ["-j", "map", "show", "id", "\(id)"]).utf8)) as? [String: Any]
            switch map?["name"] as? String {
            case "gh_orgs": orgs = id
            case "gh_stats": stats = id
            default: break
            }
        }
        guard let orgs, let stats else { throw GatehouseError(.storeFailure, "the isolation program's maps were not found") }
        return (orgs, stats)
    }

    /// An LPM trie key: prefix length (host order, 32 bits) and the 16 address bytes.
    static func lpmKey(_ p: IPPrefix) -> String {
        Self.hex(littleEndian: UInt32(p.length)) + " " + p.addressBytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    static func hex(littleEndian v: UInt32) -> String {
        (0..<4).map { String(format: "%02x", UInt8(truncatingIfNeeded: v >> (8 * $0))) }.joined(separator: " ")
    }

    // MARK: counters

    /// The ruleset's counters and the isolation program's verdicts, as Prometheus text.
    public func metrics() -> String {
        var out =
            "# HELP gatehouse_network_packets_total Packets on the mesh interface by the ruleset's verdict.\n# TYPE gatehouse_network_packets_total counter\n"
        var bytesOut =
            "# HELP gatehouse_network_bytes_total Bytes on the mesh interface by the ruleset's verdict.\n# TYPE gatehouse_network_bytes_total counter\n"
        if let text = try? Command.run("nft", ["-j", "list", "counters", "table", "inet", NftablesRuleset.table]),
            let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let items = json["nftables"] as? [[String: Any]]
        {
            for item in items {
                guard let c = item["counter"] as? [String: Any], let name = c["name"] as? String else { continue }
                out += "gatehouse_network_packets_total{counter=\"\(name)\"} \(c["packets"] as? Int ?? 0)\n"
                bytesOut += "gatehouse_network_bytes_total{counter=\"\(name)\"} \(c["bytes"] as? Int ?? 0)\n"
            }
        }
        out += bytesOut
        out +=
            "# HELP gatehouse_mesh_isolation_packets_total Packets judged by the mesh isolation program.\n# TYPE gatehouse_mesh_isolation_packets_total counter\n"
        for (verdict, count) in (try? self.isolationCounters()) ?? [:] {
            out += "gatehouse_mesh_isolation_packets_total{verdict=\"\(verdict)\"} \(count)\n"
        }
        return out
    }

    /// The isolation program's counters: passed, cross_organization, unknown_address, not_ipv6.
    public func isolationCounters() throws -> [String: UInt64] {
        self.lock.lock()
        let maps = self.maps
        self.lock.unlock()
        guard let maps else { return [:] }
        let names = ["passed", "cross_organization", "unknown_address", "not_ipv6"]
        let text = try Command.run("bpftool", ["-j", "map", "dump", "id", "\(maps.stats)"])
        var out: [String: UInt64] = [:]
        for entry in (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? [] {
            // A per-CPU array: one value per CPU, summed.
            guard let f = entry["formatted"] as? [String: Any], let k = f["key"] as? Int, names.indices.contains(k) else { continue }
            let values = (f["values"] as? [[String: Any]]) ?? []
            out[names[k]] = values.reduce(UInt64(0)) { $0 + ((($1["value"] as? NSNumber)?.uint64Value) ?? 0) }
        }
        return out
    }

    // MARK: leave

    /// Removes everything the agent installed: the ruleset, the program, the interface (which
    /// stops wireguard-go), the key and the bookkeeping. Missing pieces are not errors.
    public func leave() {
        self.lock.lock()
        defer { self.lock.unlock() }
        let iface = self.options.interface
        _ = try? Command.run("nft", ["delete", "table", "inet", NftablesRuleset.table])
        _ = try? Command.run("tc", ["qdisc", "del", "dev", iface, "clsact"])
        _ = try? Command.run("ip", ["link", "delete", "dev", iface])
        for name in ["wireguard.key", "wireguard.conf", "mesh_isolation.o", "bpf.batch"] {
            try? FileManager.default.removeItem(at: self.options.stateDirectory.appendingPathComponent(name))
        }
        self.ruleset = nil
        self.maps = nil
        self.organizations = nil
        self.applied = nil
    }
}

/// Runs a system tool and returns what it printed; a failure carries the tool's own message.
public enum Command {
    /// Runs a tool that puts a daemon in the background (wireguard-go) and waits for the tool,
    /// not the daemon. Spawned directly with every inheritable descriptor above 2 closed: Foundation's
    /// Process watches a child through a descriptor the daemon would inherit and keep, so it
    /// would wait for the daemon. Output goes to `log`.
    public static func runDaemon(_ tool: String, _ arguments: [String], log: URL) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }.filter { $0 > 2 }
        for fd in open where fcntl(fd, F_GETFD) >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = ([tool] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, tool, &actions, nil, argv + [nil], environ)
        guard rc == 0 else { throw GatehouseError(.invalidInput, "cannot start \(tool): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        let code = (status >> 8) & 0xFF
        guard exited && code == 0 else {
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw GatehouseError(.invalidInput, "\(tool) \(arguments.joined(separator: " ")) failed (\(exited ? code : -1)): \(said.suffix(600))")
        }
    }

    @discardableResult
    public static func run(_ tool: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            let data = Data(input.utf8)
            // Write from another thread: a big ruleset fills the pipe before nft reads it all.
            let writer = Thread {
                // Throwing write: a tool that exits early (nft after too many errors) closes the
                // pipe, and that must be an error here, not a crash.
                try? stdin.fileHandleForWriting.write(contentsOf: data)
                try? stdin.fileHandleForWriting.close()
            }
            writer.start()
        }
        // Read both streams to the end before waiting, so a chatty tool never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errorData = Data()
        group.enter()
        DispatchQueue.global().async {
            errorData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            // Some tools (wireguard-go) say why on standard output.
            let message = (String(decoding: errorData, as: UTF8.self) + "\n" + String(decoding: output, as: UTF8.self)).trimmingCharacters(
                in: .whitespacesAndNewlines)
            throw GatehouseError(
                .invalidInput, "\(tool) \(arguments.prefix(3).joined(separator: " ")) failed (\(process.terminationStatus)): \(message.suffix(600))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
