// swift-tools-version:6.1
// Gatehouse: one access-control plane. The targets follow the layers of docs/architecture.md:
// core (pure) -> services -> adapters -> executable. Tests/ArchitectureTests enforces it.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .library(name: "GatehouseCore", targets: ["GatehouseCore"]),
        .library(name: "GatehouseGraphQL", targets: ["GatehouseGraphQL"]),
        .library(name: "GatehousePolicy", targets: ["GatehousePolicy"]),
        .library(name: "GatehouseWebAuthn", targets: ["GatehouseWebAuthn"]),
        .library(name: "GatehouseOIDC", targets: ["GatehouseOIDC"]),
        .library(name: "GatehouseSSH", targets: ["GatehouseSSH"]),
        .library(name: "GatehousePKI", targets: ["GatehousePKI"]),
        .library(name: "GatehouseHostNetwork", targets: ["GatehouseHostNetwork"]),
        .library(name: "GatehouseRecording", targets: ["GatehouseRecording"]),
        .library(name: "GatehouseBastion", targets: ["GatehouseBastion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/GraphQLSwift/Graphiti.git", from: "3.1.0"),
        .package(url: "https://github.com/GraphQLSwift/GraphQL.git", from: "4.3.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", exact: "0.15.1"),
    ],
    targets: [
        // MARK: core (pure: Foundation and swift-crypto only)
        .target(
            name: "GatehouseCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehouseAudit",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehousePolicy",
            dependencies: ["GatehouseCore"],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehouseWebAuthn",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehouseOIDC",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehouseSSH",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GatehousePKI",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),

        // Session recordings: asciicast v2 events, deflated and sealed in AES-GCM frames.
        // Pure computation; the system zlib does the compression.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(
            name: "GatehouseRecording",
            dependencies: [
                "GatehouseCore",
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: services (use cases, store protocols, in-memory stores)
        .target(
            name: "GatehouseServices",
            dependencies: [
                "GatehouseCore", "GatehouseAudit", "GatehousePolicy", "GatehouseWebAuthn", "GatehouseOIDC", "GatehouseSSH", "GatehousePKI",
                "GatehouseRecording",
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: adapters
        .target(
            name: "GatehouseStorage",
            dependencies: [
                "GatehouseServices",
                "GatehouseOIDC",
                "GatehouseAudit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatehouseGraphQL",
            dependencies: [
                "GatehouseServices",
                "GatehouseAudit",
                .product(name: "Graphiti", package: "Graphiti"),
                .product(name: "GraphQL", package: "GraphQL"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatehouseHTTP",
            dependencies: [
                "GatehouseServices",
                "GatehouseOIDC",
                "GatehouseSSH",
                "GatehousePKI",
                "GatehouseRecording",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                "GatehousePolicy",
                "GatehouseWebAuthn",
                "GatehouseAudit",
                "GatehouseGraphQL",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatehouseClient",
            dependencies: [
                "GatehouseServices",
                "GatehousePolicy",
                "GatehouseAudit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),

        // The host's private network: WireGuard, nftables and the mesh isolation BPF program,
        // which the BPFObjectPlugin builds from bpf/mesh_isolation.c with the toolchain's clang.
        .target(
            name: "GatehouseHostNetwork",
            dependencies: ["GatehouseCore"],
            exclude: ["bpf"],
            swiftSettings: swiftSettings,
            plugins: ["BPFObjectPlugin"]
        ),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool()),

        // The SSH bastion: Gatehouse's own SSH server (swift-nio-ssh) that authorizes each
        // session, connects onward with a one-minute certificate and records the transcript.
        .target(
            name: "GatehouseBastion",
            dependencies: [
                "GatehouseServices",
                "GatehouseSSH",
                "GatehouseRecording",
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: executable (composition root)
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseCore",
                "GatehousePolicy",
                "GatehouseWebAuthn",
                "GatehouseAudit",
                "GatehouseServices",
                "GatehouseStorage",
                "GatehouseGraphQL",
                "GatehouseHTTP",
                "GatehouseClient",
                "GatehouseHostNetwork",
                "GatehouseRecording",
                "GatehouseBastion",
                "GatehouseSSH",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gatehouse-bench",
            dependencies: [
                "GatehouseCore",
                "GatehousePolicy",
                "GatehouseWebAuthn",
                "GatehouseAudit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                "GatehouseServices",
                "GatehouseStorage",
                "GatehouseSSH",
                "GatehousePKI",
                "GatehouseHostNetwork",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/gatehouse-bench",
            swiftSettings: swiftSettings
        ),

        // MARK: test harness (a library, shared by the test targets)
        .target(
            name: "GatehouseTesting",
            dependencies: [
                "GatehouseCore",
                "GatehouseServices",
                "GatehouseStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: tests
        .testTarget(
            name: "GatehouseCoreTests",
            dependencies: ["GatehouseCore", "GatehouseTesting", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehousePolicyTests",
            dependencies: ["GatehouseCore", "GatehousePolicy"],
            exclude: ["Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseWebAuthnTests",
            dependencies: [
                "GatehouseCore", "GatehouseWebAuthn", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseOIDCTests",
            dependencies: ["GatehouseCore", "GatehouseOIDC", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehousePKITests",
            dependencies: [
                "GatehouseCore", "GatehousePKI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseSSHTests",
            dependencies: ["GatehouseCore", "GatehouseSSH", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseAuditTests",
            dependencies: ["GatehouseCore", "GatehouseAudit"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseServicesTests",
            dependencies: [
                "GatehouseCore", "GatehouseServices", "GatehousePKI", "GatehousePolicy", .product(name: "X509", package: "swift-certificates"),
                "GatehouseStorage", "GatehouseTesting", "GatehouseWebAuthn", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseHostNetworkTests",
            dependencies: ["GatehouseCore", "GatehouseHostNetwork"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseHTTPTests",
            dependencies: [
                "GatehouseCore", "GatehouseServices", "GatehouseHTTP", "GatehouseGraphQL", "GatehouseTesting", "GatehouseWebAuthn",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseRecordingTests",
            dependencies: ["GatehouseCore", "GatehouseRecording", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ArchitectureTests",
            swiftSettings: swiftSettings
        ),
    ]
)
