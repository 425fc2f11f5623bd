import Foundation
import Testing

/// Enforces the layers of docs/architecture.md: executable → adapters → services → core.
/// Every `import` in Sources/ is checked against what its target's layer may use; a target that
/// is not classified here fails the test, so new targets must pick a layer on purpose.
@Suite("Layering")
struct LayeringTests {
    enum Layer: String {
        case core, services, adapter, executable, testing
    }

    static let platform: Set<String> = ["Foundation", "FoundationEssentials", "Dispatch", "Synchronization"]
    static let os: Set<String> = ["Glibc", "Musl", "Darwin"]

    /// Each target's layer and the modules it may import beyond the layers below it.
    static let targets: [String: (layer: Layer, libraries: Set<String>)] = [
        "GatehouseCore": (.core, ["Crypto", "SwiftASN1", "X509", "NIOCore"]),
        "GatehouseAudit": (.core, ["Crypto"]),
        "GatehousePolicy": (.core, []),
        "GatehouseWebAuthn": (.core, ["Crypto", "_CryptoExtras", "X509", "SwiftASN1"]),
        "GatehouseOIDC": (.core, ["Crypto"]),
        "GatehouseSSH": (.core, ["Crypto"]),
        "GatehousePKI": (.core, ["Crypto", "X509", "SwiftASN1"]),
        "GatehouseRecording": (.core, ["Crypto", "CZlib"]),
        "CZlib": (.core, []),  // the system zlib's module map, no Swift
        "GatehouseServices": (.services, ["X509"]),  // the X.509 authority service handles swift-certificates types from GatehousePKI
        "GatehouseStorage": (
            .adapter, Set(["Logging", "NIOCore", "NIOPosix", "NIOSSL", "SQLKit", "SQLiteKit", "SQLiteNIO", "PostgresKit", "PostgresNIO"]).union(os)
        ),
        "GatehouseGraphQL": (.adapter, ["Graphiti", "GraphQL"]),
        "GatehouseHTTP": (
            .adapter,
            Set([
                "Hummingbird", "HummingbirdTLS", "HummingbirdCore", "Logging", "NIOCore", "NIOSSL", "Prometheus", "HTTPTypes", "ServiceLifecycle",
                "Mustache", "AsyncHTTPClient", "NIOHTTP1", "HummingbirdWebSocket", "HummingbirdWSClient", "X509", "Crypto",
            ]).union(os)
        ),
        "GatehouseClient": (.adapter, ["AsyncHTTPClient", "NIOCore", "NIOHTTP1", "NIOSSL"]),
        "GatehouseHostNetwork": (.adapter, os),
        "GatehouseBastion": (.adapter, Set(["NIOSSH", "NIOCore", "NIOPosix", "Crypto", "Logging"]).union(os)),
        "gatehouse": (.executable, []),
        "GatehouseTesting": (.testing, ["Logging", "PostgresNIO"]),
    ]

    /// Adapter-to-adapter imports that are allowed on purpose: HTTP serves the GraphQL schema.
    static let adapterEdges: Set<String> = ["GatehouseHTTP->GatehouseGraphQL"]

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Module names imported by the Swift files under `directory`, with file:line for messages.
    static func imports(in directory: URL) throws -> [(module: String, location: String)] {
        var found: [(String, String)] = []
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)!
        for case let file as URL in files where file.pathExtension == "swift" {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() {
                let words = line.split(separator: " ").map(String.init).filter { !$0.hasPrefix("@") }
                let modifiers: Set<String> = ["public", "package", "internal", "private", "fileprivate"]
                let rest = words.drop { modifiers.contains($0) }
                guard rest.first == "import", rest.count >= 2 else { continue }
                // `import struct Foo.Bar` and `import Foo.Bar` both name module Foo.
                let target =
                    rest.count >= 3 && ["struct", "class", "enum", "protocol", "func", "var", "typealias"].contains(rest[rest.startIndex + 1])
                    ? rest[rest.startIndex + 2] : rest[rest.startIndex + 1]
                let module = String(target.split(separator: ".").first!)
                found.append((module, "\(file.lastPathComponent):\(number + 1)"))
            }
        }
        return found
    }

    static func allowed(_ module: String, in target: String) -> Bool {
        guard let (layer, libraries) = Self.targets[target] else { return false }
        if Self.platform.contains(module) || libraries.contains(module) || module == target { return true }
        guard let other = Self.targets[module] else { return layer == .executable }
        switch (layer, other.layer) {
        case (.executable, _): return other.layer != .testing
        case (.testing, let below): return below != .executable
        case (.adapter, .adapter): return Self.adapterEdges.contains("\(target)->\(module)")
        case (.adapter, .services), (.adapter, .core): return true
        case (.services, .core): return true
        // Core modules build on the shared vocabulary in GatehouseCore, never on each other otherwise.
        case (.core, .core): return module == "GatehouseCore"
        default: return false
        }
    }

    @Test func everyTargetHasALayer() throws {
        let sources = Self.root.appendingPathComponent("Sources")
        let names = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { !$0.hasPrefix(".") }
        for name in names {
            #expect(Self.targets[name] != nil, "Sources/\(name) has no layer in ArchitectureTests; classify it")
        }
        #expect(names.count >= 7)
    }

    @Test func importsRespectTheLayers() throws {
        var checked = 0
        for (target, _) in Self.targets {
            let directory = Self.root.appendingPathComponent("Sources").appendingPathComponent(target)
            for found in try Self.imports(in: directory) {
                #expect(Self.allowed(found.module, in: target), "\(target) (\(found.location)) may not import \(found.module)")
                checked += 1
            }
        }
        #expect(checked > 20)
    }

    /// The checker itself: forbidden edges are caught.
    @Test func theCheckerCatchesViolations() {
        #expect(!Self.allowed("Hummingbird", in: "GatehouseCore"))
        #expect(!Self.allowed("GatehouseServices", in: "GatehouseCore"))
        #expect(!Self.allowed("GatehouseStorage", in: "GatehouseServices"))
        #expect(!Self.allowed("SQLKit", in: "GatehouseServices"))
        #expect(!Self.allowed("GatehouseHTTP", in: "GatehouseStorage"))
        #expect(!Self.allowed("gatehouse", in: "GatehouseHTTP"))
        #expect(!Self.allowed("GatehouseTesting", in: "gatehouse"))
        #expect(Self.allowed("GatehouseCore", in: "GatehouseServices"))
        #expect(Self.allowed("GatehouseGraphQL", in: "GatehouseHTTP"))
        #expect(Self.allowed("Crypto", in: "GatehouseCore"))
        #expect(Self.allowed("GatehouseCore", in: "GatehouseAudit"))
        #expect(!Self.allowed("GatehouseAudit", in: "GatehouseCore"))
    }

    /// Lines of Swift under `directory` that match `pattern`, as file:line.
    static func lines(in directory: URL, matching pattern: String) throws -> [String] {
        let regex = try Regex(pattern)
        var found: [String] = []
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)!
        for case let file as URL in files where file.pathExtension == "swift" {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where line.contains(regex) {
                found.append("\(file.lastPathComponent):\(number + 1)")
            }
        }
        return found
    }

    /// Audit actors and subjects come from `AuditParty`'s constructors, never a string spelled at
    /// the call site (`"user:\(name)"`): one vocabulary, one spelling per party.
    @Test func auditPartiesAreTyped() throws {
        let sources = Self.root.appendingPathComponent("Sources")
        let pattern = #"\b(actor|subject): "[^"]*""#
        let spelled = try Self.lines(in: sources, matching: pattern)
        #expect(spelled.isEmpty, "audit parties spelled as strings: \(spelled)")
        // The check itself finds what it looks for.
        let sample = FileManager.default.temporaryDirectory.appendingPathComponent("layering-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: sample, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: sample) }
        try #"AuditEvent(code: .x, time: t, actor: "user:\(name)", subject: .system)"#.write(
            to: sample.appendingPathComponent("A.swift"), atomically: true, encoding: .utf8)
        #expect(try Self.lines(in: sample, matching: pattern) == ["A.swift:1"])
    }

    /// Adapters take the clock and randomness from the environment; only the composition root
    /// (and the test harness) makes the system's.
    @Test func onlyTheCompositionRootMakesSystemSources() throws {
        var found: [String] = []
        for target in try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)
        where !["gatehouse", "GatehouseTesting", "GatehouseCore"].contains(target) {
            found += try Self.lines(in: Self.root.appendingPathComponent("Sources/\(target)"), matching: #"System(Time|Random)Source\(\)"#)
        }
        #expect(found.isEmpty, "system clock or randomness made outside the composition root: \(found)")
    }
}
